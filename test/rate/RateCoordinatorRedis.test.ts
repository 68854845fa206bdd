import * as NodeRedis from "@effect/platform-node/NodeRedis"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer, Scope } from "effect"
import * as Redis from "effect/persistence/Redis"
import { CoordinatorLevels, RateCoordinator } from "market-data-pipeline"
import { captureLogs } from "../feedback/helpers.ts"

const url = "redis://127.0.0.1:6379"
let counter = 0
const freshPrefix = () => `t${process.pid}x${Date.now()}x${counter++}`

/** The Redis service on the machine's Redis; keys of `prefix` are deleted when the scope closes. */
const redisFor = (prefix: string) =>
  Layer.effectDiscard(Effect.gen(function*() {
    const redis = yield* Redis.Redis
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        const keys = yield* redis.send<Array<string>>("KEYS", `{${prefix}:rl:*`)
        if (keys.length > 0) yield* redis.send("UNLINK", ...keys)
      }).pipe(Effect.ignore)
    )
  })).pipe(Layer.provideMerge(NodeRedis.layer({ url, disableOfflineQueue: true })))

/** A coordinator as another process would have it: its own layer, the same Redis and prefix. */
const process_ = (prefix: string) =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const context = yield* Layer.buildWithScope(
      RateCoordinator.layerRedis({ prefix }).pipe(Layer.provide(NodeRedis.layer({ url, disableOfflineQueue: true }))),
      scope
    )
    return { coordinator: Context.get(context, RateCoordinator), levels: Context.get(context, CoordinatorLevels) }
  })

const stamp = (log: Array<number>, start: number) => () => Effect.sync(() => log.push(performance.now() - start))

/** The most grants in any window of `ms`. */
const maxInWindow = (times: ReadonlyArray<number>, ms: number): number => {
  const sorted = [...times].sort((a, b) => a - b)
  let most = 0
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! >= ms) j++
    most = Math.max(most, i - j + 1)
  }
  return most
}

describe("RateCoordinator.layerRedis (the machine's Redis)", () => {
  it.live("two coordinators share one bucket: burst + rate together, FIFO within each, ~all of the rate", () => {
    const prefix = freshPrefix()
    return Effect.gen(function*() {
      const one = (yield* process_(prefix)).coordinator
      const two = (yield* process_(prefix)).coordinator
      yield* one.registerProvider("p", { capacity: 5, refillRate: 100 })
      yield* two.registerProvider("p", { capacity: 5, refillRate: 100 })
      const start = performance.now()
      const times: Array<number> = []
      const run = (c: RateCoordinator["Service"]) =>
        Effect.forEach(
          Array.from({ length: 8 }),
          () =>
            Effect.gen(function*() {
              while (performance.now() - start < 1500) {
                yield* c.acquire("p")
                yield* stamp(times, start)()
              }
            }),
          { concurrency: "unbounded", discard: true }
        )
      yield* Effect.all([run(one), run(two)], { concurrency: "unbounded" })
      const inTime = times.filter((t) => t < 1500)
      // generous for timestamps taken in this process after the reply
      assert.isAtMost(maxInWindow(times, 1000), 100 + 5 + 3)
      assert.isAtLeast(inTime.length, 0.9 * (5 + 100 * 1.5))
    }).pipe(Effect.scoped, Effect.provide(redisFor(prefix)))
  }, { timeout: 30_000 })

  it.live("FIFO within a process, weighted acquires included: a later small request never overtakes", () => {
    const prefix = freshPrefix()
    return Effect.gen(function*() {
      const { coordinator } = yield* process_(prefix)
      yield* coordinator.registerProvider("p", { capacity: 3, refillRate: 20 })
      while (yield* coordinator.tryAcquire("p")) {
        // drain the burst
      }
      const order: Array<string> = []
      const fibers: Array<Fiber.Fiber<void, unknown>> = []
      for (const [label, tokens] of [["a", 3], ["b", 1], ["c", 2], ["d", 1]] as const) {
        fibers.push(
          yield* Effect.forkChild(
            Effect.tap(coordinator.acquire("p", tokens), () => Effect.sync(() => order.push(label)))
          )
        )
        yield* Effect.yieldNow
      }
      yield* Fiber.joinAll(fibers)
      assert.deepStrictEqual(order, ["a", "b", "c", "d"])
    }).pipe(Effect.scoped, Effect.provide(redisFor(prefix)))
  }, { timeout: 30_000 })

  it.live("a pause made in one process stops grants in the other at once, even an idle burst; resume restarts", () => {
    const prefix = freshPrefix()
    return Effect.gen(function*() {
      const one = (yield* process_(prefix)).coordinator
      const two = (yield* process_(prefix)).coordinator
      yield* one.registerProvider("p", { capacity: 5, refillRate: 50 })
      yield* two.registerProvider("p", { capacity: 5, refillRate: 50 })
      yield* one.setBudgetScale("p", 0)
      // the idle burst of 5 is not spendable while paused
      assert.isFalse(yield* two.tryAcquire("p"))
      const start = performance.now()
      const granted: Array<number> = []
      const waiter = yield* Effect.forkChild(
        Effect.forEach(Array.from({ length: 3 }), () => Effect.tap(two.acquire("p"), stamp(granted, start)), {
          discard: true
        })
      )
      yield* Effect.sleep("400 millis")
      assert.deepStrictEqual(granted, [])
      assert.strictEqual((yield* two.state("p")).scale, 0)
      yield* one.setBudgetScale("p", 1)
      yield* Fiber.join(waiter)
      assert.strictEqual(granted.length, 3)
      assert.isAtLeast(granted[0]!, 400)
      assert.isBelow(granted[2]! - granted[0]!, 200) // at 50/s, not waiting on a poll
    }).pipe(Effect.scoped, Effect.provide(redisFor(prefix)))
  }, { timeout: 30_000 })

  it.live("a raised rate grants the other process's waiters earlier, a lowered one later, never a failure", () => {
    const prefix = freshPrefix()
    return Effect.gen(function*() {
      const one = (yield* process_(prefix)).coordinator
      const two = (yield* process_(prefix)).coordinator
      yield* one.registerProvider("p", { capacity: 1, refillRate: 2 })
      yield* two.registerProvider("p", { capacity: 1, refillRate: 2 })
      yield* one.setBudgetScale("p", 0.5) // 1/s
      assert.isTrue(yield* two.tryAcquire("p"))
      const start = performance.now()
      const waiter = yield* Effect.forkChild(Effect.andThen(two.acquire("p"), Effect.sync(() => performance.now())))
      yield* Effect.sleep("100 millis")
      yield* one.setBudgetScale("p", 1) // 2/s: due at ~0.55 s instead of 1 s
      const at = (yield* Fiber.join(waiter)) - start
      assert.isBelow(at, 850)
      assert.isAtLeast(at, 400)
    }).pipe(Effect.scoped, Effect.provide(redisFor(prefix)))
  }, { timeout: 30_000 })

  it.live(
    "worst-of across processes: A hard reported in one, B ok in the other → both paused; forgetting A resumes",
    () => {
      const prefix = freshPrefix()
      return Effect.gen(function*() {
        const one = yield* process_(prefix)
        const two = yield* process_(prefix)
        yield* one.coordinator.registerProvider("p", { capacity: 5, refillRate: 50 })
        yield* two.coordinator.registerProvider("p", { capacity: 5, refillRate: 50 })
        const levels = (p: typeof one) => p.levels
        yield* levels(one).report("p", "A", "hard", 0)
        yield* levels(two).report("p", "B", "ok", 1)
        for (const p of [one, two]) {
          const state = yield* p.coordinator.state("p")
          assert.deepStrictEqual([state.scale, state.pressure], [0, "hard"])
        }
        yield* levels(two).report("p", "C", "soft", 0.5)
        yield* levels(two).forget("p", "A") // process 2 never reported A: its forget leaves it
        assert.strictEqual((yield* one.coordinator.state("p")).scale, 0)
        assert.isTrue(yield* levels(two).clear("p", "A")) // an operator cleared A in process 2
        for (const p of [one, two]) {
          const state = yield* p.coordinator.state("p")
          assert.deepStrictEqual([state.scale, state.pressure, state.rate], [0.5, "soft", 25])
        }
      }).pipe(Effect.scoped, Effect.provide(redisFor(prefix)))
    },
    { timeout: 30_000 }
  )

  it.live("registering again is idempotent (no refill, no reset); every key has a TTL in one hash slot", () => {
    const prefix = freshPrefix()
    return Effect.gen(function*() {
      const redis = yield* Redis.Redis
      const first = yield* process_(prefix)
      const one = first.coordinator
      yield* one.registerProvider("p", { capacity: 2, refillRate: 1 })
      assert.isTrue(yield* one.tryAcquire("p"))
      assert.isTrue(yield* one.tryAcquire("p"))
      const two = (yield* process_(prefix)).coordinator
      yield* two.registerProvider("p", { capacity: 2, refillRate: 1 }) // a second worker starts
      assert.isFalse(yield* two.tryAcquire("p")) // the bucket was not refilled
      yield* first.levels.report("p", "A", "soft", 0.5)
      // other options from another worker: reported, and in force for every process
      const logs = captureLogs()
      yield* two.registerProvider("p", { capacity: 4, refillRate: 2 }).pipe(Effect.provide(logs.layer))
      assert.isTrue(
        logs.lines.some((line) =>
          line.level === "Warn" && line.message.includes("was registered with other options (capacity 2, 1/s)")
        )
      )
      assert.strictEqual((yield* one.state("p")).baseRate, 2)
      yield* one.setBudgetScale("p", 0.5)
      const keys = yield* redis.send<Array<string>>("KEYS", `{${prefix}:rl:*`)
      assert.deepStrictEqual([...keys].sort(), [`{${prefix}:rl:p}:b`, `{${prefix}:rl:p}:c`])
      for (const key of keys) assert.isAbove(yield* redis.send<number>("PTTL", key), 0)
    }).pipe(Effect.scoped, Effect.provide(redisFor(prefix)))
  }, { timeout: 30_000 })

  it.live("closing a coordinator's scope interrupts its waiters and gives their reservations back", () => {
    const prefix = freshPrefix()
    return Effect.gen(function*() {
      const other = (yield* process_(prefix)).coordinator
      yield* other.registerProvider("p", { capacity: 1, refillRate: 5 })
      assert.isTrue(yield* other.tryAcquire("p"))
      const scope = yield* Scope.make()
      const { coordinator: leaving } = yield* Scope.provide(process_(prefix), scope)
      yield* leaving.registerProvider("p", { capacity: 1, refillRate: 5 })
      const parked = yield* Effect.forkChild(
        Effect.forEach(Array.from({ length: 5 }), () => leaving.acquire("p"), {
          concurrency: "unbounded",
          discard: true
        }).pipe(Effect.exit)
      )
      yield* Effect.sleep("50 millis")
      yield* Scope.close(scope, Exit.void)
      const exit = yield* Fiber.join(parked)
      assert.strictEqual(exit._tag, "Failure")
      assert.strictEqual((yield* Effect.flip(leaving.acquire("p")))._tag, "CoordinatorClosed")
      // the five reservations (1 s of tokens) were given back: the next token is due within ~0.2 s
      const start = performance.now()
      yield* other.acquire("p")
      assert.isBelow(performance.now() - start, 600)
    }).pipe(Effect.scoped, Effect.provide(redisFor(prefix)))
  }, { timeout: 30_000 })

  it.live("a waiter given back in the middle of the line moves up those behind it, never those ahead", () => {
    const prefix = freshPrefix()
    return Effect.gen(function*() {
      const { coordinator } = yield* process_(prefix)
      yield* coordinator.registerProvider("p", { capacity: 1, refillRate: 5 })
      assert.isTrue(yield* coordinator.tryAcquire("p"))
      const start = performance.now()
      const at: Array<number> = []
      const fibers: Array<Fiber.Fiber<void, unknown>> = []
      for (let i = 0; i < 10; i++) {
        fibers.push(
          yield* Effect.forkChild(Effect.tap(coordinator.acquire("p"), () =>
            Effect.sync(() => {
              at[i] = performance.now() - start
            })))
        )
        yield* Effect.yieldNow
      }
      yield* Effect.sleep("60 millis")
      // waiters 5..8 (due at 1.0..1.6 s) give their tickets back
      for (const i of [4, 5, 6, 7]) yield* Fiber.interrupt(fibers[i]!)
      yield* Effect.sleep("500 millis")
      // at 5/s from an empty bucket: 2 due by 0.4 s, 3 by 0.6 s; those ahead did not move up
      assert.isAtMost(at.filter((t) => t !== undefined).length, 3, JSON.stringify(at))
      yield* Fiber.join(fibers[9]!)
      // those behind moved up by the four given back: the 10th is due at 1.2 s, not 2.0 s
      assert.isBelow(at[9]!, 1700, JSON.stringify(at))
      assert.isAbove(at[9]!, 1000, JSON.stringify(at))
    }).pipe(Effect.scoped, Effect.provide(redisFor(prefix)))
  }, { timeout: 30_000 })

  it.live("a level that is not a level is ignored, never stored (it would break the worst-of for everyone)", () => {
    const prefix = freshPrefix()
    return Effect.gen(function*() {
      const p = yield* process_(prefix)
      yield* p.coordinator.registerProvider("p", { capacity: 5, refillRate: 50 })
      yield* p.levels.report("p", "A", "loud" as never, 0)
      yield* p.levels.report("p", "B", "soft", Number.NaN)
      assert.strictEqual((yield* p.coordinator.state("p")).scale, 1)
      yield* p.levels.report("p", "A", "hard", 0)
      assert.strictEqual((yield* p.coordinator.state("p")).scale, 0)
    }).pipe(Effect.scoped, Effect.provide(redisFor(prefix)))
  }, { timeout: 30_000 })

  it.live("options that cannot work fail the layer with InvalidRedisOptions naming them", () =>
    Effect.gen(function*() {
      for (
        const [options, option] of [
          [{ onUnavailable: "bogus" as never }, "onUnavailable"],
          [{ onUnavailable: { local: 0 } }, "onUnavailable"],
          [{ onUnavailable: { local: 1.5 } }, "onUnavailable"],
          [{ timeout: -1 }, "timeout"],
          [{ keyTtl: 0 }, "keyTtl"]
        ] as const
      ) {
        const error = yield* Effect.flip(
          Layer.build(
            RateCoordinator.layerRedis(options).pipe(Layer.provide(NodeRedis.layer({ url, disableOfflineQueue: true })))
          ).pipe(Effect.scoped)
        )
        assert.strictEqual(error._tag, "InvalidRedisOptions")
        assert.include(error.message, option)
      }
    }), { timeout: 30_000 })
})
