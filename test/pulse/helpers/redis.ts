/**
 * Helpers of the Pulse transport tests: a unique namespace per test (its
 * stream and dead-letter keys deleted at the end), a private `redis-server`
 * with an append-only file fsynced on every write (so its streams and groups
 * survive a SIGKILL and restart), consumers and publishers on Redis clients
 * of their own, plain node-redis clients to write and look at streams the
 * way another process would, and bounded polling.
 */
import * as NodeRedis from "@effect/platform-node/NodeRedis"
import { Effect, Layer, Metric, References } from "effect"
import type * as Scope from "effect/Scope"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { deadLetterKey, streamKey } from "../../../src/pulse/PulseCodec.ts"
import { PulseConsumer, type PulseConsumerOptions, type PulseHandler } from "../../../src/pulse/PulseConsumer.ts"
import { PulsePublisher, type PulsePublisherOptions } from "../../../src/pulse/PulsePublisher.ts"
import {
  cleanUpAtEnd,
  plainClient,
  type PrivateRedis,
  privateRedisWith,
  sharedRedisUrl,
  withClient
} from "../../rate/shared/redis.ts"

export { plainClient, sharedRedisUrl } from "../../rate/shared/redis.ts"
export { pulseExamples, toEvent } from "./examples.ts"

/** A plain node-redis client of a test. */
export type Client = Effect.Success<ReturnType<typeof plainClient>>

let counter = 0

/** A Pulse namespace no other test (or run) uses. */
export const uniqueNamespace = (name: string): string => `tpulse${process.pid}${Date.now()}${name}${counter++}`

/** Effect's `Redis` service on its own node-redis client (a fresh layer: one more "process"). */
export const redisLayer = (url: string) => Layer.fresh(NodeRedis.layer({ url, disableOfflineQueue: true }))

/** Deletes the namespace's stream and dead-letter stream when the scope ends (best effort). */
export const deleteNamespaceAtEnd = (url: string, namespace: string) =>
  cleanUpAtEnd(() =>
    withClient(url, (client) => client.sendCommand(["DEL", streamKey(namespace), deadLetterKey(namespace)]))
  )

/** A namespace of this test, its keys deleted at the end, and a plain client on `url`. */
export const setup = (name: string, url: string = sharedRedisUrl) =>
  Effect.gen(function*() {
    const namespace = uniqueNamespace(name)
    yield* deleteNamespaceAtEnd(url, namespace)
    const client = yield* plainClient(url)
    return { namespace, key: streamKey(namespace), dlq: deadLetterKey(namespace), client }
  })

/** Builds `make` in the current scope with Effect's `Redis` on a client of its own on `url`. */
export const withOwnRedis = <A, E, R>(url: string, make: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(redisLayer(url))
    return yield* make.pipe(Effect.provide(context))
  })

/** Starts a consumer on a Redis client of its own, in the current scope. */
export const startConsumer = (url: string, options: PulseConsumerOptions, handler: PulseHandler) =>
  withOwnRedis(url, PulseConsumer.make(options, handler))

/** Starts a publisher on a Redis client of its own, in the current scope. */
export const startPublisher = (url: string, options: PulsePublisherOptions) =>
  withOwnRedis(url, PulsePublisher.make(options))

/** Keeps the expected warnings (dead letters, reconnections) out of the output (MDP_TEST_LOGS=1 shows them). */
export const quiet = <A, E, R>(body: Effect.Effect<A, E, R>) =>
  process.env.MDP_TEST_LOGS ? body : Effect.provideService(body, References.MinimumLogLevel, "Error")

/** Runs `body` with a metric registry of its own. */
export const isolatedMetrics = <A, E, R>(body: Effect.Effect<A, E, R>) =>
  Effect.provideService(body, Metric.MetricRegistry, new Map())

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

/** Starts a private `redis-server` with an fsync-always AOF: SIGKILL and restart keep every acknowledged write. */
export const durableRedis: Effect.Effect<PrivateRedis, never, Scope.Scope> = Effect.gen(function*() {
  // released after the server is killed (finalizers run in reverse order)
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "pulse-redis-"))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )
  return yield* privateRedisWith(["--dir", dir, "--appendonly", "yes", "--appendfsync", "always"])
})
