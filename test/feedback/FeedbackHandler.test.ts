import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Layer, Metric, Schema } from "effect"
import { TestClock } from "effect/testing"
import {
  BackpressureLevel,
  defaultPolicy,
  FeedbackBus,
  type FeedbackEvent,
  FeedbackHandler,
  type RateAdjustment,
  RateController,
  RateControllerRecorder
} from "market-data-pipeline"
import { captureLogs, event, eventually, letOthersRun, metricValue, seriesLabels } from "./helpers.ts"

// a recording controller, a bus, and a metric registry of the test's own
const withStack = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    Effect.provide(Layer.mergeAll(Layer.fresh(RateController.layerTest), Layer.fresh(FeedbackBus.layer))),
    Effect.provideService(Metric.MetricRegistry, new Map())
  )

const scales = Effect.gen(function*() {
  return (yield* (yield* RateControllerRecorder).applied).map((a) => a.scale)
})
const appliedCount = (n: number) => Effect.map(scales, (s) => s.length >= n)
const lastScale = Effect.map(scales, (s) => s[s.length - 1])

const publishAll = (...events: ReadonlyArray<FeedbackEvent>) =>
  Effect.gen(function*() {
    const bus = yield* FeedbackBus
    for (const e of events) yield* bus.publish(e)
  })

describe("FeedbackHandler.run: options", () => {
  it.effect("every option is checked before subscribing; a bad one fails with InvalidHandlerOptions naming it", () =>
    withStack(Effect.gen(function*() {
      const base = { provider: "ibkr", policy: defaultPolicy }
      const cases: ReadonlyArray<readonly [unknown, string]> = [
        [{ ...base, recovery: { duration: "1 second", steps: NaN } }, "recovery.steps"],
        [{ ...base, recovery: { duration: "1 second", steps: 2.5 } }, "recovery.steps"],
        [{ ...base, recovery: { duration: "1 second", steps: 0 } }, "recovery.steps"],
        [{ ...base, recovery: { duration: "soon" } }, "recovery.duration"],
        [{ ...base, recovery: { duration: -5 } }, "recovery.duration"],
        [{ ...base, recovery: { duration: NaN } }, "recovery.duration"],
        [{ ...base, recovery: { duration: "Infinity" } }, "recovery.duration"],
        [{ ...base, recovery: "1 second" }, "recovery"],
        [{ ...base, provider: "" }, "provider"],
        [{ ...base, provider: 7 }, "provider"],
        [{ ...base, policy: { ok: 1, soft: NaN, hard: 0 } }, "policy.soft"],
        [{ ...base, policy: { ok: 1, soft: 0.5, hard: 1.5 } }, "policy.hard"],
        [{ ...base, policy: { ok: Infinity, soft: 0.5, hard: 0 } }, "policy.ok"],
        [{ ...base, policy: { ok: 1, soft: 0.5 } }, "policy.hard"],
        [{ ...base, policy: undefined }, "policy"],
        [{ ...base, coordinators: "bars" }, "coordinators"],
        [{ ...base, coordinators: ["bars", 3] }, "coordinators[1]"],
        [{ ...base, maxCoordinators: 0 }, "maxCoordinators"],
        [{ ...base, maxCoordinators: 1.5 }, "maxCoordinators"],
        [{ ...base, levelTtl: "0 seconds" }, "levelTtl"],
        [{ ...base, levelTtl: "a while" }, "levelTtl"],
        [null, "options"]
      ]
      for (const [options, option] of cases) {
        const error = yield* Effect.flip(FeedbackHandler.run(options as FeedbackHandler.FeedbackHandlerOptions))
        assert.strictEqual(error._tag, "InvalidHandlerOptions")
        assert.strictEqual(error.option, option, JSON.stringify(options))
        assert.include(error.message, option)
      }
      const nan = yield* Effect.flip(FeedbackHandler.run({ ...base, recovery: { duration: "1 second", steps: NaN } }))
      assert.strictEqual(nan.message, "FeedbackHandler option recovery.steps must be a positive integer, got NaN")
      // none of them subscribed: nothing is applied
      yield* publishAll(event("store_01", "hard"))
      yield* letOthersRun
      assert.deepStrictEqual(yield* scales, [])
    })))

  it.effect("valid options start the handler", () =>
    withStack(Effect.gen(function*() {
      const handle = yield* FeedbackHandler.run({
        provider: "ibkr",
        policy: defaultPolicy,
        coordinators: ["a"],
        recovery: { duration: 1000, steps: 2 },
        maxCoordinators: 1,
        levelTtl: { minutes: 5 }
      })
      assert.strictEqual(handle.provider, "ibkr")
      yield* publishAll(event("a", "soft"))
      yield* eventually(appliedCount(1))
      assert.deepStrictEqual(yield* scales, [0.5])
    })))
})

describe("FeedbackHandler.run: worst of the coordinators, counted per level", () => {
  it.effect.prop("after any sequence of events, the level applied is the worst of each coordinator's last", {
    events: Schema.Array(Schema.Tuple([Schema.Literals(["a", "b", "c", "d"]), BackpressureLevel])).check(
      Schema.isMinLength(1)
    )
  }, ({ events }) =>
    withStack(Effect.gen(function*() {
      const handle = yield* FeedbackHandler.run({ provider: "ibkr", policy: defaultPolicy })
      yield* publishAll(...events.map(([id, level], i) => event(id, level, 1700000000 + i)))
      yield* eventually(appliedCount(events.length))
      const last = new Map(events)
      const worst = [...last.values()].includes("hard") ? "hard" : [...last.values()].includes("soft") ? "soft" : "ok"
      const status = yield* handle.status
      assert.strictEqual(status.level, worst)
      assert.strictEqual(yield* lastScale, defaultPolicy[worst])
      assert.deepStrictEqual(status.coordinators.map((c) => [c.coordinatorId, c.level]), [...last].sort())
      assert.deepStrictEqual(
        status.holders.map((c) => c.coordinatorId),
        worst === "ok" ? [] : [...last].filter(([, l]) => l === worst).map(([id]) => id).sort()
      )
    })), { arbitrary: { size: 50 } })

  it.effect("10,000 coordinators: one at hard holds the provider down until it reports ok", () =>
    withStack(Effect.gen(function*() {
      const handle = yield* FeedbackHandler.run({ provider: "ibkr", policy: defaultPolicy, maxCoordinators: 10_000 })
      const bus = yield* FeedbackBus
      for (let i = 0; i < 10_000; i++) {
        yield* bus.publish(event(`store_${i}`, i === 5_000 ? "hard" : "ok"))
        if (i % 500 === 0) yield* eventually(appliedCount(i + 1)) // stay under the bus buffer
      }
      yield* eventually(appliedCount(10_000))
      assert.strictEqual(yield* lastScale, 0)
      assert.deepStrictEqual((yield* handle.status).holders.map((c) => c.coordinatorId), ["store_5000"])
      yield* bus.publish(event("store_5000", "ok"))
      yield* eventually(appliedCount(10_001))
      assert.strictEqual(yield* lastScale, 1)
      assert.strictEqual((yield* handle.status).coordinators.length, 10_000)
    })))
})

describe("FeedbackHandler.run: bounded coordinators", () => {
  it.effect("full with none at ok: a new coordinator's events are refused, counted, logged at most once per 10 s", () => {
    const logs = captureLogs()
    return withStack(
      Effect.gen(function*() {
        const handle = yield* FeedbackHandler.run({ provider: "ibkr", policy: defaultPolicy, maxCoordinators: 2 })
        yield* publishAll(event("a", "soft"), event("b", "soft"))
        yield* eventually(appliedCount(2))
        yield* publishAll(event("c", "hard"), event("c", "hard"), event("d", "hard"))
        yield* letOthersRun
        assert.deepStrictEqual(yield* scales, [0.5, 0.5]) // never applied
        const rejected = metricValue("pipeline_feedback_events_refused_total", {
          provider: "ibkr",
          reason: "too_many_coordinators"
        })
        assert.strictEqual(yield* rejected, 3)
        const refusals = () => logs.lines.filter((l) => l.message.includes("refused"))
        assert.strictEqual(refusals().length, 1)
        assert.include(refusals()[0]!.message, "\"c\"")
        assert.strictEqual(refusals()[0]!.level, "Warn")
        assert.deepStrictEqual((yield* handle.status).coordinators.map((c) => c.coordinatorId), ["a", "b"])
        assert.deepStrictEqual(yield* seriesLabels("pipeline_feedback_queue_depth", "source"), ["a", "b"])

        yield* TestClock.adjust("10 seconds")
        yield* publishAll(event("d", "hard"))
        yield* letOthersRun
        assert.strictEqual(yield* rejected, 4)
        assert.strictEqual(refusals().length, 2)
        assert.include(refusals()[1]!.message, "2 more since the previous line")
      }).pipe(Effect.provide(logs.layer))
    )
  })

  it.effect("full: a new coordinator takes the place of the longest-idle one at ok, whose series goes", () =>
    withStack(Effect.gen(function*() {
      const handle = yield* FeedbackHandler.run({ provider: "ibkr", policy: defaultPolicy, maxCoordinators: 3 })
      yield* publishAll(event("a", "ok"))
      yield* TestClock.adjust("1 second")
      yield* publishAll(event("b", "ok"))
      yield* TestClock.adjust("1 second")
      yield* publishAll(event("c", "hard"))
      yield* TestClock.adjust("1 second")
      yield* publishAll(event("a", "ok")) // a reported again: b is now the longest idle at ok
      yield* eventually(appliedCount(4))
      yield* publishAll(event("d", "soft"))
      yield* eventually(appliedCount(5))
      const status = yield* handle.status
      assert.deepStrictEqual(status.coordinators.map((c) => c.coordinatorId), ["a", "c", "d"])
      assert.deepStrictEqual(yield* seriesLabels("pipeline_feedback_queue_depth", "source"), ["a", "c", "d"])
      yield* publishAll(event("e", "ok")) // a is the only one at ok left to replace
      yield* eventually(appliedCount(6))
      assert.deepStrictEqual((yield* handle.status).coordinators.map((c) => c.coordinatorId), ["c", "d", "e"])
      assert.strictEqual(yield* lastScale, 0) // c still holds it down
      assert.strictEqual(
        yield* metricValue("pipeline_feedback_events_refused_total", {
          provider: "ibkr",
          reason: "too_many_coordinators"
        }),
        0
      )
    })))
})

describe("FeedbackHandler.run: status and clear", () => {
  it.effect("status names the coordinators holding the provider down, with times from the Clock", () =>
    withStack(Effect.gen(function*() {
      const handle = yield* FeedbackHandler.run({ provider: "ibkr", policy: defaultPolicy })
      const t0 = yield* Clock.currentTimeMillis
      assert.deepStrictEqual(yield* handle.status, { level: "ok", holders: [], coordinators: [] })
      yield* publishAll(event("bars", "hard"), event("quotes", "soft"))
      yield* TestClock.adjust("5 seconds")
      yield* publishAll(event("trades", "ok"), event("bars", "hard"))
      yield* eventually(appliedCount(4))
      const status = yield* handle.status
      assert.strictEqual(status.level, "hard")
      assert.deepStrictEqual(status.holders, [
        { coordinatorId: "bars", level: "hard", since: t0, lastReport: t0 + 5000 }
      ])
      assert.deepStrictEqual(status.coordinators, [
        { coordinatorId: "bars", level: "hard", since: t0, lastReport: t0 + 5000 },
        { coordinatorId: "quotes", level: "soft", since: t0, lastReport: t0 },
        { coordinatorId: "trades", level: "ok", since: t0 + 5000, lastReport: t0 + 5000 }
      ])
    })))

  it.effect("clear forgets a dead coordinator and applies the new worst at once; an unknown one is false", () =>
    withStack(Effect.gen(function*() {
      const handle = yield* FeedbackHandler.run({ provider: "ibkr", policy: defaultPolicy })
      yield* publishAll(event("bars", "hard"), event("quotes", "soft"))
      yield* eventually(appliedCount(2))
      assert.isTrue(yield* handle.clear("bars"))
      assert.strictEqual(yield* lastScale, 0.5)
      assert.deepStrictEqual(yield* seriesLabels("pipeline_feedback_queue_depth", "source"), ["quotes"])
      assert.isFalse(yield* handle.clear("bars"))
      assert.isFalse(yield* handle.clear("never-seen"))
      assert.isTrue(yield* handle.clear("quotes"))
      assert.strictEqual(yield* lastScale, 1)
      const recorder = yield* RateControllerRecorder
      const last = (yield* recorder.applied).at(-1)!
      assert.strictEqual(last.reason, "ok")
      assert.deepStrictEqual(yield* handle.status, { level: "ok", holders: [], coordinators: [] })
      // a cleared coordinator that reports again is held again
      yield* publishAll(event("bars", "soft"))
      yield* eventually(appliedCount(5))
      assert.strictEqual(yield* lastScale, 0.5)
    })))

  it.effect("clearing the last coordinator at hard raises the scale through the recovery ramp", () =>
    withStack(Effect.gen(function*() {
      const handle = yield* FeedbackHandler.run({
        provider: "ibkr",
        policy: defaultPolicy,
        recovery: { duration: "1 second", steps: 4 }
      })
      yield* publishAll(event("bars", "hard"))
      yield* eventually(appliedCount(1))
      assert.isTrue(yield* handle.clear("bars"))
      yield* letOthersRun
      assert.deepStrictEqual(yield* scales, [0]) // not one step up
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* scales, [0, 0.25, 0.5, 0.75, 1])
    })))

  it.effect("a clear made while an earlier apply is in flight is not undone when that apply lands", () =>
    Effect.gen(function*() {
      const applied: Array<RateAdjustment> = []
      // pausing takes a second to apply (think: a remote controller)
      const slow = RateController.of({
        apply: (adjustment) =>
          Effect.andThen(
            adjustment.scale === 0 ? Effect.sleep("1 second") : Effect.void,
            Effect.sync(() => applied.push(adjustment))
          )
      })
      const handle = yield* FeedbackHandler.run({ provider: "ibkr", policy: defaultPolicy }).pipe(
        Effect.provideService(RateController, slow)
      )
      yield* publishAll(event("bars", "hard"))
      yield* letOthersRun // the handler is now applying the pause
      assert.isTrue(yield* handle.clear("bars"))
      assert.deepStrictEqual(applied.map((a) => a.scale), [1])
      yield* TestClock.adjust("1 second") // the pause lands after the clear...
      yield* eventually(Effect.sync(() => applied.length === 3))
      assert.deepStrictEqual(applied.map((a) => a.scale), [1, 0, 1]) // ...and is decided again
    }).pipe(Effect.provide(Layer.fresh(FeedbackBus.layer)), Effect.provideService(Metric.MetricRegistry, new Map())))
})

describe("FeedbackHandler.run: levelTtl", () => {
  it.effect("a level no report refreshes within the TTL is forgotten and logged; a report re-times it", () => {
    const logs = captureLogs()
    return withStack(
      Effect.gen(function*() {
        const handle = yield* FeedbackHandler.run({ provider: "ibkr", policy: defaultPolicy, levelTtl: "30 seconds" })
        yield* publishAll(event("bars", "hard"), event("quotes", "soft"))
        yield* eventually(appliedCount(2))
        yield* TestClock.adjust("20 seconds")
        yield* publishAll(event("bars", "hard")) // refreshed: now due at 50 s
        yield* eventually(appliedCount(3))
        yield* TestClock.adjust("10 seconds") // 30 s: quotes expires, bars does not
        assert.deepStrictEqual((yield* handle.status).coordinators.map((c) => c.coordinatorId), ["bars"])
        assert.strictEqual(yield* lastScale, 0)
        yield* TestClock.adjust("19 seconds")
        assert.strictEqual(yield* lastScale, 0)
        yield* TestClock.adjust("1 second") // 50 s: bars expires
        assert.strictEqual(yield* lastScale, 1)
        assert.deepStrictEqual(yield* handle.status, { level: "ok", holders: [], coordinators: [] })
        assert.deepStrictEqual(yield* seriesLabels("pipeline_feedback_queue_depth", "source"), [])
        const warnings = logs.lines.filter((l) => l.level === "Warn").map((l) => l.message)
        assert.strictEqual(warnings.length, 2)
        assert.include(warnings[0]!, "\"quotes\" forgotten at soft")
        assert.include(warnings[1]!, "\"bars\" forgotten at hard")
        // a coordinator seen again after its expiry is held again, and expires again
        yield* publishAll(event("bars", "soft"))
        yield* eventually(Effect.map(lastScale, (s) => s === 0.5))
        yield* TestClock.adjust("30 seconds")
        assert.strictEqual(yield* lastScale, 1)
      }).pipe(Effect.provide(logs.layer))
    )
  })

  it.effect("an expired hard is lifted through the recovery ramp", () =>
    withStack(Effect.gen(function*() {
      yield* FeedbackHandler.run({
        provider: "ibkr",
        policy: defaultPolicy,
        levelTtl: "1 minute",
        recovery: { duration: "2 seconds", steps: 2 }
      })
      yield* publishAll(event("bars", "hard"))
      yield* eventually(appliedCount(1))
      yield* TestClock.adjust("1 minute")
      assert.deepStrictEqual(yield* scales, [0])
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* scales, [0, 0.5])
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* scales, [0, 0.5, 1])
      // the next expiry's ramp is cut short by a worse level, as an event's would be
      yield* publishAll(event("bars", "hard"))
      yield* eventually(appliedCount(4))
      yield* TestClock.adjust("61 seconds")
      assert.deepStrictEqual(yield* scales, [0, 0.5, 1, 0, 0.5])
      yield* publishAll(event("quotes", "soft"))
      yield* eventually(appliedCount(6))
      yield* TestClock.adjust("5 seconds")
      assert.deepStrictEqual(yield* scales, [0, 0.5, 1, 0, 0.5, 0.5])
    })))

  it.effect("off by default: a level persists however long no report comes", () =>
    withStack(Effect.gen(function*() {
      const handle = yield* FeedbackHandler.run({ provider: "ibkr", policy: defaultPolicy })
      yield* publishAll(event("bars", "hard"))
      yield* eventually(appliedCount(1))
      yield* TestClock.adjust("7 days")
      assert.deepStrictEqual(yield* scales, [0])
      assert.strictEqual((yield* handle.status).level, "hard")
    })))
})

describe("FeedbackHandler.run: inline delivery", () => {
  it.effect("with a controller that does not wait, the adjustment is applied before publish returns", () =>
    withStack(Effect.gen(function*() {
      yield* FeedbackHandler.run({ provider: "ibkr", policy: defaultPolicy })
      const bus = yield* FeedbackBus
      yield* bus.publish(event("store_01", "soft"))
      assert.deepStrictEqual(yield* scales, [0.5])
      yield* bus.publish(event("store_01", "hard"))
      assert.deepStrictEqual(yield* scales, [0.5, 0])
    })))

  it.effect("with a controller that waits, publish does not wait; later events are applied after it, in order", () =>
    Effect.gen(function*() {
      const applied: Array<RateAdjustment> = []
      const slow = RateController.of({
        apply: (adjustment) => Effect.andThen(Effect.sleep("1 second"), Effect.sync(() => applied.push(adjustment)))
      })
      yield* FeedbackHandler.run({ provider: "ibkr", policy: defaultPolicy }).pipe(
        Effect.provideService(RateController, slow)
      )
      yield* publishAll(event("store_01", "soft", 1), event("store_01", "hard", 2), event("store_01", "ok", 3))
      assert.deepStrictEqual(applied, [], "every publish returned while the first apply waits")
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(applied.map((a) => [a.scale, a.ts]), [[0.5, 1]])
      yield* TestClock.adjust("2 seconds")
      assert.deepStrictEqual(applied.map((a) => [a.scale, a.ts]), [[0.5, 1], [0, 2], [1, 3]])
    }).pipe(
      Effect.provide(Layer.fresh(FeedbackBus.layer)),
      Effect.provideService(Metric.MetricRegistry, new Map())
    ))
})
