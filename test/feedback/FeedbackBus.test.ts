import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Layer, Metric, Scope } from "effect"
import { TestClock } from "effect/testing"
import { FeedbackBus, type FeedbackConsumeOptions, type FeedbackEvent, FeedbackPublisher } from "market-data-pipeline"
import { captureLogs, event, eventually, letOthersRun, metricValue, seriesLabels } from "./helpers.ts"

const withBus = <A, E, R, LE = never>(
  effect: Effect.Effect<A, E, R>,
  layer: Layer.Layer<FeedbackBus | FeedbackPublisher, LE> = Layer.fresh(FeedbackBus.layer)
) => effect.pipe(Effect.provide(layer), Effect.provideService(Metric.MetricRegistry, new Map()))

/**
 * A consumer blocked in its handler on the first event while `count` events
 * of three coordinators are published: the publisher never waits for it, and
 * once released it ends with each coordinator's last event, in publish order,
 * the events its buffer (1024) slid past counted as dropped. Returns what it saw.
 */
const blockedThenReleased = (count: number, options?: FeedbackConsumeOptions) =>
  Effect.gen(function*() {
    const bus = yield* FeedbackBus
    const release = yield* Deferred.make<void>()
    const seen: Array<FeedbackEvent> = []
    yield* bus.consume(
      "slow",
      (e) => Effect.andThen(Effect.sync(() => seen.push(e)), seen.length === 0 ? Deferred.await(release) : Effect.void),
      options
    )
    yield* bus.publish(event("warmup", "ok"))
    yield* eventually(Effect.sync(() => seen.length === 1)) // now blocked inside the handler
    const coordinators = ["bars", "quotes", "trades"]
    const levels = ["ok", "soft", "hard"] as const
    const last = new Map<string, FeedbackEvent>()
    for (let i = 0; i < count; i++) {
      const e = event(coordinators[i % 3]!, levels[(i * 7) % 3]!, 1700000000 + i)
      last.set(e.coordinatorId, e)
      yield* bus.publish(e)
    }
    assert.strictEqual(seen.length, 1, "the handler was blocked the whole time; publish did not wait for it")
    yield* Deferred.succeed(release, undefined)
    yield* eventually(
      Effect.sync(() => coordinators.every((c) => seen.findLast((e) => e.coordinatorId === c) === last.get(c)))
    )
    assert.isBelow(seen.length, count)
    assert.strictEqual(yield* metricValue("pipeline_feedback_events_dropped_total"), count + 1 - seen.length)
    for (const c of coordinators) {
      const ts = seen.filter((e) => e.coordinatorId === c).map((e) => e.ts)
      assert.deepStrictEqual(ts, [...ts].sort((a, b) => a - b))
    }
    return seen
  })

describe("FeedbackBus", () => {
  it.effect("ten concurrent publishes from ten coordinators all arrive, at every subscriber", () =>
    withBus(Effect.gen(function*() {
      const bus = yield* FeedbackBus
      const first: Array<FeedbackEvent> = []
      const second: Array<FeedbackEvent> = []
      yield* bus.consume("first", (e) => Effect.sync(() => first.push(e)))
      yield* bus.consume("second", (e) => Effect.sync(() => second.push(e)))
      const publisher = yield* FeedbackPublisher // the same bus
      yield* Effect.forEach(
        Array.from({ length: 10 }, (_, i) => event(`coord-${i}`, "soft")),
        (e) => publisher.publish(e),
        { concurrency: "unbounded" }
      )
      yield* eventually(Effect.sync(() => first.length === 10 && second.length === 10))
      assert.deepStrictEqual(first.map((e) => e.coordinatorId).sort(), second.map((e) => e.coordinatorId).sort())
      assert.strictEqual(new Set(first.map((e) => e.coordinatorId)).size, 10)
    })))

  it.effect("conflation: a blocked subscriber ends with each coordinator's last event; the publisher never waits", () =>
    withBus(blockedThenReleased(100_000)))

  it.effect("a failing subscriber is counted, keeps receiving, and does not affect another subscriber", () =>
    withBus(Effect.gen(function*() {
      const bus = yield* FeedbackBus
      let failingCalls = 0
      const healthy: Array<FeedbackEvent> = []
      yield* bus.consume("failing", () =>
        Effect.suspend(() => {
          failingCalls++
          return failingCalls % 2 === 0 ? Effect.die(new Error("boom")) : Effect.fail("nope")
        }))
      yield* bus.consume("healthy", (e) => Effect.sync(() => healthy.push(e)))
      for (let i = 0; i < 20; i++) yield* bus.publish(event(`c${i}`, "hard"))
      yield* eventually(Effect.sync(() => healthy.length === 20 && failingCalls === 20))
      const errors = (yield* Metric.snapshot).find((s) => s.id === "pipeline_feedback_subscriber_errors_total")
      assert.strictEqual((errors!.state as any).count, 20)
      assert.deepStrictEqual(errors!.attributes, { subscriber: "failing" })
    })))

  it.effect("a subscription is a stream of what is published after it was made", () =>
    withBus(Effect.gen(function*() {
      const bus = yield* FeedbackBus
      yield* bus.publish(event("before", "ok"))
      const subscription = yield* bus.subscribe
      yield* bus.publish(event("a", "soft"))
      yield* bus.publish(event("b", "hard"))
      assert.strictEqual((yield* subscription.take).coordinatorId, "a")
      assert.strictEqual((yield* subscription.take).coordinatorId, "b")
    })))

  it.effect("two layers are two independent buses (no process-wide singleton)", () =>
    Effect.gen(function*() {
      const received: Array<FeedbackEvent> = []
      yield* withBus(Effect.gen(function*() {
        const bus = yield* FeedbackBus
        yield* bus.consume("one", (e) => Effect.sync(() => received.push(e)))
        yield* withBus(Effect.gen(function*() {
          yield* (yield* FeedbackBus).publish(event("other-bus", "hard"))
        }))
        yield* bus.publish(event("this-bus", "ok"))
        yield* eventually(Effect.sync(() => received.length > 0))
      }))
      assert.deepStrictEqual(received.map((e) => e.coordinatorId), ["this-bus"])
    }))

  it.effect("a subscriber failing on every event logs one line per 10 s; every failure is counted", () => {
    const logs = captureLogs()
    return withBus(
      Effect.gen(function*() {
        const bus = yield* FeedbackBus
        yield* bus.consume("failing", () => Effect.fail("nope"))
        const failures = metricValue("pipeline_feedback_subscriber_errors_total", { subscriber: "failing" })
        for (let i = 0; i < 200; i++) yield* bus.publish(event(`c${i % 7}`, "hard"))
        yield* eventually(Effect.map(failures, (n) => n === 200))
        const errors = () => logs.lines.filter((l) => l.level === "Error").map((l) => l.message)
        assert.deepStrictEqual(errors(), ["feedback subscriber failing failed on c0"])
        yield* TestClock.adjust("9 seconds")
        yield* bus.publish(event("c1", "hard"))
        yield* eventually(Effect.map(failures, (n) => n === 201))
        assert.strictEqual(errors().length, 1)
        yield* TestClock.adjust("1 second")
        yield* bus.publish(event("c2", "hard"))
        yield* eventually(Effect.map(failures, (n) => n === 202))
        assert.deepStrictEqual(errors(), [
          "feedback subscriber failing failed on c0",
          "feedback subscriber failing failed on c2 (200 more since the previous line, not logged)"
        ])
      }).pipe(Effect.provide(logs.layer))
    )
  })

  it.effect("the latest-event cache holds at most maxCoordinators; an idle ok entry gives way, soft/hard never", () =>
    withBus(
      Effect.gen(function*() {
        const bus = yield* FeedbackBus
        const subscription = yield* bus.subscribe
        const received = seriesLabels("pipeline_feedback_events_received_total", "source")
        const uncached = metricValue("pipeline_feedback_events_uncached_total")
        yield* bus.publish(event("a", "ok"))
        yield* bus.publish(event("b", "hard"))
        yield* bus.publish(event("a", "ok"))
        assert.deepStrictEqual(yield* received, ["a", "b"])
        yield* bus.publish(event("c", "soft")) // full: a (ok) gives way, its series with it
        assert.deepStrictEqual(yield* received, ["b", "c"])
        yield* bus.publish(event("d", "hard")) // full, none at ok: d is delivered, not cached
        assert.deepStrictEqual(yield* received, ["b", "c"])
        assert.strictEqual(yield* uncached, 1)
        const delivered: Array<string> = []
        for (let i = 0; i < 5; i++) delivered.push((yield* subscription.take).coordinatorId)
        assert.deepStrictEqual(delivered, ["a", "b", "a", "c", "d"])
        assert.strictEqual(
          yield* metricValue("pipeline_feedback_events_received_total", { source: "b", level: "hard" }),
          1
        )
      }),
      FeedbackBus.layerWith({ maxCoordinators: 2 })
    ))

  it.effect("forget lets a coordinator's place go (a cleared or expired store), so a new one is cached", () =>
    withBus(
      Effect.gen(function*() {
        const bus = yield* FeedbackBus
        const received = seriesLabels("pipeline_feedback_events_received_total", "source")
        yield* bus.publish(event("a", "hard"))
        yield* bus.publish(event("b", "hard"))
        assert.isTrue(yield* bus.forget("a"))
        assert.isFalse(yield* bus.forget("a"))
        yield* bus.publish(event("c", "soft"))
        assert.deepStrictEqual(yield* received, ["b", "c"])
        assert.strictEqual(
          yield* metricValue("pipeline_feedback_events_uncached_total"),
          0
        )
      }),
      FeedbackBus.layerWith({ maxCoordinators: 2 })
    ))

  it.effect("by default at most 256 coordinators are cached, the most recent ones at ok", () =>
    withBus(Effect.gen(function*() {
      const bus = yield* FeedbackBus
      for (let i = 0; i < 1000; i++) yield* bus.publish(event(`store_${1000 + i}`, "ok"))
      const sources = yield* seriesLabels("pipeline_feedback_events_received_total", "source")
      assert.strictEqual(sources.length, 256)
      assert.deepStrictEqual([sources[0], sources[255]], ["store_1744", "store_1999"])
    })))

  it.effect("options are checked: one that cannot be used fails with InvalidBusOptions naming it", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [unknown, string]> = [
        [{ bufferSize: 0 }, "bufferSize"],
        [{ bufferSize: 1.5 }, "bufferSize"],
        [{ maxCoordinators: NaN }, "maxCoordinators"],
        [{ maxCoordinators: -1 }, "maxCoordinators"],
        [{ maxCoordinators: "10" }, "maxCoordinators"]
      ]
      for (const [options, option] of cases) {
        const error = yield* Effect.flip(Layer.build(FeedbackBus.layerWith(options as any)))
        assert.strictEqual(error._tag, "InvalidBusOptions")
        assert.strictEqual(error.option, option)
        assert.include(error.message, `FeedbackBus option ${option} must be a positive integer`)
      }
      assert.strictEqual((yield* Effect.flip(FeedbackBus.make({ maxCoordinators: 0 })))._tag, "InvalidBusOptions")
    }))
})

describe("FeedbackBus inline delivery", () => {
  const inline = { delivery: "inline" } as const

  it.effect("a handler that does not wait has handled the event when publish returns", () =>
    withBus(Effect.gen(function*() {
      const bus = yield* FeedbackBus
      const seen: Array<string> = []
      yield* bus.consume("inline", (e) => Effect.sync(() => seen.push(e.coordinatorId)), inline)
      yield* bus.publish(event("a", "soft"))
      assert.deepStrictEqual(seen, ["a"])
      yield* bus.publish(event("b", "hard"))
      assert.deepStrictEqual(seen, ["a", "b"])
    })))

  it.effect("a handler that waits: publish does not wait; what came meanwhile follows in order", () =>
    withBus(Effect.gen(function*() {
      const bus = yield* FeedbackBus
      const seen: Array<string> = []
      yield* bus.consume(
        "sleepy",
        (e) => Effect.andThen(Effect.sync(() => seen.push(e.coordinatorId)), Effect.sleep("1 second")),
        inline
      )
      yield* bus.publish(event("a", "soft"))
      yield* bus.publish(event("b", "hard"))
      yield* bus.publish(event("c", "ok"))
      assert.deepStrictEqual(seen, ["a"], "the first run waits on the clock; publish returned regardless")
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(seen, ["a", "b"])
      yield* TestClock.adjust("2 seconds")
      assert.deepStrictEqual(seen, ["a", "b", "c"])
      // back to handling inside publish once the backlog is done
      yield* bus.publish(event("d", "ok"))
      assert.deepStrictEqual(seen, ["a", "b", "c", "d"])
    })))

  it.effect("conflation: a blocked inline handler ends with each coordinator's last event, in publish order", () =>
    withBus(Effect.gen(function*() {
      const seen = yield* blockedThenReleased(10_000, inline)
      const bus = yield* FeedbackBus
      yield* bus.publish(event("after", "ok"))
      assert.strictEqual(seen[seen.length - 1]!.coordinatorId, "after")
    })))

  it.effect("an inline consumer added by a handler while an event is handed out gets only later events", () =>
    withBus(Effect.gen(function*() {
      const bus = yield* FeedbackBus
      const scope = yield* Effect.scope
      const late: Array<string> = []
      let added = false
      yield* bus.consume("adds", () =>
        added ? Effect.void : Effect.suspend(() => {
          added = true
          return bus.consume("late", (e) => Effect.sync(() => late.push(e.coordinatorId)), inline).pipe(
            Effect.provideService(Scope.Scope, scope)
          )
        }), inline)
      yield* bus.publish(event("before", "ok"))
      yield* bus.publish(event("after", "ok"))
      assert.deepStrictEqual(late, ["after"])
      assert.strictEqual(yield* metricValue("pipeline_feedback_events_dropped_total"), 0)
    })))

  it.effect("a failing inline handler is counted, logged at most once per 10 s, and keeps receiving", () => {
    const logs = captureLogs()
    return withBus(
      Effect.gen(function*() {
        const bus = yield* FeedbackBus
        let calls = 0
        const healthy: Array<string> = []
        yield* bus.consume("failing", () =>
          Effect.suspend(() => {
            calls++
            return calls % 2 === 0 ? Effect.die(new Error("boom")) : Effect.fail("nope")
          }), inline)
        yield* bus.consume("healthy", (e) => Effect.sync(() => healthy.push(e.coordinatorId)), inline)
        for (let i = 0; i < 20; i++) yield* bus.publish(event(`c${i}`, "hard"))
        assert.strictEqual(calls, 20)
        assert.strictEqual(healthy.length, 20)
        const failures = metricValue("pipeline_feedback_subscriber_errors_total", { subscriber: "failing" })
        assert.strictEqual(yield* failures, 20)
        const errors = () => logs.lines.filter((l) => l.level === "Error").map((l) => l.message)
        assert.deepStrictEqual(errors(), ["feedback subscriber failing failed on c0"])
        yield* TestClock.adjust("10 seconds")
        yield* bus.publish(event("c1", "hard"))
        assert.deepStrictEqual(errors(), [
          "feedback subscriber failing failed on c0",
          "feedback subscriber failing failed on c1 (19 more since the previous line, not logged)"
        ])
      }).pipe(Effect.provide(logs.layer))
    )
  })

  it.effect("a handler publishing on the bus: every inline consumer sees the events in publish order", () =>
    withBus(Effect.gen(function*() {
      const bus = yield* FeedbackBus
      const first: Array<string> = []
      const second: Array<string> = []
      yield* bus.consume("echo", (e) =>
        Effect.andThen(
          Effect.sync(() => first.push(e.coordinatorId)),
          e.coordinatorId.startsWith("echo-") ? Effect.void : bus.publish(event(`echo-${e.coordinatorId}`, e.level))
        ), inline)
      yield* bus.consume("listener", (e) => Effect.sync(() => second.push(e.coordinatorId)), inline)
      yield* bus.publish(event("a", "soft"))
      yield* bus.publish(event("b", "ok"))
      const expected = ["a", "echo-a", "b", "echo-b"]
      assert.deepStrictEqual(first, expected)
      assert.deepStrictEqual(second, expected)
    })))

  it.effect("closing the scope stops an inline consumer, interrupting a run that waits", () =>
    withBus(Effect.gen(function*() {
      const bus = yield* FeedbackBus
      const seen: Array<string> = []
      let interrupted = false
      const scope = yield* Scope.make()
      yield* bus.consume(
        "scoped",
        (e) =>
          Effect.andThen(
            Effect.sync(() => seen.push(e.coordinatorId)),
            e.level === "hard"
              ? Effect.onInterrupt(Effect.never, () => Effect.sync(() => interrupted = true))
              : Effect.void
          ),
        inline
      ).pipe(Scope.provide(scope))
      yield* bus.publish(event("a", "ok"))
      yield* bus.publish(event("b", "hard")) // waits forever
      yield* bus.publish(event("c", "ok")) // queued behind it
      yield* Scope.close(scope, Exit.void)
      assert.isTrue(interrupted)
      yield* bus.publish(event("d", "ok"))
      yield* letOthersRun
      assert.deepStrictEqual(seen, ["a", "b"])
      assert.strictEqual(yield* metricValue("pipeline_feedback_subscriber_errors_total", { subscriber: "scoped" }), 0)
    })))
})

describe("FeedbackBus inline delivery: a handler that throws", () => {
  it.effect("fails that run (counted), never publish; the consumer keeps receiving", () =>
    withBus(Effect.gen(function*() {
      const bus = yield* FeedbackBus
      const seen: Array<string> = []
      yield* bus.consume("throwing", (e) => {
        if (e.level === "hard") throw new Error("not an effect")
        return Effect.sync(() => seen.push(e.coordinatorId))
      }, { delivery: "inline" })
      yield* bus.publish(event("a", "hard"))
      yield* bus.publish(event("b", "ok"))
      assert.deepStrictEqual(seen, ["b"])
      assert.strictEqual(yield* metricValue("pipeline_feedback_subscriber_errors_total", { subscriber: "throwing" }), 1)
    })))
})
