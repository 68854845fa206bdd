/**
 * Helpers of the shared-bucket tests: a private `redis-server` the test
 * starts, kills and restarts itself; a plain client for looking at and
 * deleting a test's keys; the shared coordinator's layer on a given URL.
 */
import * as NodeRedis from "@effect/platform-node/NodeRedis"
import { Context, Duration, Effect, Layer } from "effect"
import type * as Scope from "effect/Scope"
import { CoordinatorLevels, RateCoordinator, type RedisCoordinatorOptions } from "market-data-pipeline"
import { type ChildProcess, spawn } from "node:child_process"
import * as net from "node:net"
import { createClient } from "redis"

/** The shared Redis of this machine. */
export const sharedRedisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"

let counter = 0

/** A key prefix no other test (or run) uses. */
export const uniquePrefix = (name: string): string => `t${process.pid}${Date.now()}${name}${counter++}`

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** A TCP port nobody listens on right now. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

/** Whether a Redis on `port` answers PING (within 200 ms). */
const pings = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect({ port, host: "127.0.0.1" })
    let answer = ""
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    const timer = setTimeout(() => done(false), 200)
    socket.on("connect", () => socket.write("PING\r\n"))
    socket.on("data", (data) => {
      answer += data.toString()
      if (answer.includes("\r\n")) {
        clearTimeout(timer)
        done(answer.startsWith("+PONG"))
      }
    })
    socket.on("error", () => {
      clearTimeout(timer)
      done(false)
    })
  })

/** A `redis-server` of one test, on a port of its own, without persistence. */
export interface PrivateRedis {
  readonly port: number
  readonly url: string
  /** SIGKILL: the server dies at once, with its keys and scripts. */
  readonly kill: Effect.Effect<void>
  /** Starts the server again on the same port (empty: it persists nothing). */
  readonly start: Effect.Effect<void>
  /** SIGSTOP: the server hangs, its connections stay open (a dead link that does not fail). */
  readonly freeze: Effect.Effect<void>
  /** SIGCONT after `freeze`. */
  readonly thaw: Effect.Effect<void>
}

/**
 * Starts a private `redis-server` with these arguments besides its port,
 * bind address and log level (and no RDB snapshots); the scope's end kills it.
 */
export const privateRedisWith = (
  args: ReadonlyArray<string>
): Effect.Effect<PrivateRedis, never, Scope.Scope> =>
  Effect.gen(function*() {
    const port = yield* Effect.promise(freePort)
    let child: ChildProcess | undefined

    const stop = async (): Promise<void> => {
      const current = child
      child = undefined
      if (current === undefined || current.exitCode !== null || current.signalCode !== null) return
      const exited = new Promise<void>((resolve) => current.once("exit", () => resolve()))
      current.kill("SIGKILL")
      await Promise.race([exited, sleep(5000)])
    }

    const start = async (): Promise<void> => {
      if (child !== undefined) return
      const stderr: Array<string> = []
      const started = spawn(
        "redis-server",
        ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--loglevel", "warning", ...args],
        { stdio: ["ignore", "pipe", "pipe"] }
      )
      started.stdout.on("data", (data) => stderr.push(String(data)))
      started.stderr.on("data", (data) => stderr.push(String(data)))
      child = started
      const deadline = Date.now() + 10_000
      while (Date.now() < deadline) {
        if (started.exitCode !== null) break
        if (await pings(port)) return
        await sleep(20)
      }
      await stop()
      throw new Error(`redis-server on port ${port} did not start: ${stderr.join("")}`)
    }

    yield* Effect.acquireRelease(Effect.promise(start), () => Effect.promise(stop))
    return {
      port,
      url: `redis://127.0.0.1:${port}`,
      kill: Effect.promise(stop),
      start: Effect.promise(start),
      freeze: Effect.sync(() => void child?.kill("SIGSTOP")),
      thaw: Effect.sync(() => void child?.kill("SIGCONT"))
    }
  })

/** Starts a private `redis-server` without persistence; the scope's end kills it. */
export const privateRedis: Effect.Effect<PrivateRedis, never, Scope.Scope> = privateRedisWith(["--appendonly", "no"])

/** A plain node-redis client (its own connection, offline queue off), closed with the scope. */
export const plainClient = (url: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = createClient({ url, disableOfflineQueue: true })
      client.on("error", () => {})
      await client.connect()
      return client
    }),
    (client) => Effect.promise(() => client.close().catch(() => undefined))
  )

const oneShotClient = (url: string) =>
  createClient({ url, disableOfflineQueue: true, socket: { reconnectStrategy: false } })

/** Runs `f` with a plain client of its own on `url` (offline queue off, no reconnection), closed after. */
export const withClient = async <A>(
  url: string,
  f: (client: ReturnType<typeof oneShotClient>) => Promise<A>
): Promise<A> => {
  const client = oneShotClient(url)
  client.on("error", () => {})
  await client.connect()
  try {
    return await f(client)
  } finally {
    await client.close().catch(() => undefined)
  }
}

/** Runs `cleanUp` when the scope ends, best effort (the server may be down) and for at most 5 s. */
export const cleanUpAtEnd = (cleanUp: () => Promise<unknown>) =>
  Effect.addFinalizer(() =>
    Effect.promise(() => cleanUp().catch(() => undefined)).pipe(
      Effect.timeoutOption(Duration.seconds(5)),
      Effect.asVoid
    )
  )

/** Deletes every key of a test's prefix (`{<prefix>:rl:*`), with a client of its own. */
export const deleteKeys = (url: string, prefix: string): Promise<number> =>
  withClient(url, async (client) => {
    let deleted = 0
    let cursor = "0"
    do {
      const [next, keys] = await client.sendCommand([
        "SCAN",
        cursor,
        "MATCH",
        `{${prefix}:rl:*`,
        "COUNT",
        "1000"
      ]) as [string, Array<string>]
      cursor = next
      if (keys.length > 0) deleted += Number(await client.sendCommand(["UNLINK", ...keys]))
    } while (cursor !== "0")
    return deleted
  })

/** Deletes the prefix's keys when the scope ends (best effort: the server may be down). */
export const deleteKeysAtEnd = (url: string, prefix: string) => cleanUpAtEnd(() => deleteKeys(url, prefix))

/** The shared coordinator on its own node-redis client (a fresh layer: one more "process"). */
export const coordinatorLayer = (url: string, options: RedisCoordinatorOptions) =>
  Layer.fresh(
    RateCoordinator.layerRedis(options).pipe(
      Layer.provide(NodeRedis.layer({ url, disableOfflineQueue: true }))
    )
  )

/** Builds a shared coordinator in the current scope; its services. */
export const buildCoordinator = (url: string, options: RedisCoordinatorOptions) =>
  Effect.map(
    Layer.build(coordinatorLayer(url, options)),
    (context) => ({
      coordinator: Context.get(context, RateCoordinator),
      levels: Context.get(context, CoordinatorLevels)
    })
  )

/** The bucket hash of a provider, read with a plain client: field → value. */
export const bucketKey = (prefix: string, provider: string): string => `{${prefix}:rl:${provider}}:b`
