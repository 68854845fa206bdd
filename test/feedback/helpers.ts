import { Effect } from "effect"
import type { BackpressureLevel, FeedbackEvent } from "market-data-pipeline"

export const event = (coordinatorId: string, level: BackpressureLevel, ts = 1700000000): FeedbackEvent => ({
  coordinatorId,
  queueSize: level === "ok" ? 10 : level === "soft" ? 800 : 950,
  capacity: 1000,
  level,
  source: "store",
  ts
})

/** Lets other fibers run until `check` holds (no clock involved); fails after 10,000 yields. */
export const eventually = <E, R>(check: Effect.Effect<boolean, E, R>): Effect.Effect<void, E | Error, R> =>
  Effect.gen(function*() {
    for (let i = 0; i < 10_000; i++) {
      if (yield* check) return
      yield* Effect.yieldNow
    }
    return yield* Effect.fail(new Error("condition not reached"))
  })
