/**
 * Helpers of the Pulse transport tests: a unique namespace per test (its
 * stream and dead-letter keys deleted at the end), a private `redis-server`
 * with an append-only file fsynced on every write (so its streams and groups
 * survive a SIGKILL and restart), plain node-redis clients to write and look
 * at streams the way another process would, the golden vectors, and bounded
 * polling.
 */
import * as NodeRedis from "@effect/platform-node/NodeRedis"
import { Duration, Effect, Layer } from "effect"
import type * as Scope from "effect/Scope"
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createClient } from "redis"
import { deadLetterKey, streamKey } from "../../../src/pulse/PulseCodec.ts"
import { freePort } from "../../rate/shared/redis.ts"

export { freePort, plainClient } from "../../rate/shared/redis.ts"

/** The shared Redis of this machine. */
export const sharedRedisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"

let counter = 0

/** A Pulse namespace no other test (or run) uses. */
export const uniqueNamespace = (name: string): string => `tpulse${process.pid}${Date.now()}${name}${counter++}`

/** Effect's `Redis` service on its own node-redis client (a fresh layer: one more "process"). */
export const redisLayer = (url: string) => Layer.fresh(NodeRedis.layer({ url, disableOfflineQueue: true }))

/** Deletes the namespace's stream and dead-letter stream when the scope ends (best effort). */
export const deleteNamespaceAtEnd = (url: string, namespace: string) =>
  Effect.addFinalizer(() =>
    Effect.promise(async () => {
      const client = createClient({ url, disableOfflineQueue: true, socket: { reconnectStrategy: false } })
      client.on("error", () => {})
      try {
        await client.connect()
        await client.sendCommand(["DEL", streamKey(namespace), deadLetterKey(namespace)])
      } catch {
        // the server may be gone
      } finally {
        await client.close().catch(() => undefined)
      }
    }).pipe(Effect.timeoutOption(Duration.seconds(5)), Effect.asVoid)
  )

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Polls `check` every `everyMs` until it holds; false if `withinMs` passed first (bounded, real clock). */
export const waitUntil = <E, R>(check: Effect.Effect<boolean, E, R>, withinMs: number, everyMs = 25) =>
  Effect.gen(function*() {
    const deadline = Date.now() + withinMs
    while (Date.now() < deadline) {
      if (yield* check) return true
      yield* Effect.sleep(everyMs)
    }
    return yield* check
  })

/** A `redis-server` of one test with an fsync-always AOF: SIGKILL and restart keep every acknowledged write. */
export interface DurableRedis {
  readonly url: string
  readonly kill: Effect.Effect<void>
  readonly start: Effect.Effect<void>
}

/** Starts a private durable `redis-server`; the scope's end kills it and deletes its directory. */
export const durableRedis: Effect.Effect<DurableRedis, never, Scope.Scope> = Effect.gen(function*() {
  const port = yield* Effect.promise(freePort)
  const dir = mkdtempSync(join(tmpdir(), "pulse-redis-"))
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
    const output: Array<string> = []
    const started = spawn("redis-server", [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--save",
      "",
      "--appendonly",
      "yes",
      "--appendfsync",
      "always",
      "--loglevel",
      "warning"
    ], { stdio: ["ignore", "pipe", "pipe"] })
    started.stdout.on("data", (data) => output.push(String(data)))
    started.stderr.on("data", (data) => output.push(String(data)))
    child = started
    const client = createClient({ url: `redis://127.0.0.1:${port}`, socket: { reconnectStrategy: false } })
    client.on("error", () => {})
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline && started.exitCode === null) {
      try {
        await client.connect()
        // loading the AOF answers LOADING until done
        if ((await client.ping()) === "PONG") {
          await client.close()
          return
        }
      } catch {
        if (client.isOpen) client.destroy()
      }
      await sleep(20)
    }
    await stop()
    throw new Error(`redis-server on port ${port} did not start: ${output.join("")}`)
  }

  yield* Effect.acquireRelease(Effect.promise(start), () =>
    Effect.promise(async () => {
      await stop()
      rmSync(dir, { recursive: true, force: true })
    }))
  return { url: `redis://127.0.0.1:${port}`, kill: Effect.promise(stop), start: Effect.promise(start) }
})

/** One `consume` vector of pulse-examples.json. */
export interface ConsumeVector {
  readonly name: string
  readonly data: string
  readonly expect: {
    readonly ok: boolean
    readonly event?: {
      readonly coordinator_id: string
      readonly queue_size: number
      readonly capacity: number
      readonly level: "ok" | "soft" | "hard"
      readonly source: string
      readonly ts: number
    }
    readonly envelope_ts?: number
    readonly headers?: Readonly<Record<string, string>>
  }
}

/** One `publish` vector of pulse-examples.json. */
export interface PublishVector {
  readonly name: string
  readonly event: NonNullable<ConsumeVector["expect"]["event"]>
  readonly envelope_ts: number
  readonly headers: Readonly<Record<string, string>>
  readonly data: string
}

const examples = JSON.parse(
  readFileSync(new URL("../../fixtures/pulse-examples.json", import.meta.url), "utf8")
) as { readonly consume: ReadonlyArray<ConsumeVector>; readonly publish: ReadonlyArray<PublishVector> }

/** The golden bodies produced by the Python models (a copy of shared/reference/pulse-examples.json). */
export const pulseExamples = examples

/** A vector's event in our type. */
export const toEvent = (e: NonNullable<ConsumeVector["expect"]["event"]>) => ({
  coordinatorId: e.coordinator_id,
  queueSize: e.queue_size,
  capacity: e.capacity,
  level: e.level,
  source: e.source,
  ts: e.ts
})
