/**
 * A simulated store write queue with the Python store's watermark feedback
 * and overflow strategies (market_data_store `BoundedQueue`,
 * python-reference §10.1).
 *
 * The queue holds items (each put's arrival number, from 0) and decides, after
 * every put and take, whether to publish feedback: `hard` once when the size
 * reaches the high watermark, `soft` once when it is strictly between the
 * watermarks, `ok` when it falls to the low watermark after either fired.
 * What a put on a full queue does is the overflow strategy:
 *
 * - `block` (the default, as in Python): the put waits until a take makes
 *   room; nothing is lost, the producer is slowed instead;
 * - `drop_oldest`: the oldest queued item is evicted (counted as dropped,
 *   without the low-watermark check) and the put goes in;
 * - `error`: the put fails with {@link QueueFull} (counted as rejected).
 *
 * State changes and the feedback they cause happen under one lock, like the
 * Python store's: the published events are in the order of the changes, and
 * the size never exceeds the capacity (a blocked put is moved into the queue
 * by the take that made room, in the same step). The counters of
 * {@link SimulatedStoreStats} always satisfy
 * `accepted = taken + dropped + size`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as SimulatedStore from "./SimulatedStore.ts"
 *
 * const program = Effect.gen(function*() {
 *   const store = yield* SimulatedStore.make({
 *     coordinatorId: "demo",
 *     capacity: 2,
 *     overflow: "drop_oldest",
 *     publish: (event) => Effect.log(event.level, event.queueSize)
 *   })
 *   yield* store.put // item 0
 *   yield* store.put // item 1
 *   yield* store.put // item 2: item 0 is dropped
 *   const first = yield* store.take // 1
 *   return [first, store.stats().dropped] // [1, 1]
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Semaphore from "effect/Semaphore"
import type { BackpressureLevel } from "../contracts/BackpressureLevel.ts"
import type { FeedbackEvent } from "../contracts/FeedbackEvent.ts"

/**
 * What a put does when the queue is full (the Python store's
 * `overflow_strategy`).
 *
 * @since 0.1.0
 * @category models
 */
export type OverflowStrategy = "block" | "drop_oldest" | "error"

/**
 * The overflow strategies, in the order the CLI lists them.
 *
 * @since 0.1.0
 * @category models
 */
export const overflowStrategies = ["block", "drop_oldest", "error"] as const satisfies ReadonlyArray<OverflowStrategy>

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
  /** What a put on a full queue does (default `block`, as in the Python store). */
  readonly overflow?: OverflowStrategy
  /** Where the store's feedback goes (the bus, in the service). */
  readonly publish: (event: FeedbackEvent) => Effect.Effect<void>
}

/**
 * A put on a full queue with the `error` overflow strategy (Python's
 * `QueueFullError("BoundedQueue is full")`). The item is not queued.
 *
 * @since 0.1.0
 * @category errors
 */
export class QueueFull extends Data.TaggedError("QueueFull")<{
  readonly coordinatorId: string
  readonly capacity: number
}> {
  override get message(): string {
    return `the write queue of ${this.coordinatorId} is full (capacity ${this.capacity})`
  }
}

/**
 * What the store has done since it was made.
 *
 * @since 0.1.0
 * @category models
 */
export interface SimulatedStoreStats {
  /** Items in the queue now. */
  readonly size: number
  /** The largest size reached (never above the capacity). */
  readonly maxSize: number
  /** Items that went into the queue. */
  readonly accepted: number
  /** Items taken out by `take` (the sink's writes). */
  readonly taken: number
  /** Items evicted by `drop_oldest`. */
  readonly dropped: number
  /** Puts refused by `error`. */
  readonly rejected: number
  /** Time puts spent waiting on a full queue (`block`), summed over the waiting puts. */
  readonly blockedMillis: number
}

/**
 * A bounded write queue with the store's watermark feedback.
 *
 * @since 0.1.0
 * @category models
 */
export interface SimulatedStore {
  /** Queues the next item; on a full queue, what the overflow strategy says. */
  readonly put: Effect.Effect<void, QueueFull>
  /** Takes the oldest item (its arrival number), waiting while the queue is empty. */
  readonly take: Effect.Effect<number>
  readonly size: () => number
  readonly capacity: number
  readonly highWatermark: number
  readonly lowWatermark: number
  readonly overflow: OverflowStrategy
  /** The level the store last reported (`ok` before any report). */
  readonly level: () => BackpressureLevel
  readonly stats: () => SimulatedStoreStats
}

interface Waiting<A> {
  readonly done: Deferred.Deferred<A>
}

interface WaitingPut extends Waiting<void> {
  readonly item: number
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
    const overflow = options.overflow ?? "block"
    const lock = yield* Semaphore.make(1)
    const items: Array<number> = []
    // puts waiting for room (`block`, FIFO): only ever non-empty while the queue is full
    const putters: Array<WaitingPut> = []
    // takes waiting for an item: only ever non-empty while the queue is empty
    const takers: Array<Waiting<number>> = []
    let arrivals = 0
    let accepted = 0
    let taken = 0
    let dropped = 0
    let rejected = 0
    let blockedMillis = 0
    let maxSize = 0
    let highFired = false
    let softFired = false
    let level: BackpressureLevel = "ok"

    const emit = (next: BackpressureLevel, queueSize: number): Effect.Effect<void> => {
      level = next
      return Effect.flatMap(Clock.currentTimeMillis, (millis) =>
        options.publish({ coordinatorId, queueSize, capacity, level: next, source: "store", ts: millis / 1000 }))
    }

    // The state changes are synchronous; the returned effect publishes what they caused, in order.
    const enqueue = (item: number): Effect.Effect<void> => {
      items.push(item)
      accepted++
      const size = items.length
      if (size > maxSize) {
        maxSize = size
      }
      if (!highFired && size >= high) {
        highFired = true
        softFired = true
        return emit("hard", size)
      }
      if (!softFired && size > low && size < high) {
        softFired = true
        return emit("soft", size)
      }
      return Effect.void
    }

    const dequeue = (): readonly [number, Effect.Effect<void>] => {
      const item = items.shift()!
      taken++
      const size = items.length
      if ((highFired || softFired) && size <= low) {
        highFired = false
        softFired = false
        return [item, emit("ok", size)]
      }
      return [item, Effect.void]
    }

    // a waiting take gets the item just queued, in the same step
    const serveTaker = (published: Effect.Effect<void>): Effect.Effect<void> => {
      const taker = takers.shift()
      if (taker === undefined) {
        return published
      }
      const [item, afterTake] = dequeue()
      return published.pipe(Effect.andThen(afterTake), Effect.andThen(Deferred.succeed(taker.done, item)))
    }

    const locked = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
      lock.withPermit(Effect.uninterruptible(effect))

    const park = <A>(queue: Array<Waiting<A>>, parked: Waiting<A>): Effect.Effect<A> =>
      Deferred.await(parked.done).pipe(
        Effect.onInterrupt(() =>
          Effect.sync(() => {
            const at = queue.indexOf(parked)
            if (at >= 0) {
              queue.splice(at, 1)
            }
          })
        )
      )

    const put: Effect.Effect<void, QueueFull> = Effect.flatMap(
      locked(Effect.suspend((): Effect.Effect<WaitingPut | undefined, QueueFull> => {
        const item = arrivals++
        if (items.length < capacity) {
          return Effect.as(serveTaker(enqueue(item)), undefined)
        }
        switch (overflow) {
          case "error": {
            rejected++
            return Effect.fail(new QueueFull({ coordinatorId, capacity }))
          }
          case "drop_oldest": {
            // Python: decrement the size without the low-watermark check, then put and signal as usual
            items.shift()
            dropped++
            return Effect.as(enqueue(item), undefined)
          }
          case "block": {
            const parked: WaitingPut = { item, done: Deferred.makeUnsafe() }
            putters.push(parked)
            return Effect.succeed(parked)
          }
        }
      })),
      (parked) =>
        parked === undefined ? Effect.void : Effect.gen(function*() {
          const since = yield* Clock.currentTimeMillis
          yield* park(putters, parked).pipe(
            Effect.ensuring(Effect.flatMap(Clock.currentTimeMillis, (now) =>
              Effect.sync(() => {
                blockedMillis += now - since
              })))
          )
        })
    )

    const take: Effect.Effect<number> = Effect.flatMap(
      locked(Effect.suspend((): Effect.Effect<Waiting<number> | { readonly item: number }> => {
        if (items.length === 0) {
          const parked: Waiting<number> = { done: Deferred.makeUnsafe() }
          takers.push(parked)
          return Effect.succeed(parked)
        }
        const [item, afterTake] = dequeue()
        // the take made room: the first waiting put goes in now, so the size never passes the capacity
        const putter = putters.shift()
        const published = putter === undefined ? afterTake : afterTake.pipe(
          Effect.andThen(enqueue(putter.item)),
          Effect.andThen(Deferred.succeed(putter.done, undefined))
        )
        return Effect.as(published, { item })
      })),
      (result) =>
        "done" in result ? park(takers, result) : Effect.succeed(result.item)
    )

    return {
      put,
      take,
      size: () =>
        items.length,
      capacity,
      highWatermark: high,
      lowWatermark: low,
      overflow,
      level: () => level,
      stats: () => ({ size: items.length, maxSize, accepted, taken, dropped, rejected, blockedMillis })
    }
  })
