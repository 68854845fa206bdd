import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { type FeedbackEvent, FeedbackPublisher, RateCoordinator, UnifiedRuntime } from "market-data-pipeline"
import * as SimulatedStore from "../../src/service/SimulatedStore.ts"
import * as Simulation from "../../src/service/Simulation.ts"
import { withRuntime } from "../feedback/helpers.ts"

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
    }).pipe(withRuntime({ capacity: 40, refillRate: 200 })))

  it.effect(
    "a long run keeps constant memory: the last maxSamples samples, the summary over the whole run",
    () =>
      Effect.gen(function*() {
        const publisher = yield* FeedbackPublisher
        const runtime = yield* UnifiedRuntime
        const store = yield* SimulatedStore.make({ coordinatorId: "sim", capacity: 100, publish: publisher.publish })
        const sim = yield* Simulation.start({ provider: runtime.provider, sinkRate: 5, maxSamples: 600 }, store)
        const kept: Array<number> = []
        // two virtual hours, 72,000 samples taken
        for (let hour = 0; hour < 2; hour++) {
          for (let i = 0; i < 360; i++) yield* TestClock.adjust("10 seconds")
          kept.push(sim.samples().length)
        }
        assert.deepStrictEqual(kept, [600, 600])
        const samples = sim.samples()
        // the most recent minute, oldest first, one sample every 100 ms
        assert.approximately(samples[0]!.t, 7140.1, 1e-6)
        assert.approximately(samples[599]!.t, 7200, 1e-6)
        for (let i = 1; i < samples.length; i++) assert.approximately(samples[i]!.t - samples[i - 1]!.t, 0.1, 1e-6)
        const summary = yield* sim.summary
        assert.strictEqual(summary.durationSec, 7200)
        const { hard, ok, soft } = summary.secondsInLevel
        assert.approximately(ok + soft + hard, 7200, 1e-6)
      }).pipe(withRuntime({ capacity: 2 })),
    { timeout: 60_000 }
  )

  it.effect("stop ends the provider at once and freezes the summary at the stop", () =>
    Effect.gen(function*() {
      const runtime = yield* UnifiedRuntime
      const sim = yield* Simulation.start({ provider: runtime.provider, sinkRate: 5 }, undefined)
      yield* TestClock.adjust("4500 millis")
      yield* sim.stop
      const atStop = yield* sim.summary
      yield* TestClock.adjust("20 seconds")
      const later = yield* sim.summary
      assert.strictEqual(atStop.durationSec, 4.5)
      assert.deepStrictEqual(later, atStop) // nothing produced, no time counted after the stop
      assert.strictEqual((yield* (yield* RateCoordinator).state("ibkr")).waiters, 0)
    }).pipe(withRuntime({ capacity: 2 })))
})
