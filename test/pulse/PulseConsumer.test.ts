/**
 * The Pulse consumer on real Redis (127.0.0.1:6379, a unique namespace per
 * test; the restart test runs a durable private `redis-server` of its own).
 * Entries are written by a plain node-redis client, as the Python store
 * writes them. Bounds are generous: these are wall-clock tests.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Scope } from "effect"
import * as Redis from "effect/persistence/Redis"
import { RateCoordinator } from "market-data-pipeline"
import type { PulseFeedback } from "../../src/pulse/PulseCodec.ts"
import { encodeEntry } from "../../src/pulse/PulseCodec.ts"
import { PulseConsumer, type PulseHandler } from "../../src/pulse/PulseConsumer.ts"
import { metricValue, withRuntime } from "../feedback/helpers.ts"
import {
  type Client,
  durableRedis,
  isolatedMetrics,
  pulseExamples,
  quiet,
  redisLayer,
  setup,
  sharedRedisUrl,
  startConsumer,
  toEvent,
  waitUntil
} from "./helpers/redis.ts"

const TEST_TIMEOUT = 60_000

/** A handler that records what it is given. */
const recording = () => {
  const seen: Array<{ readonly id: string; readonly feedback: PulseFeedback }> = []
  const handler: PulseHandler = (feedback, id) =>
    Effect.sync(() => {
      seen.push({ id, feedback })
    })
  return { seen, handler }
}

const send = (client: Client, ...args: ReadonlyArray<string>) =>
  Effect.promise(() => client.sendCommand([...args]) as Promise<unknown>)

const xadd = (client: Client, key: string, data: string) =>
  Effect.map(send(client, "XADD", key, "*", "data", data), String)

const pendingCount = (client: Client, key: string, group: string) =>
  Effect.map(send(client, "XPENDING", key, group), (reply) => Number((reply as Array<unknown>)[0]))

/** The entries of a stream: id and fields as an object. */
const entriesOf = (client: Client, key: string) =>
  Effect.map(
    send(client, "XRANGE", key, "-", "+"),
    (reply) =>
      (reply as Array<[string, Array<string>]>).map(([id, flat]) => {
        const fields: Record<string, string> = {}
        for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!
        return { id, fields }
      })
  )

/** A body of the intended shape for `coordinatorId`; `queueSize` carries a sequence number. */
const body = (coordinatorId: string, queueSize: number, level: "ok" | "soft" | "hard" = "soft") =>
  encodeEntry(
    { coordinatorId, queueSize, capacity: 1_000_000, level, source: "store", ts: 1700000000 + queueSize },
    { ts: Date.now() / 1000 }
  )

describe("PulseConsumer", () => {
  it.live(
    "every golden body: the events as `expect` says, in order; the others dead-lettered in the Python layout; all acked",
    () =>
      quiet(isolatedMetrics(Effect.gen(function*() {
        const { client, dlq, key, namespace } = yield* setup("golden")
        // written before the group exists: a group created at "0" still reads them
        const ids: Array<string> = []
        for (const vector of pulseExamples.consume) ids.push(yield* xadd(client, key, vector.data))
        const { handler, seen } = recording()
        const consumer = yield* startConsumer(sharedRedisUrl, { namespace }, handler)
        const vectors = pulseExamples.consume
        const done = yield* waitUntil(Effect.map(consumer.stats, (s) => s.acked === vectors.length), 10_000)
        assert.isTrue(done, `not all acked: ${JSON.stringify(yield* consumer.stats)}`)

        const good = vectors.flatMap((v, i) => v.expect.ok ? [[v.name, v.expect, ids[i]!] as const] : [])
        const bad = vectors.map((v, i) => [v, ids[i]!] as const).filter(([v]) => !v.expect.ok)
        assert.deepStrictEqual(seen.map((s) => s.id), good.map(([, , id]) => id))
        for (let i = 0; i < good.length; i++) {
          const [name, expect] = good[i]!
          const { feedback } = seen[i]!
          assert.deepStrictEqual({ ...feedback.event }, toEvent(expect.event), name)
          assert.strictEqual(feedback.envelopeTs, expect.envelope_ts, name)
          assert.deepStrictEqual({ ...feedback.headers }, expect.headers, name)
        }

        const letters = yield* entriesOf(client, dlq)
        assert.deepStrictEqual(
          letters.map((l) => Object.keys(l.fields)),
          bad.map(() => ["original_id", "reason", "data"])
        )
        assert.deepStrictEqual(letters.map((l) => l.fields.original_id), bad.map(([, id]) => id))
        assert.deepStrictEqual(letters.map((l) => l.fields.data), bad.map(([v]) => v.data))
        for (const letter of letters) assert.isAbove(letter.fields.reason!.length, 0)
        assert.include(letters[bad.findIndex(([v]) => v.name === "invalid-payload")]!.fields.reason, "queue_size")

        assert.strictEqual(yield* pendingCount(client, key, "pipeline"), 0)
        const stats = yield* consumer.stats
        assert.strictEqual(stats.handled, good.length)
        assert.strictEqual(stats.deadLettered, bad.length)
        assert.strictEqual(
          yield* metricValue("pulse_consume_total", { stream: "telemetry.feedback", track: "v1", outcome: "success" }),
          good.length
        )
        assert.strictEqual(
          yield* metricValue("pulse_dlq_messages_total", { stream: "telemetry.feedback", reason: "decode" }),
          bad.length
        )
        assert.strictEqual(yield* metricValue("pulse_acks_total", { stream: "telemetry.feedback" }), vectors.length)
        assert.isAbove((yield* metricValue("pulse_lag_ms", { stream: "telemetry.feedback" }))!, 0)
      }))),
    TEST_TIMEOUT
  )

  it.live(
    "the store's double-wrapped body, through PulseConsumer.layer and the bus, adjusts the provider",
    () =>
      quiet(
        Effect.gen(function*() {
          const { client, key, namespace } = yield* setup("store")
          yield* Layer.build(PulseConsumer.layer({ namespace }).pipe(Layer.provide(redisLayer(sharedRedisUrl))))
          const coordinator = yield* RateCoordinator
          assert.strictEqual((yield* coordinator.state("ibkr")).scale, 1)
          const store = pulseExamples.consume.find((v) => v.name === "store-double-wrapped-B")!
          yield* xadd(client, key, store.data)
          const soft = yield* waitUntil(Effect.map(coordinator.state("ibkr"), (s) => s.scale === 0.5), 10_000)
          assert.isTrue(soft, "the soft level did not reach the provider")
          assert.strictEqual((yield* coordinator.state("ibkr")).pressure, "soft")
          // and back: an ok of the same coordinator lifts it
          yield* xadd(client, key, body("bars-coord", 10, "ok"))
          const ok = yield* waitUntil(Effect.map(coordinator.state("ibkr"), (s) => s.scale === 1), 10_000)
          assert.isTrue(ok, "the ok level did not reach the provider")
        }).pipe(withRuntime())
      ),
    TEST_TIMEOUT
  )

  it.live(
    "crash between read and XACK: the same consumer name, restarted, processes the entry once",
    () =>
      quiet(Effect.gen(function*() {
        const { client, key, namespace } = yield* setup("crash-same")
        const entered = yield* Deferred.make<void>()
        const crashed = yield* Scope.make()
        yield* startConsumer(
          sharedRedisUrl,
          { namespace, consumer: "worker-1" },
          () => Effect.andThen(Deferred.succeed(entered, undefined), Effect.never)
        ).pipe(Scope.provide(crashed))
        const id = yield* xadd(client, key, body("c1", 1))
        assert.isTrue(
          (yield* Deferred.await(entered).pipe(Effect.timeoutOption("10 seconds")))._tag === "Some",
          "the handler was not called"
        )
        yield* Scope.close(crashed, Exit.void)
        assert.strictEqual(yield* pendingCount(client, key, "pipeline"), 1)

        const { handler, seen } = recording()
        const restarted = yield* startConsumer(sharedRedisUrl, { namespace, consumer: "worker-1" }, handler)
        assert.isTrue(yield* waitUntil(Effect.sync(() => seen.length >= 1), 10_000), "not processed after restart")
        yield* Effect.sleep(500)
        assert.deepStrictEqual(seen.map((s) => s.id), [id])
        assert.isTrue(yield* waitUntil(Effect.map(pendingCount(client, key, "pipeline"), (n) => n === 0), 5000))
        assert.strictEqual((yield* restarted.stats).handled, 1)
      })),
    TEST_TIMEOUT
  )

  it.live(
    "crash between read and XACK: another consumer claims the idle entry (XAUTOCLAIM) and processes it once",
    () =>
      quiet(Effect.gen(function*() {
        const { client, key, namespace } = yield* setup("crash-other")
        const entered = yield* Deferred.make<void>()
        const crashed = yield* Scope.make()
        yield* startConsumer(
          sharedRedisUrl,
          { namespace, consumer: "dead" },
          () => Effect.andThen(Deferred.succeed(entered, undefined), Effect.never)
        ).pipe(Scope.provide(crashed))
        const first = yield* xadd(client, key, body("c1", 1))
        yield* Deferred.await(entered).pipe(Effect.timeout("10 seconds"))
        yield* Scope.close(crashed, Exit.void)

        const { handler, seen } = recording()
        const survivor = yield* startConsumer(
          sharedRedisUrl,
          { namespace, consumer: "alive", claimIdle: 300, claimInterval: 100 },
          handler
        )
        assert.isTrue(yield* waitUntil(Effect.sync(() => seen.length >= 1), 10_000), "the entry was not claimed")
        const second = yield* xadd(client, key, body("c1", 2))
        assert.isTrue(yield* waitUntil(Effect.sync(() => seen.length >= 2), 10_000))
        yield* Effect.sleep(600)
        assert.deepStrictEqual(seen.map((s) => s.id), [first, second])
        assert.strictEqual(yield* pendingCount(client, key, "pipeline"), 0)
        assert.strictEqual((yield* survivor.stats).handled, 2)
      })),
    TEST_TIMEOUT
  )

  it.live(
    "poison: an undecodable entry is dead-lettered at once, with its text, and acked; the next one goes on",
    () =>
      quiet(isolatedMetrics(Effect.gen(function*() {
        const { client, dlq, key, namespace } = yield* setup("poison")
        const { handler, seen } = recording()
        const consumer = yield* startConsumer(sharedRedisUrl, { namespace }, handler)
        const notJson = yield* xadd(client, key, "{\"ts\": 1")
        const noData = yield* Effect.map(send(client, "XADD", key, "*", "body", "x"), String)
        const good = yield* xadd(client, key, body("c1", 1))
        assert.isTrue(yield* waitUntil(Effect.map(consumer.stats, (s) => s.acked === 3), 10_000))
        assert.deepStrictEqual(seen.map((s) => s.id), [good])
        const letters = yield* entriesOf(client, dlq)
        assert.deepStrictEqual(letters.map((l) => l.fields.original_id), [notJson, noData])
        assert.deepStrictEqual(letters.map((l) => l.fields.data), ["{\"ts\": 1", ""])
        assert.strictEqual(yield* pendingCount(client, key, "pipeline"), 0)
        assert.strictEqual(
          yield* metricValue("pulse_consume_total", {
            stream: "telemetry.feedback",
            track: "unknown",
            outcome: "error"
          }),
          2
        )
      }))),
    TEST_TIMEOUT
  )

  it.live(
    "poison: a handler that always fails is retried through XAUTOCLAIM, then dead-lettered after maxDeliveries",
    () =>
      quiet(isolatedMetrics(Effect.gen(function*() {
        const { client, dlq, key, namespace } = yield* setup("max")
        let attempts = 0
        const consumer = yield* startConsumer(
          sharedRedisUrl,
          { namespace, maxDeliveries: 3, claimIdle: 200, claimInterval: 100 },
          () =>
            Effect.suspend(() => {
              attempts++
              return Effect.fail("boom")
            })
        )
        const data = body("c1", 1)
        const id = yield* xadd(client, key, data)
        const pendingGauge = metricValue("pulse_pending_messages", { stream: "telemetry.feedback" })
        assert.isTrue(yield* waitUntil(Effect.map(pendingGauge, (n) => n === 1), 10_000), "pending gauge never read 1")
        const dead = yield* waitUntil(Effect.map(entriesOf(client, dlq), (l) => l.length === 1), 15_000)
        assert.isTrue(dead, `not dead-lettered: ${JSON.stringify(yield* consumer.stats)}`)
        const [letter] = yield* entriesOf(client, dlq)
        assert.deepStrictEqual(letter!.fields, {
          original_id: id,
          reason: "max deliveries exceeded (4)",
          data
        })
        yield* Effect.sleep(500)
        assert.strictEqual(attempts, 3)
        assert.strictEqual(yield* pendingCount(client, key, "pipeline"), 0)
        assert.isTrue(yield* waitUntil(Effect.map(pendingGauge, (n) => n === 0), 5000), "pending gauge still above 0")
        const stats = yield* consumer.stats
        assert.strictEqual(stats.errors, 3)
        assert.strictEqual(stats.deadLettered, 1)
        assert.strictEqual(
          yield* metricValue("pulse_dlq_messages_total", { stream: "telemetry.feedback", reason: "max_deliveries" }),
          1
        )
        assert.strictEqual(
          yield* metricValue("pulse_consume_total", { stream: "telemetry.feedback", track: "v1", outcome: "error" }),
          3
        )
      }))),
    TEST_TIMEOUT
  )

  it.live(
    "two consumers in one group share the work: every entry applied exactly once, each coordinator in order",
    () =>
      quiet(Effect.gen(function*() {
        const { client, key, namespace } = yield* setup("share")
        const applied: Array<
          { readonly consumer: string; readonly id: string; readonly c: string; readonly seq: number }
        > = []
        const handlerOf = (consumer: string): PulseHandler => (feedback, id) =>
          Effect.sync(() => {
            applied.push({ consumer, id, c: feedback.event.coordinatorId, seq: feedback.event.queueSize })
          })
        const options = { namespace, group: "shared", count: 8 }
        yield* startConsumer(sharedRedisUrl, { ...options, consumer: "a" }, handlerOf("a"))
        yield* startConsumer(sharedRedisUrl, { ...options, consumer: "b" }, handlerOf("b"))
        const total = 1000
        for (let seq = 0; seq < total; seq += 20) {
          yield* Effect.promise(() =>
            Promise.all(
              Array.from(
                { length: 20 },
                (_, i) => client.sendCommand(["XADD", key, "*", "data", body(`c${(seq + i) % 10}`, seq + i)])
              )
            )
          )
          yield* Effect.sleep(5)
        }
        assert.isTrue(yield* waitUntil(Effect.sync(() => applied.length >= total), 20_000), `${applied.length}`)
        yield* Effect.sleep(500)
        assert.strictEqual(applied.length, total)
        assert.strictEqual(new Set(applied.map((a) => a.id)).size, total)
        assert.deepStrictEqual([...new Set(applied.map((a) => a.seq))].sort((x, y) => x - y), [
          ...Array(total).keys()
        ])
        const byA = applied.filter((a) => a.consumer === "a").length
        assert.isAbove(byA, 0, "consumer a got nothing")
        assert.isBelow(byA, total, "consumer b got nothing")
        for (const consumer of ["a", "b"]) {
          const last = new Map<string, number>()
          for (const a of applied.filter((x) => x.consumer === consumer)) {
            assert.isAbove(a.seq, last.get(a.c) ?? -1, `${consumer}: ${a.c} out of order`)
            last.set(a.c, a.seq)
          }
        }
        assert.strictEqual(yield* pendingCount(client, key, "shared"), 0)
      })),
    TEST_TIMEOUT
  )

  it.live(
    "a Redis restart (SIGKILL, durable AOF) mid-stream loses nothing and applies nothing twice",
    () =>
      quiet(Effect.gen(function*() {
        const server = yield* durableRedis
        const { client, key, namespace } = yield* setup("restart", server.url)
        const applied: Array<{ readonly id: string; readonly seq: number }> = []
        // a slow handler: a backlog is read but not yet acknowledged when the server dies
        const handler: PulseHandler = (feedback, id) =>
          Effect.andThen(
            Effect.sleep(2),
            Effect.sync(() => {
              applied.push({ id, seq: feedback.event.queueSize })
            })
          )
        const consumer = yield* startConsumer(server.url, { namespace, count: 16, block: 500 }, handler)
        const total = 600
        const written = new Set<number>()
        // an XADD retried until the server acknowledges it (the reply lost in a crash may duplicate it: same seq)
        const produce = (seq: number): Effect.Effect<void> =>
          Effect.gen(function*() {
            for (let attempt = 0; attempt < 600; attempt++) {
              const exit = yield* Effect.exit(
                Effect.tryPromise(() => client.sendCommand(["XADD", key, "*", "data", body(`c${seq % 7}`, seq)]))
              )
              if (Exit.isSuccess(exit)) {
                written.add(seq)
                return
              }
              yield* Effect.sleep(50)
            }
          })
        for (let seq = 0; seq < 300; seq += 50) {
          yield* Effect.forEach(Array.from({ length: 50 }, (_, i) => seq + i), produce, { concurrency: "unbounded" })
        }
        const before = applied.length
        yield* server.kill
        const producer = yield* Effect.forkChild(
          Effect.forEach(Array.from({ length: total - 300 }, (_, i) => 300 + i), produce, { concurrency: 10 })
        )
        yield* Effect.sleep(500)
        yield* server.start
        yield* Fiber.join(producer)
        assert.strictEqual(written.size, total)
        const all = yield* waitUntil(
          Effect.sync(() => new Set(applied.map((a) => a.seq)).size === total),
          30_000,
          100
        )
        const missing = [...written].filter((seq) => !applied.some((a) => a.seq === seq))
        assert.isTrue(all, `missing ${missing.length}: ${missing.slice(0, 20)}`)
        assert.isBelow(before, 300, "the backlog was drained before the kill: the test proves little")
        yield* Effect.sleep(500)
        assert.strictEqual(new Set(applied.map((a) => a.id)).size, applied.length, "an entry was applied twice")
        assert.isTrue(yield* waitUntil(Effect.map(pendingCount(client, key, "pipeline"), (n) => n === 0), 10_000))
        assert.isAtLeast((yield* consumer.stats).reconnects, 1)
      })),
    TEST_TIMEOUT
  )

  it.effect("options that cannot be used fail with InvalidPulseConsumerOptions", () =>
    Effect.gen(function*() {
      // checked before Redis is touched
      const error = yield* Effect.flip(
        PulseConsumer.make({ count: 0 }, () => Effect.void).pipe(Effect.provideService(Redis.Redis, {} as never))
      )
      assert.strictEqual(error._tag, "InvalidPulseConsumerOptions")
      assert.strictEqual(error.option, "count")
      assert.strictEqual(error.message, "PulseConsumer option count must be a positive integer, got 0")
    }))
})
