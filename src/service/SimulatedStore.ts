/**
 * A simulated store write queue with the Python store's watermark feedback
 * (market_data_store `BoundedQueue`, python-reference §10.1).
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import type { BackpressureLevel } from "../contracts/BackpressureLevel.ts"
import type { FeedbackEvent } from "../contracts/FeedbackEvent.ts"

/**
 * Options of {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface SimulatedStoreOptions {
  readonly coordinatorId: string
  readonly capacity: number
  /** Default: 80% of capacity (at least 1). */
  readonly highWatermark?: number
  /** Default: 50% of capacity. */
  readonly lowWatermark?: number
  /** Where the store's feedback goes (the bus, in the service). */
  readonly publish: (event: FeedbackEvent) => Effect.Effect<void>
}

/**
 * A bounded write queue. `put` waits while the queue is full (nothing is
 * ever dropped); after each put and take the store's watermark rules decide
 * whether to emit feedback: `hard` once when the size reaches the high
 * watermark, `soft` once when it is strictly between the watermarks, `ok`
 * when it falls to the low watermark after either fired.
 *
 * @since 0.1.0
 * @category models
 */
export interface SimulatedStore {
  readonly put: Effect.Effect<void>
  readonly take: Effect.Effect<void>
  readonly size: () => number
  readonly capacity: number
  /** The level the store last reported (`ok` before any report). */
  readonly level: () => BackpressureLevel
}

/**
 * Builds a store.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: SimulatedStoreOptions): Effect.Effect<SimulatedStore> =>
  Effect.gen(function*() {
    const { capacity, coordinatorId } = options
    const high = options.highWatermark ?? Math.max(1, Math.trunc(0.8 * capacity))
    const low = options.lowWatermark ?? Math.trunc(0.5 * capacity)
    const queue = yield* Queue.bounded<true>(capacity)
    let size = 0
    let highFired = false
    let softFired = false
    let level: BackpressureLevel = "ok"

    const emit = (next: BackpressureLevel) =>
      Effect.flatMap(Clock.currentTimeMillis, (millis) => {
        level = next
        return options.publish({
          coordinatorId,
          queueSize: size,
          capacity,
          level: next,
          source: "store",
          ts: millis / 1000
        })
      })

    const afterPut = Effect.suspend(() => {
      size++
      if (!highFired && size >= high) {
        highFired = true
        softFired = true
        return emit("hard")
      }
      if (!softFired && size > low && size < high) {
        softFired = true
        return emit("soft")
      }
      return Effect.void
    })

    const afterTake = Effect.suspend(() => {
      size--
      if ((highFired || softFired) && size <= low) {
        highFired = false
        softFired = false
        return emit("ok")
      }
      return Effect.void
    })

    return {
      put: Effect.andThen(Queue.offer(queue, true), afterPut),
      take: Effect.andThen(Queue.take(queue), afterTake),
      size: () => size,
      capacity,
      level: () => level
    }
  })
