import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import {
  type FeedbackEvent,
  FeedbackPublisher,
  FeedbackSettings,
  RateCoordinator,
  UnifiedRuntime
} from "market-data-pipeline"
import * as SimulatedStore from "../../src/service/SimulatedStore.ts"
import * as Simulation from "../../src/service/Simulation.ts"

describe("SimulatedStore (the store's watermark rules)", () => {
  it.effect("reproduces the reference trace: capacity 10, high 8, low 5", () =>
    Effect.gen(function*() {
      const events: Array<FeedbackEvent> = []
      const store = yield* SimulatedStore.make({
        coordinatorId: "c",
        capacity: 10,
        publish: (e) => Effect.sync(() => events.push(e))
      })
      const emitted = () => events.splice(0).map((e) => `${e.level}@${e.queueSize}`)
      for (let i = 0; i < 10; i++) yield* store.put
      assert.deepStrictEqual(emitted(), ["soft@6", "hard@8"])
      for (let i = 0; i < 10; i++) yield* store.take
      assert.deepStrictEqual(emitted(), ["ok@5"])
      for (let i = 0; i < 7; i++) yield* store.put
      assert.deepStrictEqual(emitted(), ["soft@6"])
      for (let i = 0; i < 2; i++) yield* store.take
      assert.deepStrictEqual(emitted(), ["ok@5"])
      for (let i = 0; i < 3; i++) yield* store.put
      assert.deepStrictEqual(emitted(), ["soft@6", "hard@8"])
    }))

  it.effect("put waits while the queue is full instead of dropping", () =>
    Effect.gen(function*() {
      const store = yield* SimulatedStore.make({ coordinatorId: "c", capacity: 2, publish: () => Effect.void })
      yield* store.put
      yield* store.put
      const blocked = yield* Effect.forkChild(store.put)
      yield* Effect.yieldNow
      assert.isUndefined(blocked.pollUnsafe())
      yield* store.take
      yield* Fiber.join(blocked)
      assert.strictEqual(store.size(), 2)
    }))
})

describe("the closed loop in virtual time", () => {
  it.effect("the queue never overflows, the rate falls under soft and hard and recovers after ok", () =>
    Effect.gen(function*() {
      const publisher = yield* FeedbackPublisher
      const runtime = yield* UnifiedRuntime
      const store = yield* SimulatedStore.make({ coordinatorId: "sim", capacity: 1000, publish: publisher.publish })
      const sim = yield* Simulation.start({ provider: runtime.provider, sinkRate: 120 }, store)
      for (let i = 0; i < 600; i++) yield* TestClock.adjust("100 millis")
      const samples = sim.samples()
      const summary = yield* sim.summary
      assert.isAtMost(summary.maxQueueDepth, 1000)
      assert.strictEqual(summary.dropped, 0)
      assert.isAbove(summary.secondsInLevel.soft, 0)
      assert.isAbove(summary.secondsInLevel.hard, 0)
      const rateIn = (level: string) => new Set(samples.filter((s) => s.level === level).map((s) => s.rate))
      assert.deepStrictEqual([...rateIn("soft")], [100])
      assert.deepStrictEqual([...rateIn("hard")], [0])
      assert.deepStrictEqual([...rateIn("ok")], [200])
      // after the first hard, ok comes back (recovery)
      const firstHard = samples.findIndex((s) => s.level === "hard")
      assert.isTrue(samples.slice(firstHard).some((s) => s.level === "ok"))
      assert.isAtLeast(summary.written, 55 * 120 * 0.8) // the sink was kept busy
      assert.strictEqual((yield* (yield* RateCoordinator).state("ibkr")).capacity, 40)
    }).pipe(
      Effect.provide(Layer.fresh(UnifiedRuntime.layerWithSettings)),
      Effect.provideService(FeedbackSettings, {
        enableFeedback: true,
        providerName: "ibkr",
        policy: { ok: 1, soft: 0.5, hard: 0 },
        capacity: 40,
        refillRate: 200
      })
    ))
})
