import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, type Duration, Effect, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import {
  decodeJson,
  defaultPolicy,
  FeedbackBus,
  FeedbackHandler,
  FeedbackPublisher,
  HealthStatus,
  makePolicy,
  PipelineMetrics,
  RateController,
  RateControllerRecorder,
  RateCoordinator,
  RateCoordinatorAdapter,
  UnifiedRuntime
} from "market-data-pipeline"
import { Registry } from "prom-client"
import { event, eventually } from "./helpers.ts"

const env = (vars: Record<string, string>) => ConfigProvider.layer(ConfigProvider.fromEnvRecord(vars))

const runtime = (vars: Record<string, string> = {}) =>
  Layer.fresh(UnifiedRuntime.layer).pipe(
    Layer.provide(env({ MDP_PROVIDER_BURST: "100", MDP_PROVIDER_RATE: "100", ...vars }))
  )

const scaleIs = (scale: number) =>
  Effect.gen(function*() {
    return (yield* (yield* RateCoordinator).state("ibkr")).scale === scale
  })

describe("toAdjustment", () => {
  it("takes the policy's scale, the handler's provider, the event's level and ts", () => {
    const adjust = FeedbackHandler.toAdjustment(defaultPolicy, "ibkr")
    assert.deepStrictEqual(adjust(event("store_01", "soft", 1700000000.5)), {
      provider: "ibkr",
      scale: 0.5,
      reason: "soft",
      ts: 1700000000.5
    })
    assert.strictEqual(adjust(event("store_01", "hard")).scale, 0)
    assert.strictEqual(adjust(event("store_01", "ok")).scale, 1)
  })
})

describe("FeedbackPolicy", () => {
  it.effect("accepts level keys in any case; missing levels keep the defaults", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* makePolicy({ ok: 1.0, SOFT: 0.75, hard: 0.25 }), { ok: 1, soft: 0.75, hard: 0.25 })
      assert.deepStrictEqual(yield* makePolicy({ Soft: 0.7 }), { ok: 1, soft: 0.7, hard: 0 })
      assert.deepStrictEqual(yield* makePolicy({}), defaultPolicy)
    }))

  it.effect("rejects an unknown key, a level given twice, or a value outside [0, 1], naming it", () =>
    Effect.gen(function*() {
      const unknown = yield* Effect.flip(makePolicy({ critical: 0.1 }))
      assert.strictEqual(unknown._tag, "InvalidFeedbackPolicy")
      assert.include(unknown.message, "critical")
      assert.include((yield* Effect.flip(makePolicy({ soft: 0.5, SOFT: 0.6 }))).message, "twice")
      const range = yield* Effect.flip(makePolicy({ hard: 1.5 }))
      assert.include(range.message, "hard")
      assert.include(range.message, "1.5")
      assert.strictEqual((yield* Effect.flip(makePolicy({ ok: NaN }))).key, "ok")
    }))
})

describe("in-process feedback loop (UnifiedRuntime.layer)", () => {
  it.effect("ibkr at capacity 100, rate 100: soft → 0.5/50, hard → paused, ok → 1.0/100", () =>
    Effect.gen(function*() {
      const publisher = yield* FeedbackPublisher
      const coordinator = yield* RateCoordinator
      yield* publisher.publish(event("store_01", "soft"))
      yield* eventually(scaleIs(0.5))
      let state = yield* coordinator.state("ibkr")
      assert.deepStrictEqual([state.rate, state.pressure, state.capacity], [50, "soft", 100])
      yield* publisher.publish(event("store_01", "hard"))
      yield* eventually(scaleIs(0))
      state = yield* coordinator.state("ibkr")
      assert.deepStrictEqual([state.rate, state.pressure], [0, "hard"])
      assert.isFalse(yield* coordinator.tryAcquire("ibkr"))
      yield* publisher.publish(event("store_01", "ok"))
      yield* eventually(scaleIs(1))
      state = yield* coordinator.state("ibkr")
      assert.deepStrictEqual([state.rate, state.pressure], [100, "ok"])
    }).pipe(Effect.provide(runtime())))

  it.effect("MDP_FB_LEVEL_TTL: a hard level not refreshed within the TTL expires and the rate recovers", () =>
    Effect.gen(function*() {
      yield* (yield* FeedbackPublisher).publish(event("store_01", "hard"))
      yield* eventually(scaleIs(0))
      yield* TestClock.adjust("29 seconds")
      assert.strictEqual((yield* (yield* RateCoordinator).state("ibkr")).scale, 0)
      yield* TestClock.adjust("1 second")
      yield* eventually(scaleIs(1))
    }).pipe(Effect.provide(runtime({ MDP_FB_LEVEL_TTL: "30" }))))

  it.effect("settings from a ConfigProvider: a custom soft scale of 0.75 gives rate 75", () =>
    Effect.gen(function*() {
      yield* (yield* FeedbackPublisher).publish(event("store_01", "soft"))
      yield* eventually(scaleIs(0.75))
      assert.strictEqual((yield* (yield* RateCoordinator).state("ibkr")).rate, 75)
    }).pipe(Effect.provide(runtime({ MDP_FB_SCALE_SOFT: "0.75" }))))

  it.effect("worst of several coordinators: A hard, then B ok → still paused; A ok → full rate", () =>
    Effect.gen(function*() {
      const publisher = yield* FeedbackPublisher
      const coordinator = yield* RateCoordinator
      yield* publisher.publish(event("A", "hard"))
      yield* eventually(scaleIs(0))
      yield* publisher.publish(event("B", "ok"))
      yield* publisher.publish(event("B", "ok"))
      const metrics = yield* PipelineMetrics
      const processed = () =>
        Effect.map(metrics.snapshot, (s) =>
          s.filter((m) => m.id === "feedback_events_processed_total")
            .reduce((n, m) => n + (m.state as any).count, 0))
      yield* eventually(Effect.map(processed(), (n) => n === 3))
      assert.strictEqual((yield* coordinator.state("ibkr")).scale, 0)
      assert.strictEqual((yield* coordinator.state("ibkr")).pressure, "hard")
      yield* publisher.publish(event("A", "ok"))
      yield* eventually(scaleIs(1))
    }).pipe(Effect.provide(runtime())))

  it.effect("with feedback disabled the coordinator works and no handler runs", () =>
    Effect.gen(function*() {
      const runtimeInfo = yield* UnifiedRuntime
      assert.isFalse(runtimeInfo.feedbackEnabled)
      yield* (yield* FeedbackPublisher).publish(event("store_01", "hard"))
      for (let i = 0; i < 100; i++) yield* Effect.yieldNow
      const coordinator = yield* RateCoordinator
      assert.strictEqual((yield* coordinator.state("ibkr")).scale, 1)
      assert.isTrue(yield* coordinator.tryAcquire("ibkr"))
    }).pipe(Effect.provide(runtime({ MDP_FB_ENABLE_FEEDBACK: "false" }))))

  it.effect("end to end in virtual time: a provider loop slows to the soft rate and stops under hard", () =>
    Effect.gen(function*() {
      const coordinator = yield* RateCoordinator
      const publisher = yield* FeedbackPublisher
      let calls = 0
      const loop = yield* Effect.forkChild(Effect.forever(
        Effect.andThen(coordinator.acquire("ibkr"), Effect.sync(() => calls++)),
        { disableYield: true } // the loop suspends only in acquire: virtual time alone paces it
      ))
      const over = (duration: Duration.Input) =>
        Effect.gen(function*() {
          const before = calls
          yield* TestClock.adjust(duration)
          return calls - before
        })
      assert.strictEqual(yield* over("1 second"), 200) // the burst of 100, then 100/s
      yield* publisher.publish(event("store_01", "soft"))
      yield* eventually(scaleIs(0.5))
      assert.strictEqual(yield* over("2 seconds"), 100) // 50/s
      yield* publisher.publish(event("store_01", "hard"))
      yield* eventually(scaleIs(0))
      assert.strictEqual(yield* over("10 seconds"), 0) // paused
      yield* publisher.publish(event("store_01", "ok"))
      yield* eventually(scaleIs(1))
      assert.strictEqual(yield* over("1 second"), 100)
      yield* Fiber.interrupt(loop)
    }).pipe(Effect.provide(runtime())))

  it.effect("health is a HealthStatus document that decodes from its wire form", () =>
    Effect.gen(function*() {
      const health = yield* UnifiedRuntime.health
      assert.strictEqual(health.service, "market-data-pipeline")
      assert.strictEqual(health.state, "healthy")
      assert.deepStrictEqual(health.components.map((c) => c.name), ["rate_coordinator", "feedback"])
      assert.strictEqual(health.components[0]!.details.provider, "ibkr")
      const { encodeJson } = yield* Effect.promise(() => import("market-data-pipeline"))
      const decoded = yield* decodeJson(HealthStatus)(encodeJson(HealthStatus)(health))
      assert.deepStrictEqual(decoded, health)
    }).pipe(Effect.provide(runtime())))

  it.effect("metrics: every name of DESIGN §6 with its labels, as Prometheus text", () =>
    Effect.gen(function*() {
      const coordinator = yield* RateCoordinator
      yield* coordinator.acquire("ibkr")
      yield* (yield* FeedbackPublisher).publish(event("bars-coord", "soft"))
      yield* eventually(scaleIs(0.5))
      const text = yield* (yield* PipelineMetrics).prometheus
      for (
        const line of [
          "pipeline_rate_scale_factor{provider=\"ibkr\"} 0.5",
          "pipeline_backpressure_state{provider=\"ibkr\"} 1",
          "pipeline_feedback_queue_depth{source=\"bars-coord\"} 800",
          "feedback_events_processed_total{provider=\"ibkr\",level=\"soft\"} 1",
          "pipeline_rate_adjustments_total{provider=\"ibkr\",reason=\"soft\"} 1",
          "pipeline_feedback_events_received_total{source=\"bars-coord\",level=\"soft\"} 1",
          "pipeline_rate_tokens_granted_total{provider=\"ibkr\"} 1",
          "pipeline_rate_waiters{provider=\"ibkr\"} 0",
          "pipeline_rate_wait_seconds_count{provider=\"ibkr\"} 1",
          "pipeline_feedback_events_dropped_total 0"
        ]
      ) assert.include(text, line)
    }).pipe(Effect.provide(runtime())))

  it.effect("two isolated runtimes in one process keep their own metrics, also in prom-client registries", () =>
    Effect.gen(function*() {
      const scrape = (vars: Record<string, string>, level: "soft" | "hard") =>
        Effect.gen(function*() {
          yield* (yield* FeedbackPublisher).publish(event("store_01", level))
          yield* eventually(scaleIs(level === "soft" ? 0.5 : 0))
          const registry = new Registry()
          yield* (yield* PipelineMetrics).registerInto(registry)
          return yield* Effect.promise(() => registry.metrics())
        }).pipe(Effect.provide(PipelineMetrics.isolated(runtime(vars))))
      const [first, second] = yield* Effect.all([scrape({}, "soft"), scrape({}, "hard")], { concurrency: 2 })
      assert.include(first, "pipeline_rate_scale_factor{provider=\"ibkr\"} 0.5")
      assert.include(second, "pipeline_rate_scale_factor{provider=\"ibkr\"} 0")
      assert.include(first, "pipeline_backpressure_state{provider=\"ibkr\"} 1")
      assert.include(second, "pipeline_backpressure_state{provider=\"ibkr\"} 2")
      assert.include(first, "# TYPE pipeline_rate_wait_seconds histogram")
    }))

  it.effect("a second runtime in the same prom-client registry is refused, not silently merged", () =>
    Effect.gen(function*() {
      const registry = new Registry()
      yield* Effect.scoped(
        Effect.gen(function*() {
          yield* (yield* PipelineMetrics).registerInto(registry)
          const error = yield* Effect.flip((yield* PipelineMetrics).registerInto(registry))
          assert.strictEqual(error._tag, "DuplicateMetric")
        }).pipe(Effect.provide(runtime()))
      )
      assert.strictEqual(registry.getMetricsAsArray().length, 0) // removed when the scope closed
    }))

  it.effect("closing the runtime's scope stops the handler and removes its series", () =>
    Effect.gen(function*() {
      let metrics: PipelineMetrics["Service"] | undefined
      yield* Effect.scoped(
        Effect.gen(function*() {
          metrics = yield* PipelineMetrics
          yield* (yield* FeedbackPublisher).publish(event("store_01", "soft"))
          yield* eventually(scaleIs(0.5))
          assert.isAbove((yield* metrics.snapshot).length, 0)
        }).pipe(Effect.provide(runtime()))
      )
      assert.deepStrictEqual(yield* metrics!.snapshot, [])
    }))
})

describe("FeedbackHandler.run on its own", () => {
  const stack = Layer.mergeAll(RateCoordinatorAdapter.layer.pipe(Layer.provideMerge(RateCoordinator.layer)))
    .pipe(Layer.provideMerge(FeedbackBus.layer))

  it.effect("a string-keyed policy {ok: 1.0, SOFT: 0.75, hard: 0.25}: soft gives 0.75, rate 75", () =>
    Effect.gen(function*() {
      const coordinator = yield* RateCoordinator
      yield* coordinator.registerProvider("ibkr", { capacity: 100, refillRate: 100 })
      yield* FeedbackHandler.run({ provider: "ibkr", policy: yield* makePolicy({ ok: 1.0, SOFT: 0.75, hard: 0.25 }) })
      yield* (yield* FeedbackBus).publish(event("store_01", "soft"))
      yield* eventually(scaleIs(0.75))
      assert.strictEqual((yield* coordinator.state("ibkr")).rate, 75)
    }).pipe(Effect.provide(Layer.fresh(stack))))

  it.effect("a coordinators filter ignores other coordinators", () =>
    Effect.gen(function*() {
      yield* FeedbackHandler.run({ provider: "ibkr", policy: defaultPolicy, coordinators: ["bars"] })
      const bus = yield* FeedbackBus
      yield* bus.publish(event("quotes", "hard"))
      yield* bus.publish(event("bars", "soft"))
      const recorder = yield* RateControllerRecorder
      yield* eventually(Effect.map(recorder.applied, (a) => a.length > 0))
      const applied = yield* recorder.applied
      assert.deepStrictEqual(applied, [{ provider: "ibkr", scale: 0.5, reason: "soft", ts: 1700000000 }])
    }).pipe(Effect.provide(Layer.mergeAll(Layer.fresh(RateController.layerTest), Layer.fresh(FeedbackBus.layer)))))

  it.effect("recovery ramp: the scale rises linearly to the target; a worse level cuts it short at once", () =>
    Effect.gen(function*() {
      yield* FeedbackHandler.run({
        provider: "ibkr",
        policy: defaultPolicy,
        recovery: { duration: "1 second", steps: 4 }
      })
      const bus = yield* FeedbackBus
      const recorder = yield* RateControllerRecorder
      const scales = Effect.map(recorder.applied, (a) => a.map((x) => x.scale))
      yield* bus.publish(event("store_01", "hard"))
      yield* eventually(Effect.map(scales, (s) => s.length === 1))
      yield* bus.publish(event("store_01", "ok"))
      for (let i = 0; i < 50; i++) yield* Effect.yieldNow
      assert.deepStrictEqual(yield* scales, [0]) // not one step up
      yield* TestClock.adjust("500 millis")
      assert.deepStrictEqual(yield* scales, [0, 0.25, 0.5])
      yield* bus.publish(event("store_01", "soft")) // down: at once, and the ramp stops
      yield* eventually(Effect.map(scales, (s) => s.length === 4))
      yield* TestClock.adjust("2 seconds")
      assert.deepStrictEqual(yield* scales, [0, 0.25, 0.5, 0.5])
      yield* bus.publish(event("store_01", "ok"))
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* scales, [0, 0.25, 0.5, 0.5, 0.625, 0.75, 0.875, 1])
    }).pipe(Effect.provide(Layer.mergeAll(Layer.fresh(RateController.layerTest), Layer.fresh(FeedbackBus.layer)))))
})

describe("health", () => {
  it.effect("an open circuit makes the runtime unhealthy, a half-open one degraded", () =>
    Effect.gen(function*() {
      const coordinator = yield* RateCoordinator
      for (let i = 0; i < 5; i++) yield* coordinator.recordFailure("ibkr")
      const open = yield* UnifiedRuntime.health
      assert.strictEqual(open.state, "unhealthy")
      assert.strictEqual(open.components[0]!.details.circuit, "open")
      yield* TestClock.adjust("60 seconds")
      assert.strictEqual((yield* UnifiedRuntime.health).state, "degraded")
      yield* coordinator.recordSuccess("ibkr")
      assert.strictEqual((yield* UnifiedRuntime.health).state, "healthy")
    }).pipe(Effect.provide(runtime())))
})
