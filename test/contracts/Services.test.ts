import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import {
  type FeedbackEvent,
  FeedbackPublisher,
  FeedbackPublisherRecorder,
  type RateAdjustment,
  RateController,
  RateControllerRecorder
} from "market-data-pipeline"

const event = (coordinatorId: string, level: FeedbackEvent["level"]): FeedbackEvent => ({
  coordinatorId,
  queueSize: 10,
  capacity: 100,
  level,
  source: "store",
  ts: 1700000000
})

describe("RateController.layerTest", () => {
  it.effect("records every applied adjustment in order", () =>
    Effect.gen(function*() {
      const controller = yield* RateController
      const adjustments: Array<RateAdjustment> = [
        { provider: "ibkr", scale: 0.5, reason: "soft", ts: 1 },
        { provider: "ibkr", scale: 0, reason: "hard", ts: 2 }
      ]
      for (const adjustment of adjustments) yield* controller.apply(adjustment)
      assert.deepStrictEqual(yield* (yield* RateControllerRecorder).applied, adjustments)
    }).pipe(Effect.provide(RateController.layerTest)))

  it.effect("starts empty for every test that builds it", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* (yield* RateControllerRecorder).applied, [])
    }).pipe(Effect.provide(RateController.layerTest)))
})

describe("FeedbackPublisher.layerTest", () => {
  it.effect("records every published event in order, also when published concurrently", () =>
    Effect.gen(function*() {
      const publisher = yield* FeedbackPublisher
      yield* publisher.publish(event("a", "soft"))
      yield* Effect.forEach(["b", "c", "d"], (id) => publisher.publish(event(id, "hard")), { concurrency: "unbounded" })
      const published = yield* (yield* FeedbackPublisherRecorder).published
      assert.strictEqual(published.length, 4)
      assert.deepStrictEqual(published[0], event("a", "soft"))
      assert.deepStrictEqual(published.slice(1).map((e) => e.coordinatorId).sort(), ["b", "c", "d"])
    }).pipe(Effect.provide(FeedbackPublisher.layerTest)))
})
