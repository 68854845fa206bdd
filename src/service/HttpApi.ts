/**
 * The service's HTTP API: `/metrics`, `/healthz`, `POST /feedback`,
 * `DELETE /feedback/{coordinator_id}`, and the live console (`GET /`,
 * `GET /console/events`, `GET /console/snapshot`).
 *
 * @since 0.1.0
 */
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as ByteSize from "effect/ByteSize"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as HttpIncomingMessage from "effect/http/HttpIncomingMessage"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerError from "effect/http/HttpServerError"
import type * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { createHash, timingSafeEqual } from "node:crypto"
import * as os from "node:os"
import { decodeUnknown, encodeJson } from "../contracts/Codec.ts"
import { coordinatorIdIssue, FeedbackEvent } from "../contracts/FeedbackEvent.ts"
import { FeedbackPublisher } from "../contracts/FeedbackPublisher.ts"
import { HealthStatus } from "../contracts/Health.ts"
import { feedbackAttributes, tracingEnabled } from "../internal/tracing.ts"
import { metricDefinitions } from "../metrics/MetricDefinitions.ts"
import { PipelineMetrics } from "../metrics/PipelineMetrics.ts"
import type { RateCoordinator } from "../rate/RateCoordinator.ts"
import { UnifiedRuntime } from "../runtime/UnifiedRuntime.ts"
import * as LiveConsole from "./console/LiveConsole.ts"
import * as ConsolePage from "./console/page.ts"

/**
 * @since 0.1.0
 * @category models
 */
export interface HttpApiOptions {
  /**
   * When set, `POST /feedback` and `DELETE /feedback/{id}` require
   * `Authorization: Bearer <token>` (scheme in any case). An empty or blank
   * token is refused when the routes are built.
   */
  readonly token?: Redacted.Redacted<string> | undefined
  /** Largest accepted body; default 64 KiB. */
  readonly maxBodyBytes?: number | undefined
  /**
   * The address the server is bound to (default `127.0.0.1`). The `Host`
   * header of every request must name an address the service is served on:
   * for a loopback bind `localhost`, `127.0.0.1`, `::1`; for a wildcard bind
   * (`0.0.0.0`, `::`) also every interface address and the machine's host
   * name; otherwise the bound address. This stops DNS rebinding.
   */
  readonly bindHost?: string | undefined
  /** More `Host` names to accept (a DNS name or proxy in front of the service). */
  readonly allowedHosts?: ReadonlyArray<string> | undefined
  /** `GET /metrics` answers in flight at once; more are refused with 503. Default 4. */
  readonly maxConcurrentScrapes?: number | undefined
  /** Live consoles (`GET /console/events` streams) open at once; more are refused with 503. Default 64. */
  readonly maxConsoleClients?: number | undefined
}

/**
 * The options cannot describe a safe edge (a blank token).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidHttpOptions extends Data.TaggedError("InvalidHttpOptions")<{
  readonly option: string
  readonly reason: string
}> {
  override get message(): string {
    return `invalid HTTP option ${this.option}: ${this.reason}`
  }
}

const json = (status: number, body: unknown, headers?: Record<string, string>) =>
  HttpServerResponse.text(JSON.stringify(body), {
    status,
    contentType: "application/json",
    ...(headers === undefined ? {} : { headers })
  })

const digest = (value: string) => createHash("sha256").update(value).digest()

const encodeHealth = encodeJson(HealthStatus)
const decodeEvent = decodeUnknown(FeedbackEvent)
const utf8 = new TextDecoder("utf-8", { fatal: true })

const traceDecode = <A, E, R>(decode: Effect.Effect<A, E, R>) =>
  Effect.withSpan(decode, "feedback.decode", { captureStackTrace: false })

const loopbackNames = ["localhost", "127.0.0.1", "::1"]

/** `host[:port]`, `[v6]:port` → the host name, lower case. */
const hostName = (value: string): string => {
  const trimmed = value.trim().toLowerCase()
  if (trimmed.startsWith("[")) return trimmed.slice(1, trimmed.indexOf("]"))
  const colon = trimmed.indexOf(":")
  // a bare IPv6 address has several colons and no port
  const name = colon >= 0 && trimmed.indexOf(":", colon + 1) < 0 ? trimmed.slice(0, colon) : trimmed
  return name.endsWith(".") ? name.slice(0, -1) : name
}

/** Whether `host` is a loopback bind address. @internal */
export const isLoopback = (host: string): boolean => {
  const name = hostName(host)
  return name === "localhost" || name === "::1" || name.startsWith("127.")
}

/**
 * The `Host` names a server bound to `bindHost` is served on.
 *
 * @since 0.1.0
 * @category utils
 */
export const servedHostNames = (bindHost: string, extra: ReadonlyArray<string> = []): ReadonlySet<string> => {
  const bound = hostName(bindHost)
  const names = new Set<string>([bound, ...extra.map(hostName)])
  const loopback = isLoopback(bound)
  const wildcard = bound === "" || bound === "0.0.0.0" || bound === "::"
  if (loopback || wildcard) { for (const name of loopbackNames) names.add(name) }
  if (wildcard) {
    names.add(os.hostname().toLowerCase())
    for (const addresses of Object.values(os.networkInterfaces())) {
      for (const address of addresses ?? []) names.add(hostName(address.address))
    }
  }
  return names
}

/**
 * What makes a bearer token unusable, or `undefined`: empty, or containing
 * white space (a client could never send it as `Bearer <token>`).
 *
 * @since 0.1.0
 * @category validation
 */
export const tokenIssue = (token: string): string | undefined =>
  token.trim() === ""
    ? "must not be empty or blank"
    : /\s/.test(token)
    ? "must not contain white space (it could never be sent as Bearer <token>)"
    : undefined

/**
 * The methods a path of the API accepts (`Allow`), or `undefined` for a path
 * it does not serve. `HEAD` goes with every `GET`.
 *
 * @since 0.1.0
 * @category utils
 */
export const allowedMethods = (url: string): string | undefined => {
  const path = url.split(/[?#]/, 1)[0] ?? ""
  if (path === "/metrics" || path === "/healthz" || consolePaths.has(path)) return "GET, HEAD"
  if (path === "/feedback") return "POST"
  return /^\/feedback\/[^/]+$/.test(path) ? "DELETE" : undefined
}

const consolePaths: ReadonlySet<string> = new Set([
  "/",
  "/console/app.js",
  "/console/app.css",
  "/console/events",
  "/console/snapshot"
])

// the console's page loads only its own script and style, and connects only to its own stream
const assetHeaders = {
  "cache-control": "no-cache",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer"
}
const pageHeaders = {
  ...assetHeaders,
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-frame-options": "DENY"
}

const bearer = /^[ \t]*bearer[ \t]+(\S+)[ \t]*$/i
const jsonMediaType = /^application\/json[ \t]*(;.*)?$/i

/**
 * The routes, for `HttpRouter.serve`:
 *
 * - `POST /feedback` accepts a core `FeedbackEvent` or the Python store's
 *   HTTP broadcast body (no `ts`: the receive time is used; no `source`:
 *   `"store"`), publishes it and answers 202.
 * - `DELETE /feedback/{coordinator_id}` forgets a coordinator (an operator
 *   clearing a store that stopped reporting): 200, or 404 if unknown.
 * - `GET /metrics` (Prometheus text) and `GET /healthz` (a `HealthStatus`).
 * - The live console: `GET /` (a page whose script and style are served
 *   from `/console/app.js` and `/console/app.css`), `GET /console/events`
 *   (server-sent events: a `ConsoleSnapshot` every 500 ms; more than
 *   `maxConsoleClients` open at once: 503, not counted as a rejection) and
 *   `GET /console/snapshot` (the same document once: the last one sent while
 *   a console is open, else read now, at most `maxConcurrentScrapes` at
 *   once). Read-only, like `/healthz`: no token, and the page holds none; the
 *   last rejections below are listed there (time, status, reason, method
 *   and path; not the message, which can quote a request).
 *
 * Every request must carry a `Host` the service is served on (403
 * `forbidden_host`). Changes (`POST`, `DELETE`) are refused with 403
 * `forbidden_origin` when a browser sends a foreign `Origin`, 401 without
 * the token when one is set, and a `POST` needs `Content-Type:
 * application/json` (415: this forces a browser's CORS preflight). A bad
 * body is a 400 with the validation message (a `coordinator_id` over 128
 * bytes or with control characters included), a body over the limit 413, a
 * new coordinator with no free slot 429, too many scrapes at once 503; each
 * rejection is counted in `pipeline_feedback_events_rejected_total{reason}`.
 * A path of the API asked with a method it does not take is a 405 with
 * `Allow` (`GET /feedback` → `Allow: POST`), any other path a 404, both
 * with the same JSON error body (and not counted: they carry no feedback).
 *
 * @since 0.1.0
 * @category layers
 */
export const routes = (
  options: HttpApiOptions = {}
): Layer.Layer<
  never,
  InvalidHttpOptions,
  HttpRouter.HttpRouter | FeedbackPublisher | PipelineMetrics | UnifiedRuntime | RateCoordinator
> =>
  HttpRouter.use((router) =>
    Effect.gen(function*() {
      const metrics = yield* PipelineMetrics
      const publisher = yield* FeedbackPublisher
      const runtime = yield* UnifiedRuntime
      // read once: with the native tracer (no exporter) POST /feedback makes no spans of its own
      const tracing = yield* tracingEnabled
      const maxBodyBytes = options.maxBodyBytes ?? 64 * 1024
      const maxScrapes = options.maxConcurrentScrapes ?? 4
      const hosts = servedHostNames(options.bindHost ?? "127.0.0.1", options.allowedHosts)
      if (options.token !== undefined) {
        const problem = tokenIssue(Redacted.value(options.token))
        if (problem !== undefined) return yield* new InvalidHttpOptions({ option: "token", reason: problem })
      }
      const expected = options.token === undefined ? undefined : digest(Redacted.value(options.token))
      let scrapes = 0
      const rejections = LiveConsole.makeRejectionLog()
      const live = yield* LiveConsole.make({ rejections, maxClients: options.maxConsoleClients })

      const reject = (
        request: HttpServerRequest.HttpServerRequest,
        status: number,
        reason: string,
        message: string,
        headers?: Record<string, string>
      ) =>
        Effect.as(
          Effect.andThen(
            metrics.increment(metricDefinitions.eventsRejected, { reason }),
            rejections.record(status, reason, request.method, request.url.split(/[?#]/, 1)[0] ?? "")
          ),
          json(status, { error: reason, message }, headers)
        )
      const tooLarge = (request: HttpServerRequest.HttpServerRequest) =>
        reject(request, 413, "too_large", `body over ${maxBodyBytes} bytes`)

      const authorized = (request: HttpServerRequest.HttpServerRequest): boolean => {
        if (expected === undefined) return true
        const given = bearer.exec(request.headers["authorization"] ?? "")?.[1]
        // equal-length digests compared in constant time: no timing hint about the token
        return given !== undefined && timingSafeEqual(digest(given), expected)
      }

      // What every request must pass; changes also need a same-origin (or no) Origin and the token.
      const refused = (request: HttpServerRequest.HttpServerRequest, change: boolean) => {
        const host = request.headers["host"]
        if (host === undefined || !hosts.has(hostName(host))) {
          return reject(
            request,
            403,
            "forbidden_host",
            `Host ${JSON.stringify(host ?? "")} is not an address of this service`
          )
        }
        if (!change) return undefined
        const origin = request.headers["origin"]
        if (origin !== undefined) {
          let sameOrigin = false
          try {
            const url = new URL(origin)
            sameOrigin = url.host.toLowerCase() === host.trim().toLowerCase() && hosts.has(hostName(url.host))
          } catch {
            // "null" or garbage: not this service's origin
          }
          if (!sameOrigin) {
            return reject(request, 403, "forbidden_origin", `Origin ${JSON.stringify(origin)} may not change feedback`)
          }
        }
        if (!authorized(request)) {
          return reject(request, 401, "unauthorized", "missing or wrong bearer token", { "www-authenticate": "Bearer" })
        }
        return undefined
      }

      const feedback = (request: HttpServerRequest.HttpServerRequest) =>
        Effect.gen(function*() {
          const refusal = refused(request, true)
          if (refusal !== undefined) return yield* refusal
          const contentType = request.headers["content-type"]
          if (contentType === undefined || !jsonMediaType.test(contentType)) {
            return yield* reject(
              request,
              415,
              "unsupported_media_type",
              `Content-Type must be application/json, got ${JSON.stringify(contentType ?? "")}`
            )
          }
          const declared = Number(request.headers["content-length"])
          if (declared > maxBodyBytes) return yield* tooLarge(request)
          const body = yield* request.arrayBuffer.pipe(
            Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(maxBodyBytes)),
            Effect.result
          )
          if (body._tag === "Failure") {
            const overLimit =
              String((body.failure as { reason?: { reason?: string } }).reason?.reason) === "BodyTooLarge"
            return yield* overLimit
              ? tooLarge(request)
              : reject(request, 400, "unreadable", "the request body could not be read")
          }
          if (body.success.byteLength > maxBodyBytes) return yield* tooLarge(request)
          let parsed: unknown
          try {
            parsed = JSON.parse(utf8.decode(body.success))
          } catch (error) {
            return yield* reject(request, 400, "invalid_json", `body is not JSON: ${(error as Error).message}`)
          }
          // the store's HTTP broadcast body has no ts: it happened now
          if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) && !("ts" in parsed)) {
            parsed = { ...parsed, ts: (yield* Clock.currentTimeMillis) / 1000 }
          }
          const event = yield* Effect.result(tracing ? traceDecode(decodeEvent(parsed)) : decodeEvent(parsed))
          if (event._tag === "Failure") return yield* reject(request, 400, "invalid_event", event.failure.message)
          const { coordinatorId, level } = event.success
          if (tracing) yield* Effect.annotateCurrentSpan(feedbackAttributes(event.success))
          const issue = coordinatorIdIssue(coordinatorId)
          if (issue !== undefined) return yield* reject(request, 400, "invalid_coordinator_id", issue)
          // the handler's table is the one that counts: ask it before publishing
          if (runtime.feedback !== undefined && !(yield* runtime.feedback.admits(coordinatorId))) {
            return yield* reject(
              request,
              429,
              "too_many_coordinators",
              "the table of coordinators is full and none is idle at ok; " +
                "clear one with DELETE /feedback/{coordinator_id}"
            )
          }
          yield* publisher.publish(event.success)
          return json(202, { accepted: true, coordinator_id: coordinatorId, level })
        })

      const clear = (request: HttpServerRequest.HttpServerRequest, id: string) =>
        Effect.gen(function*() {
          const refusal = refused(request, true)
          if (refusal !== undefined) return yield* refusal
          const cleared = runtime.feedback === undefined ? false : yield* runtime.feedback.clear(id)
          if (!cleared) {
            return json(404, { error: "unknown_coordinator", message: `no coordinator ${JSON.stringify(id)}` })
          }
          yield* Effect.logWarning(`coordinator ${JSON.stringify(id)} cleared by an operator`)
          return json(200, { cleared: true, coordinator_id: id })
        })

      const scrape = (request: HttpServerRequest.HttpServerRequest) =>
        Effect.gen(function*() {
          const refusal = refused(request, false)
          if (refusal !== undefined) return yield* refusal
          if (scrapes >= maxScrapes) {
            return yield* reject(request, 503, "busy", `${maxScrapes} scrapes already in flight`, {
              "retry-after": "1"
            })
          }
          const text = yield* metrics.prometheus
          // the slot is held until the answer has been handed to the socket or the client left
          // (the response's close, which every request gets, HEAD included)
          scrapes++
          NodeHttpServerRequest.toServerResponse(request).once("close", () => scrapes--)
          return HttpServerResponse.text(text, { contentType: "text/plain; version=0.0.4; charset=utf-8" })
        })

      const health = (request: HttpServerRequest.HttpServerRequest) =>
        Effect.gen(function*() {
          const refusal = refused(request, false)
          if (refusal !== undefined) return yield* refusal
          const status = yield* runtime.health
          return HttpServerResponse.text(encodeHealth(status), {
            status: status.state === "unhealthy" ? 503 : 200,
            contentType: "application/json"
          })
        })

      yield* router.add(
        "POST",
        "/feedback",
        tracing
          ? (request) =>
            Effect.withSpan(feedback(request), "feedback.receive", {
              attributes: { "feedback.transport": "http" },
              captureStackTrace: false
            })
          : feedback
      )
      yield* router.add(
        "DELETE",
        "/feedback/:coordinator_id",
        (request) => Effect.flatMap(HttpRouter.params, (params) => clear(request, params["coordinator_id"] ?? ""))
      )
      yield* router.add("GET", "/metrics", scrape)
      yield* router.add("GET", "/healthz", health)

      const asset =
        (body: string, contentType: string, headers: Record<string, string>) =>
        (request: HttpServerRequest.HttpServerRequest) =>
          refused(request, false) ?? Effect.succeed(HttpServerResponse.text(body, { contentType, headers }))
      yield* router.add("GET", "/", asset(ConsolePage.html, "text/html; charset=utf-8", pageHeaders))
      yield* router.add("GET", "/console/app.js", asset(ConsolePage.js, "text/javascript; charset=utf-8", assetHeaders))
      yield* router.add("GET", "/console/app.css", asset(ConsolePage.css, "text/css; charset=utf-8", assetHeaders))
      // while a console is open, the snapshot it was last sent; otherwise one read now, at most
      // maxScrapes at once (each reads every provider's state: with shared buckets, Redis)
      let snapshots = 0
      yield* router.add("GET", "/console/snapshot", (request) =>
        refused(request, false) ?? Effect.suspend(() => {
          const noStore = { "cache-control": "no-store" }
          const latest = live.latest()
          if (latest !== undefined) return Effect.succeed(json(200, latest, noStore))
          if (snapshots >= maxScrapes) {
            // not a feedback rejection: neither counted nor listed
            return Effect.succeed(json(503, {
              error: "busy",
              message: `${maxScrapes} snapshots already in flight`
            }, { "retry-after": "1" }))
          }
          snapshots++
          return live.snapshot.pipe(
            Effect.map((snapshot) => json(200, snapshot, noStore)),
            Effect.ensuring(Effect.sync(() => snapshots--))
          )
        }))
      yield* router.add("GET", "/console/events", (request) =>
        Effect.gen(function*() {
          const refusal = refused(request, false)
          if (refusal !== undefined) return yield* refusal
          const headers = { "cache-control": "no-store", "x-accel-buffering": "no" }
          if (request.method === "HEAD") {
            return HttpServerResponse.text("", { contentType: "text/event-stream", headers })
          }
          const client = yield* live.open()
          if (client === undefined) {
            // not a feedback rejection: neither counted (it would feed the rejections alert) nor listed
            return json(503, { error: "busy", message: `${live.maxClients} consoles already open` }, {
              "retry-after": "2"
            })
          }
          // the slot is given back when the client leaves (or the stream ends at shutdown)
          NodeHttpServerRequest.toServerResponse(request).once("close", client.release)
          return HttpServerResponse.stream(client.body, { contentType: "text/event-stream; charset=utf-8", headers })
        }))
      // The router knows only the routes above; a request matching none of them still passes the
      // Host check, then is a 405 naming the methods its path takes, or a 404.
      const unrouted = (request: HttpServerRequest.HttpServerRequest) => {
        const refusal = refused(request, false)
        if (refusal !== undefined) return refusal
        const path = request.url.split(/[?#]/, 1)[0] ?? ""
        const allow = allowedMethods(path)
        if (allow === undefined) {
          return Effect.succeed(json(404, { error: "not_found", message: `no route ${request.method} ${path}` }))
        }
        if (request.method === "DELETE" && allow === "DELETE") {
          // the route, refused by the router for a parameter over its 100 characters: a
          // percent-encoded id of 128 bytes takes up to 384
          let id: string
          try {
            id = decodeURIComponent(path.slice("/feedback/".length))
          } catch {
            id = path.slice("/feedback/".length)
          }
          return clear(request, id)
        }
        return Effect.succeed(json(405, {
          error: "method_not_allowed",
          message: `${request.method} ${path} is not allowed; ${path} takes ${allow}`
        }, { allow }))
      }
      yield* router.addGlobalMiddleware((effect) =>
        Effect.catchCause(effect, (cause) => {
          const error = Cause.findErrorOption(cause)
          return error._tag === "Some" && HttpServerError.isHttpServerError(error.value) &&
              error.value.reason._tag === "RouteNotFound"
            ? unrouted(error.value.reason.request)
            : Effect.failCause(cause)
        })
      )
    })
  )
