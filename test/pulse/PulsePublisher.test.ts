/**
 * The Pulse publisher on real Redis (127.0.0.1:6379, a unique namespace per
 * test; the slow and unavailable Redis cases run a private `redis-server`).
 * What it writes is read back with a plain client and with the consumer.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Exit, Layer, Result, Scope } from "effect"
import * as Redis from "effect/persistence/Redis"
import { type FeedbackEvent, FeedbackPublisher } from "market-data-pipeline"
import { decodeEntry, streamKey } from "../../src/pulse/PulseCodec.ts"
import { PulsePublisher } from "../../src/pulse/PulsePublisher.ts"
import { metricValue } from "../feedback/helpers.ts"
import { privateRedis } from "../rate/shared/redis.ts"
import {
  type Client,
  isolatedMetrics,
  plainClient,
  pulseExamples,
  quiet,
  redisLayer,
  setup,
  sharedRedisUrl,
  startConsumer,
  startPublisher,
  toEvent,
  uniqueNamespace,
  waitUntil
} from "./helpers/redis.ts"

const TEST_TIMEOUT = 60_000

/** The `data` bodies of a stream, oldest first. */
const bodies = (client: Client, key: string) =>
  Effect.map(
    Effect.promise(() => client.sendCommand(["XRANGE", key, "-", "+"]) as Promise<Array<[string, Array<string>]>>),
    (entries) => entries.map(([, fields]) => fields[fields.indexOf("data") + 1]!)
  )

const decoded = (data: string) => {
  const result = decodeEntry(data)
  if (Result.isFailure(result)) throw new Error(result.failure.reason)
  return result.success
}

const event = (coordinatorId: string, queueSize: number, level: FeedbackEvent["level"] = "soft"): FeedbackEvent => ({
  coordinatorId,
  queueSize,
  capacity: 1000,
  level,
  source: "store",
  ts: 1700000000 + queueSize / 8
})

describe("PulsePublisher", () => {
  it.live(
    "writes the golden `publish` bodies for the same event, envelope time and headers",
    () =>
      Effect.gen(function*() {
        const { client, namespace } = yield* setup("golden")
        const real = yield* Clock.Clock
        for (const vector of pulseExamples.publish) {
          // the envelope ts is the Clock's time of publish: a clock standing at the vector's time
          const at = Math.round(vector.envelope_ts * 1000)
          const clock: Clock.Clock = {
            currentTimeMillisUnsafe: () => at,
            currentTimeMillis: Effect.succeed(at),
            currentTimeNanosUnsafe: () => BigInt(at) * 1_000_000n,
            currentTimeNanos: Effect.succeed(BigInt(at) * 1_000_000n),
            monotonicTimeNanosUnsafe: () => real.monotonicTimeNanosUnsafe(),
            monotonicTimeNanos: real.monotonicTimeNanos,
            sleep: (duration) => real.sleep(duration)
          }
          const publisher = yield* startPublisher(sharedRedisUrl, {
            namespace,
            groups: [],
            headers: () => vector.headers
          }).pipe(Effect.provideService(Clock.Clock, clock))
          yield* publisher.publish(toEvent(vector.event))
          yield* publisher.flush
          const written = yield* bodies(client, streamKey(namespace))
          assert.strictEqual(written[written.length - 1], vector.data, vector.name)
          const feedback = decoded(written[written.length - 1]!)
          assert.deepStrictEqual({ ...feedback.event }, toEvent(vector.event))
          assert.strictEqual(feedback.envelopeTs, vector.envelope_ts)
          assert.strictEqual(feedback.schemaId, "telemetry.FeedbackEvent")
        }
      }),
    TEST_TIMEOUT
  )

  it.live(
    "end to end: FeedbackPublisher → stream → PulseConsumer; group `pipeline` pre-created at 0; metrics",
    () =>
      quiet(isolatedMetrics(Effect.gen(function*() {
        const { client, namespace } = yield* setup("e2e")
        const context = yield* Layer.build(
          PulsePublisher.layer({ namespace }).pipe(Layer.provide(redisLayer(sharedRedisUrl)))
        )
        const publisher = yield* FeedbackPublisher.pipe(Effect.provide(context))
        const sent = Array.from({ length: 5 }, (_, i) => event(`store-${i}`, 100 * i, i % 2 === 0 ? "soft" : "hard"))
        const before = Date.now()
        for (const e of sent) yield* publisher.publish(e)
        yield* (yield* PulsePublisher.pipe(Effect.provide(context))).flush

        // the group existed before anything was written: a consumer starting now reads it all
        const groups = (yield* Effect.promise(() =>
          client.sendCommand(["XINFO", "GROUPS", streamKey(namespace)]) as Promise<Array<unknown>>
        )).map((group) =>
          JSON.stringify(group)
        )
        assert.strictEqual(groups.length, 1)
        assert.include(groups[0], "pipeline")

        const received: Array<ReturnType<typeof decoded>> = []
        yield* startConsumer(
          sharedRedisUrl,
          { namespace, groupStart: "$" },
          (feedback) => Effect.sync(() => void received.push(feedback))
        )
        assert.isTrue(yield* waitUntil(Effect.sync(() => received.length === sent.length), 10_000))
        assert.deepStrictEqual(received.map((f) => ({ ...f.event })), sent)
        for (const f of received) {
          assert.isAtLeast(f.envelopeTs * 1000, before - 1)
          assert.isAtMost(f.envelopeTs * 1000, Date.now())
          assert.deepStrictEqual({ ...f.headers }, {
            utilization: (f.event.queueSize / f.event.capacity).toFixed(6)
          })
          assert.strictEqual(f.track, "v1")
        }
        const labels = { stream: "telemetry.feedback", track: "v1" }
        assert.strictEqual(yield* metricValue("pulse_publish_total", { ...labels, outcome: "success" }), 5)
        assert.strictEqual(yield* metricValue("pulse_publish_latency_ms", labels), 5)
      }))),
    TEST_TIMEOUT
  )

  it.live(
    "publish never waits for a frozen Redis; meanwhile a newer event supersedes a queued one, never the latest",
    () =>
      quiet(isolatedMetrics(Effect.gen(function*() {
        const server = yield* privateRedis
        const namespace = uniqueNamespace("slow")
        const client = yield* plainClient(server.url)
        const publisher = yield* startPublisher(server.url, { namespace, groups: [] })
        yield* publisher.publish(event("a", 1))
        yield* publisher.flush

        yield* server.freeze
        yield* publisher.publish(event("a", 2))
        // a2 is being written (stuck), then a3 is queued and replaced by a4
        yield* Effect.sleep(100)
        const started = Date.now()
        yield* publisher.publish(event("a", 3))
        yield* publisher.publish(event("b", 1))
        yield* publisher.publish(event("a", 4))
        const publishMs = Date.now() - started
        yield* Effect.sleep(200)
        yield* server.thaw
        assert.isTrue(
          (yield* publisher.flush.pipe(Effect.timeoutOption("10 seconds")))._tag === "Some",
          "not flushed after SIGCONT"
        )
        assert.isBelow(publishMs, 50, "publish waited for Redis")
        const written = (yield* bodies(client, streamKey(namespace))).map((d) => decoded(d).event)
        assert.deepStrictEqual(written.map((e) => `${e.coordinatorId}${e.queueSize}`), ["a1", "a2", "a4", "b1"])
        assert.strictEqual(
          yield* metricValue("pulse_publish_total", {
            stream: "telemetry.feedback",
            track: "v1",
            outcome: "superseded"
          }),
          1
        )
      }))),
    TEST_TIMEOUT
  )

  it.live(
    "while Redis is down the latest event of each coordinator waits, and is written once it is back",
    () =>
      quiet(isolatedMetrics(Effect.gen(function*() {
        const server = yield* privateRedis
        const namespace = uniqueNamespace("down")
        const publisher = yield* startPublisher(server.url, { namespace })
        yield* server.kill
        yield* publisher.publish(event("a", 1))
        yield* publisher.publish(event("b", 1))
        yield* Effect.sleep(300)
        yield* publisher.publish(event("a", 2))
        yield* server.start
        assert.isTrue(
          (yield* publisher.flush.pipe(Effect.timeoutOption("20 seconds")))._tag === "Some",
          "not written after the restart"
        )
        const client = yield* plainClient(server.url)
        const written = (yield* bodies(client, streamKey(namespace))).map((d) => decoded(d).event)
        const latest = new Map(written.map((e) => [e.coordinatorId, e.queueSize]))
        assert.deepStrictEqual(Object.fromEntries(latest), { a: 2, b: 1 })
        assert.isAtLeast(
          (yield* metricValue("pulse_publish_total", { stream: "telemetry.feedback", track: "v1", outcome: "error" }))!,
          1
        )
        // the server came back empty: the group was created again before the writes
        const groups = yield* Effect.promise(() =>
          client.sendCommand(["XINFO", "GROUPS", streamKey(namespace)]) as Promise<Array<unknown>>
        )
        assert.strictEqual(groups.length, 1)
      }))),
    TEST_TIMEOUT
  )

  it.live(
    "closing the scope writes what is still queued",
    () =>
      quiet(Effect.gen(function*() {
        const { client, namespace } = yield* setup("close")
        const scope = yield* Scope.make()
        const publisher = yield* startPublisher(sharedRedisUrl, { namespace }).pipe(Scope.provide(scope))
        for (let i = 0; i < 100; i++) yield* publisher.publish(event(`c${i}`, i))
        yield* Scope.close(scope, Exit.void)
        assert.strictEqual((yield* bodies(client, streamKey(namespace))).length, 100)
      })),
    TEST_TIMEOUT
  )

  it.effect("options that cannot be used fail with InvalidPulsePublisherOptions", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        PulsePublisher.make({ track: "v3" as "v1" }).pipe(Effect.provideService(Redis.Redis, {} as never))
      )
      assert.strictEqual(error._tag, "InvalidPulsePublisherOptions")
      assert.strictEqual(error.option, "track")
    }))
})
