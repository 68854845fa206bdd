import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import { FeedbackPublisher, RateCoordinator, UnifiedRuntime } from "market-data-pipeline"
import * as SimulatedStore from "../../src/service/SimulatedStore.ts"
import * as Simulation from "../../src/service/Simulation.ts"

/** A fresh runtime for provider ibkr, its settings read from these variables (as the service reads them). */
const withRuntime = (env: Record<string, string>) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    Effect.provide(Layer.fresh(UnifiedRuntime.layer)),
    Effect.provideService(
      ConfigProvider.ConfigProvider,
      ConfigProvider.fromEnv({ env: { MDP_FB_PROVIDER_NAME: "ibkr", ...env } })
    )
  )

/** The service's demo setup: 200/s (a 0.2 s burst of 40) into a 1,000-item queue drained at 120/s. */
const demo = (enableFeedback: boolean) =>
  withRuntime({ MDP_PROVIDER_RATE: "200", MDP_PROVIDER_BURST: "40", MDP_FB_ENABLE_FEEDBACK: String(enableFeedback) })

/** Runs the real loop (runtime, bus, handler, coordinator, store) for `seconds` of virtual time. */
const runLoop = (seconds: number, overflow: SimulatedStore.OverflowStrategy, capacity = 1000) =>
  Effect.gen(function*() {
    const publisher = yield* FeedbackPublisher
    const runtime = yield* UnifiedRuntime
    const store = yield* SimulatedStore.make({ coordinatorId: "sim", capacity, overflow, publish: publisher.publish })
    const sim = yield* Simulation.start(
      { provider: runtime.provider, sinkRate: 120, feedback: runtime.feedbackEnabled },
      store
    )
    for (let i = 0; i < seconds * 10; i++) yield* TestClock.adjust("100 millis")
    yield* sim.stop
    return { samples: sim.samples(), summary: yield* sim.summary, store }
  })

/** Every item produced is written, still queued, dropped or rejected. */
const assertAccounted = (summary: Simulation.Summary) =>
  assert.strictEqual(
    summary.produced,
    summary.written + summary.queued + summary.dropped + summary.rejected,
    JSON.stringify(summary)
  )

describe("the closed loop in virtual time", () => {
  it.effect(
    "with feedback and drop_oldest: nothing is dropped; the rate halves under soft, stops under hard",
    () =>
      Effect.gen(function*() {
        const { samples, summary } = yield* runLoop(60, "drop_oldest")
        assert.strictEqual(summary.feedback, true)
        assert.strictEqual(summary.store?.overflow, "drop_oldest")
        assert.strictEqual(summary.dropped, 0)
        assert.strictEqual(summary.rejected, 0)
        assert.isAtMost(summary.maxQueueDepth, 1000)
        assertAccounted(summary)
        assert.isAbove(summary.secondsInLevel.soft, 0)
        assert.isAbove(summary.secondsInLevel.hard, 0)
        const rateIn = (level: string) => new Set(samples.filter((s) => s.level === level).map((s) => s.rate))
        assert.deepStrictEqual([...rateIn("soft")], [100])
        assert.deepStrictEqual([...rateIn("hard")], [0])
        assert.deepStrictEqual([...rateIn("ok")], [200])
        // after the first hard, ok comes back (recovery)
        const firstHard = samples.findIndex((s) => s.level === "hard")
        assert.isTrue(samples.slice(firstHard).some((s) => s.level === "ok"))
        // soft and hard come from the stalls: soft as the queue rises during one, hard as it reaches the high watermark
        const starts = (level: string) =>
          samples.flatMap((s, i) => s.level === level && i > 0 && samples[i - 1]!.level !== level ? [i] : [])
        assert.lengthOf(starts("hard"), 4) // stalls end at 15, 30, 45, 60 s
        for (const i of [...starts("soft"), ...starts("hard")]) {
          assert.isTrue(samples[i]!.stalled || samples[i - 1]!.stalled, `t=${samples[i]!.t}`)
        }
        assert.isAtLeast(summary.written, 55 * 120 * 0.8) // the sink was kept busy
        assert.strictEqual((yield* (yield* RateCoordinator).state("ibkr")).capacity, 40)
      }).pipe(demo(true)),
    { timeout: 60_000 }
  )

  it.effect(
    "without feedback and drop_oldest: the queue overflows and thousands of items are dropped",
    () =>
      Effect.gen(function*() {
        const { samples, summary } = yield* runLoop(60, "drop_oldest")
        assert.strictEqual(summary.feedback, false)
        assertAccounted(summary)
        // 200/s in, at most 120/s out: about 12,000 produced, 5,800 written, 1,000 queued, the rest dropped
        assert.approximately(summary.produced, 12_000, 100)
        assert.isAbove(summary.dropped, 4_000)
        assert.strictEqual(summary.queued, 1000)
        assert.strictEqual(summary.maxQueueDepth, 1000)
        assert.isTrue(samples.every((s) => s.rate === 200 && s.queueDepth <= 1000))
        // the samples count the drops too (the last one is a moment before the stop)
        assert.approximately(samples[samples.length - 1]!.dropped, summary.dropped, 5)
        // the provider stayed at ok; the store was at hard most of the time, unheeded
        assert.strictEqual(summary.secondsInLevel.soft + summary.secondsInLevel.hard, 0)
        assert.isAbove(summary.secondsInStoreLevel!.hard, 40)
      }).pipe(demo(false)),
    { timeout: 60_000 }
  )

  it.effect(
    "without feedback and block: nothing is dropped, the queue stays within capacity, the provider waits",
    () =>
      Effect.gen(function*() {
        const { samples, summary } = yield* runLoop(60, "block")
        assert.strictEqual(summary.dropped, 0)
        assert.strictEqual(summary.rejected, 0)
        assert.strictEqual(summary.maxQueueDepth, 1000)
        assert.isTrue(samples.every((s) => s.queueDepth <= 1000))
        assertAccounted(summary)
        // the provider is held back by the full queue instead: written + queued, not 12,000
        assert.isBelow(summary.produced, 8_000)
        assert.isAbove(summary.blockedSec, 20)
      }).pipe(demo(false)),
    { timeout: 60_000 }
  )

  it.effect("without feedback and error: puts on the full queue are refused and counted", () =>
    Effect.gen(function*() {
      const { summary } = yield* runLoop(60, "error")
      assert.strictEqual(summary.dropped, 0)
      assert.isAbove(summary.rejected, 4_000)
      assertAccounted(summary)
    }).pipe(demo(false)), { timeout: 60_000 })

  it.effect("with feedback, a small queue (capacity 200) still drops nothing", () =>
    Effect.gen(function*() {
      const { summary } = yield* runLoop(60, "drop_oldest", 200)
      assert.strictEqual(summary.dropped, 0)
      assert.isAtMost(summary.maxQueueDepth, 200)
      assertAccounted(summary)
    }).pipe(demo(true)), { timeout: 60_000 })

  it.effect("the samples mark the sink's stalls: the last 3 s of every 15 s", () =>
    Effect.gen(function*() {
      const { samples } = yield* runLoop(31, "drop_oldest")
      const stalled = samples.filter((s) => s.stalled).map((s) => Math.round(s.t * 10) / 10)
      const expected: Array<number> = []
      for (let t = 0; t <= 31; t = Math.round((t + 0.1) * 10) / 10) if (t % 15 >= 12) expected.push(t)
      assert.deepStrictEqual(stalled, expected)
    }).pipe(demo(true)), { timeout: 60_000 })

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
        assertAccounted(summary)
      }).pipe(withRuntime({ MDP_PROVIDER_RATE: "10", MDP_PROVIDER_BURST: "2" })),
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
      assert.strictEqual(atStop.store, undefined)
      assert.strictEqual(atStop.written, atStop.produced)
      assert.strictEqual((yield* (yield* RateCoordinator).state("ibkr")).waiters, 0)
    }).pipe(withRuntime({ MDP_PROVIDER_RATE: "10", MDP_PROVIDER_BURST: "2" })))
})
