/**
 * The service's Node HTTP server, sized for a small JSON API on a machine it
 * shares with the store: header and body read timeouts of seconds, a cap on
 * open connections that evicts the oldest idle connection rather than refuse
 * a new client, and a shutdown that stops accepting at once, lets requests
 * in flight finish for a bounded time, then closes whatever is left (idle
 * keep-alive and half-sent connections included).
 *
 * A port that cannot be bound fails the layer with a {@link ListenError}
 * whose message is one line a person can act on (`port 9108 is in use; pass
 * --port`), not Node's error with a stack.
 *
 * @since 0.1.0
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HttpServer from "effect/http/HttpServer"
import * as Layer from "effect/Layer"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { Socket } from "node:net"

/**
 * @since 0.1.0
 * @category models
 */
export interface HttpServerNodeOptions {
  readonly port: number
  readonly host: string
  /** How long requests in flight may take to finish after shutdown begins; default 2 s. */
  readonly shutdownTimeout?: Duration.Input | undefined
  /**
   * Open connections at most; default 256. A new connection beyond it evicts
   * the oldest connection that has no request being handled (an idle
   * keep-alive or a half-sent request), so a flood of idle sockets cannot
   * lock real clients out; when every connection is busy, it is closed.
   */
  readonly maxConnections?: number | undefined
  /** Time to receive a request's headers; default 5 s. */
  readonly headersTimeout?: Duration.Input | undefined
  /** Time to receive a whole request, headers and body; default 10 s. */
  readonly requestTimeout?: Duration.Input | undefined
}

/**
 * The server could not listen on its address. `reason` says why: the port is
 * taken by another process (`AddressInUse`, `EADDRINUSE`), the user may not
 * bind it (`AccessDenied`, `EACCES`: a port below 1024 without privileges),
 * the host is not an address of this machine (`AddressNotAvailable`,
 * `EADDRNOTAVAIL`) or a name that does not resolve (`HostNotFound`), or
 * something else (`Other`, with Node's message). The message is one line
 * naming the option to change.
 *
 * @since 0.1.0
 * @category errors
 */
export class ListenError extends Data.TaggedError("ListenError")<{
  readonly reason: "AddressInUse" | "AccessDenied" | "AddressNotAvailable" | "HostNotFound" | "Other"
  readonly host: string
  readonly port: number
  readonly cause: unknown
}> {
  override get message(): string {
    switch (this.reason) {
      case "AddressInUse":
        return `port ${this.port} is in use; pass --port`
      case "AccessDenied":
        return `port ${this.port} may not be bound by this user${
          this.port < 1024 ? " (ports below 1024 need privileges)" : ""
        }; pass --port`
      case "AddressNotAvailable":
        return `address ${this.host} is not an address of this machine; pass --host`
      case "HostNotFound":
        return `host ${this.host} cannot be resolved; pass --host`
      case "Other":
        return `cannot listen on ${this.host}:${this.port}: ${
          this.cause instanceof Error ? this.cause.message : String(this.cause)
        }`
    }
  }
}

const listenReasons: Record<string, ListenError["reason"]> = {
  EADDRINUSE: "AddressInUse",
  EACCES: "AccessDenied",
  EPERM: "AccessDenied",
  EADDRNOTAVAIL: "AddressNotAvailable",
  ENOTFOUND: "HostNotFound",
  EAI_AGAIN: "HostNotFound",
  EAI_NONAME: "HostNotFound"
}

const listenError = (options: HttpServerNodeOptions, cause: unknown): ListenError => {
  const code = (cause as { readonly code?: unknown } | null)?.code
  return new ListenError({
    reason: (typeof code === "string" ? listenReasons[code] : undefined) ?? "Other",
    host: options.host,
    port: options.port,
    cause
  })
}

const millis = (input: Duration.Input | undefined, fallback: number): number =>
  input === undefined ? fallback : Duration.toMillis(Duration.fromInputUnsafe(input))

/**
 * A Node `http.Server` with these limits applied.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeNodeServer = (options: Omit<HttpServerNodeOptions, "port" | "host" | "shutdownTimeout">): Server => {
  const requestTimeout = millis(options.requestTimeout, 10_000)
  const server = createServer({
    headersTimeout: Math.min(millis(options.headersTimeout, 5_000), requestTimeout),
    requestTimeout,
    keepAliveTimeout: 5_000,
    // how often the two timeouts above are checked (Node's default is 30 s)
    connectionsCheckingInterval: 1_000
  })
  const maxConnections = options.maxConnections ?? 256
  // insertion order is age; a socket in `busy` has a request being handled
  const open = new Set<Socket>()
  const busy = new Map<Socket, number>()
  server.on("connection", (socket: Socket) => {
    if (open.size >= maxConnections) {
      let evicted = false
      for (const candidate of open) {
        if (!busy.has(candidate)) {
          open.delete(candidate)
          candidate.destroy()
          evicted = true
          break
        }
      }
      if (!evicted) {
        socket.destroy()
        return
      }
    }
    open.add(socket)
    socket.once("close", () => {
      open.delete(socket)
      busy.delete(socket)
    })
  })
  const handling = (request: IncomingMessage, response: ServerResponse) => {
    const socket = request.socket
    busy.set(socket, (busy.get(socket) ?? 0) + 1)
    response.once("close", () => {
      const n = (busy.get(socket) ?? 1) - 1
      if (n > 0) busy.set(socket, n)
      else busy.delete(socket)
    })
  }
  server.on("request", handling)
  // a request with `Expect: 100-continue` is handled from this event instead
  server.on("checkContinue", handling)
  // Shutdown begins with `close`: connections with no request being handled
  // (idle keep-alives, half-sent requests) go at once, busy ones may finish.
  const close = server.close.bind(server)
  server.close = (callback) => {
    close(callback)
    for (const socket of open) if (!busy.has(socket)) socket.destroy()
    return server
  }
  return server
}

/**
 * The `HttpServer` (and Node's HTTP platform services) on a server made by
 * {@link makeNodeServer}. Closing the layer's scope stops accepting, waits
 * up to `shutdownTimeout` for requests in flight, then closes every
 * connection left. An address that cannot be bound fails with a
 * {@link ListenError}.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: HttpServerNodeOptions
): Layer.Layer<Layer.Success<ReturnType<typeof NodeHttpServer.layer>>, ListenError> =>
  Layer.effect(
    HttpServer.HttpServer,
    Effect.gen(function*() {
      const node = makeNodeServer(options)
      const server = yield* NodeHttpServer.make(() => node, {
        port: options.port,
        host: options.host,
        gracefulShutdownTimeout: options.shutdownTimeout ?? Duration.seconds(2)
      }).pipe(Effect.mapError((error) => listenError(options, error.cause)))
      // runs before the server's own finalizer, which waits for every connection to end
      yield* Effect.addFinalizer(() => Effect.sync(() => node.closeAllConnections()))
      return server
    })
  ).pipe(Layer.merge(NodeHttpServer.layerHttpServices))
