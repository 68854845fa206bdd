import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import type { FeedbackEvent } from "market-data-pipeline"
import * as SimulatedStore from "../../src/service/SimulatedStore.ts"

const recording = (options: Omit<SimulatedStore.SimulatedStoreOptions, "coordinatorId" | "publish">) =>
  Effect.gen(function*() {
    const events: Array<FeedbackEvent> = []
    const store = yield* SimulatedStore.make({
      coordinatorId: "c",
      publish: (e) => Effect.sync(() => events.push(e)),
      ...options
    })
    const emitted = () => events.splice(0).map((e) => `${e.level}@${e.queueSize}`)
    return { store, emitted }
  })

const repeat = <E>(n: number, effect: Effect.Effect<unknown, E>) =>
  Effect.gen(function*() {
    for (let i = 0; i < n; i++) yield* effect
  })

/** accepted = taken + dropped + size, whatever happened */
const assertAccounted = (stats: SimulatedStore.SimulatedStoreStats) =>
  assert.strictEqual(stats.accepted, stats.taken + stats.dropped + stats.size, JSON.stringify(stats))

describe("SimulatedStore: the watermark rules (python-reference §10.1)", () => {
  it.effect("reproduces the reference trace: capacity 10, high 8, low 5", () =>
    Effect.gen(function*() {
      const { emitted, store } = yield* recording({ capacity: 10 })
      assert.deepStrictEqual([store.highWatermark, store.lowWatermark, store.overflow], [8, 5, "block"])
      yield* repeat(10, store.put)
      assert.deepStrictEqual(emitted(), ["soft@6", "hard@8"])
      yield* repeat(10, store.take)
      assert.deepStrictEqual(emitted(), ["ok@5"])
      yield* repeat(7, store.put)
      assert.deepStrictEqual(emitted(), ["soft@6"])
      yield* repeat(2, store.take)
      assert.deepStrictEqual(emitted(), ["ok@5"])
      yield* repeat(3, store.put)
      assert.deepStrictEqual(emitted(), ["soft@6", "hard@8"])
      assert.strictEqual(store.level(), "hard")
    }))

  it.effect("items come out in arrival order", () =>
    Effect.gen(function*() {
      const { store } = yield* recording({ capacity: 5 })
      yield* repeat(3, store.put)
      assert.deepStrictEqual([yield* store.take, yield* store.take, yield* store.take], [0, 1, 2])
    }))
})

describe("SimulatedStore: overflow strategies", () => {
  it.effect("block: a put waits while the queue is full; the take that makes room moves it in", () =>
    Effect.gen(function*() {
      const { emitted, store } = yield* recording({ capacity: 2 })
      yield* repeat(2, store.put)
      const blocked = yield* Effect.forkChild(store.put)
      yield* Effect.yieldNow
      assert.isUndefined(blocked.pollUnsafe())
      assert.strictEqual(store.size(), 2)
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual(yield* store.take, 0)
      // the waiting put went in with the take: the size never went past the capacity
      assert.strictEqual(store.size(), 2)
      yield* Fiber.join(blocked)
      assert.deepStrictEqual([yield* store.take, yield* store.take], [1, 2])
      const stats = store.stats()
      assert.deepStrictEqual(
        { ...stats },
        { size: 0, maxSize: 2, accepted: 3, taken: 3, dropped: 0, rejected: 0, blockedMillis: 2000 }
      )
      // capacity 2: high 1, low 1; the take's ok comes before the moved-in put's hard
      assert.deepStrictEqual(emitted(), ["hard@1", "ok@1", "hard@2", "ok@1"])
    }))

  it.effect("block: a producer and a sink racing never push the size past the capacity (it read 1001 of 1000)", () =>
    Effect.gen(function*() {
      const { store } = yield* recording({ capacity: 20 })
      let maxSeen = 0
      const producer = yield* Effect.forkChild(Effect.forever(Effect.andThen(
        store.put,
        Effect.sync(() => {
          maxSeen = Math.max(maxSeen, store.size())
        })
      )))
      const sink = yield* Effect.forkChild(
        Effect.forever(Effect.andThen(store.take, Effect.sleep("10 millis")))
      )
      for (let i = 0; i < 200; i++) yield* TestClock.adjust("10 millis")
      yield* Fiber.interrupt(producer)
      yield* Fiber.interrupt(sink)
      const stats = store.stats()
      assert.strictEqual(maxSeen, 20)
      assert.strictEqual(stats.maxSize, 20)
      assert.isAtLeast(stats.taken, 190)
      assert.strictEqual(stats.dropped, 0)
      assertAccounted(stats)
    }))

  it.effect("block: an interrupted waiting put leaves nothing behind", () =>
    Effect.gen(function*() {
      const { store } = yield* recording({ capacity: 1 })
      yield* store.put
      const blocked = yield* Effect.forkChild(store.put)
      yield* Effect.yieldNow
      yield* Fiber.interrupt(blocked)
      assert.strictEqual(yield* store.take, 0)
      assert.strictEqual(store.size(), 0)
      yield* store.put
      assert.strictEqual(yield* store.take, 2) // arrival 1 never went in
      assertAccounted(store.stats())
      assert.strictEqual(store.stats().accepted, 2)
    }))

  it.effect("drop_oldest: a put on a full queue evicts the oldest item and counts it", () =>
    Effect.gen(function*() {
      const { emitted, store } = yield* recording({ capacity: 3, overflow: "drop_oldest" })
      yield* repeat(5, store.put)
      assert.strictEqual(store.size(), 3)
      assert.deepStrictEqual([yield* store.take, yield* store.take, yield* store.take], [2, 3, 4])
      const stats = store.stats()
      assert.deepStrictEqual([stats.dropped, stats.accepted, stats.maxSize, stats.rejected], [2, 5, 3, 0])
      assertAccounted(stats)
      // capacity 3: high 2, low 1; the evictions emit nothing
      assert.deepStrictEqual(emitted(), ["hard@2", "ok@1"])
    }))

  it.effect("drop_oldest: the eviction skips the low-watermark check, as in Python", () =>
    Effect.gen(function*() {
      // low = capacity - 1: an eviction takes the size to the low watermark, yet no ok is emitted
      const { emitted, store } = yield* recording({
        capacity: 4,
        highWatermark: 4,
        lowWatermark: 3,
        overflow: "drop_oldest"
      })
      yield* repeat(6, store.put)
      assert.deepStrictEqual(emitted(), ["hard@4"])
      yield* store.take
      assert.deepStrictEqual(emitted(), ["ok@3"]) // a take does check it
      assert.strictEqual(store.stats().dropped, 2)
    }))

  it.effect("error: a put on a full queue fails with QueueFull, counted, and the queue is unchanged", () =>
    Effect.gen(function*() {
      const { store } = yield* recording({ capacity: 2, overflow: "error" })
      yield* repeat(2, store.put)
      const error = yield* Effect.flip(store.put)
      assert.strictEqual(error._tag, "QueueFull")
      assert.deepStrictEqual([error.coordinatorId, error.capacity], ["c", 2])
      assert.deepStrictEqual([yield* store.take, yield* store.take], [0, 1])
      yield* store.put
      assert.strictEqual(yield* store.take, 3) // arrival 2 was refused
      const stats = store.stats()
      assert.deepStrictEqual([stats.rejected, stats.dropped, stats.accepted, stats.taken], [1, 0, 3, 3])
      assertAccounted(stats)
    }))

  it.effect("a take waits while the queue is empty; the next put hands it its item", () =>
    Effect.gen(function*() {
      const { emitted, store } = yield* recording({ capacity: 10 })
      const waiting = yield* Effect.forkChild(store.take)
      yield* Effect.yieldNow
      assert.isUndefined(waiting.pollUnsafe())
      yield* store.put
      assert.strictEqual(yield* Fiber.join(waiting), 0)
      assert.strictEqual(store.size(), 0)
      assert.deepStrictEqual(emitted(), [])
      assertAccounted(store.stats())
    }))

  it.effect("with a full queue and waiting puts, the events come out in the order of the changes", () =>
    Effect.gen(function*() {
      // capacity 4, high 3, low 2
      const { emitted, store } = yield* recording({ capacity: 4, highWatermark: 3, lowWatermark: 2 })
      yield* repeat(4, store.put)
      assert.deepStrictEqual(emitted(), ["hard@3"])
      const waiting = yield* Effect.forkChild(repeat(3, store.put))
      yield* Effect.yieldNow
      // each take makes room for one waiting put, moved in at once: 4 → 3 → 4, no event
      for (let i = 0; i < 3; i++) {
        yield* store.take
        assert.strictEqual(store.size(), 4)
        yield* Effect.yieldNow
      }
      yield* Fiber.join(waiting)
      assert.deepStrictEqual(emitted(), [])
      yield* repeat(2, store.take)
      assert.deepStrictEqual(emitted(), ["ok@2"])
      assert.strictEqual(store.stats().maxSize, 4)
      assertAccounted(store.stats())
    }))
})
