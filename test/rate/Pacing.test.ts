import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Exit, Fiber, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"
import { RateCoordinator } from "market-data-pipeline"
import { RESOLUTION_SEC } from "../../src/rate/internal/bucket.ts"

/**
 * A clock whose timers fire late by the next of `lateness` (ms, cycled), as
 * Node's do under load: a coordinator that credits a late wake-up beyond the
 * bucket's capacity then grants a burst the provider never allowed.
 */
const lateClock = (clock: Clock.Clock, lateness: ReadonlyArray<number>): Clock.Clock => {
  let next = 0
  return {
    currentTimeMillisUnsafe: () => clock.currentTimeMillisUnsafe(),
    currentTimeMillis: clock.currentTimeMillis,
    currentTimeNanosUnsafe: () => clock.currentTimeNanosUnsafe(),
    currentTimeNanos: clock.currentTimeNanos,
    monotonicTimeNanosUnsafe: () => clock.monotonicTimeNanosUnsafe(),
    monotonicTimeNanos: clock.monotonicTimeNanos,
    sleep: (duration) => {
      const late = lateness.length === 0 ? 0 : lateness[next++ % lateness.length]!
      return clock.sleep(Duration.sum(duration, Duration.millis(late)))
    }
  }
}

const Step = Schema.Union([
  Schema.Struct({ acquire: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 3 })) }),
  Schema.Struct({ tryAcquire: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 3 })) }),
  Schema.Struct({ advance: Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 40 })) }),
  Schema.Struct({ scale: Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 })) }),
  Schema.Struct({ interrupt: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 20 })) })
])

/**
 * The largest amount by which the grants in some interval [t_i, t_j] exceed
 * what a bucket allows: `capacity + rate × (t_j − t_i)`, with the microsecond
 * of slack a grant may come early (`RESOLUTION_SEC`, its debt carried over).
 */
const largestExcess = (
  grants: ReadonlyArray<{ readonly at: number; readonly tokens: number }>,
  capacity: number,
  rate: number
) => {
  const sorted = [...grants].sort((a, b) => a.at - b.at)
  let excess = -Infinity
  for (let i = 0; i < sorted.length; i++) {
    let tokens = 0
    for (let j = i; j < sorted.length; j++) {
      tokens += sorted[j]!.tokens
      const allowed = capacity + rate * (sorted[j]!.at - sorted[i]!.at + 2 * RESOLUTION_SEC)
      excess = Math.max(excess, tokens - allowed)
    }
  }
  return excess
}

describe("pacing: never more than the bucket allows", () => {
  it.effect.prop(
    "over any interval of length t, grants ≤ capacity + rate × t, with timers firing late, scales, tries and interruptions",
    {
      capacity: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 4 })),
      rate: Schema.Literals([1, 7, 29, 100, 1000]),
      lateness: Schema.Array(Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 30 }))),
      steps: Schema.Array(Step)
    },
    ({ capacity, lateness, rate, steps }) =>
      Effect.gen(function*() {
        const clock = yield* Clock.Clock
        const coordinator = yield* RateCoordinator.make.pipe(
          Effect.provideService(Clock.Clock, lateClock(clock, lateness))
        )
        yield* coordinator.registerProvider("p", { capacity, refillRate: rate })
        const grants: Array<{ at: number; tokens: number }> = []
        const granted = (tokens: number) =>
          Effect.sync(() => grants.push({ at: Number(clock.monotonicTimeNanosUnsafe()) / 1e9, tokens }))
        const waiters: Array<Fiber.Fiber<unknown, unknown>> = []
        for (const step of steps) {
          if ("acquire" in step) {
            const tokens = Math.min(step.acquire, capacity)
            waiters.push(
              yield* coordinator.acquire("p", tokens).pipe(Effect.andThen(granted(tokens)), Effect.forkChild)
            )
          } else if ("tryAcquire" in step) {
            const tokens = Math.min(step.tryAcquire, capacity)
            if (yield* coordinator.tryAcquire("p", tokens)) yield* granted(tokens)
          } else if ("advance" in step) {
            yield* TestClock.adjust(Duration.millis(step.advance))
          } else if ("scale" in step) {
            yield* coordinator.setBudgetScale("p", step.scale)
          } else {
            const waiter = waiters[step.interrupt % Math.max(1, waiters.length)]
            if (waiter !== undefined) yield* Fiber.interrupt(waiter)
          }
          yield* Effect.yieldNow
        }
        // let whatever is still parked be served, at full rate
        yield* coordinator.setBudgetScale("p", 1)
        yield* TestClock.adjust("30 seconds")
        const excess = largestExcess(grants, capacity, rate)
        assert.isAtMost(excess, 1e-9, `grants ${JSON.stringify(grants)}`)
      }),
    { arbitrary: { size: 40, runs: 200 } }
  )
})

describe("late timers and interruption", () => {
  it.effect("a waiter granted while it parks, then interrupted by an earlier waiter's continuation, gives its token back", () =>
    Effect.gen(function*() {
      const clock = yield* Clock.Clock
      // timers a second late: tokens pile up while the first waiter's timer still sleeps
      const coordinator = yield* RateCoordinator.make.pipe(Effect.provideService(Clock.Clock, lateClock(clock, [1000])))
      yield* coordinator.registerProvider("p", { capacity: 2, refillRate: 10 })
      while (yield* coordinator.tryAcquire("p")) {
        // empty the burst
      }
      const second: { fiber?: Fiber.Fiber<void, unknown> } = {}
      // the first waiter, once granted, interrupts the second at once
      const first = yield* coordinator.acquire("p").pipe(
        Effect.andThen(Effect.sync(() => second.fiber?.interruptUnsafe())),
        Effect.forkChild
      )
      yield* Effect.yieldNow
      yield* TestClock.adjust("500 millis") // both tokens back; the timer sleeps on
      second.fiber = yield* Effect.forkChild(coordinator.acquire("p"), { startImmediately: false })
      // its registration grants both: the first resumes and interrupts it
      yield* Fiber.join(first)
      assert.isTrue(Exit.hasInterrupts(yield* Fiber.await(second.fiber)))
      const state = yield* coordinator.state("p")
      assert.strictEqual(state.waiters, 0)
      assert.closeTo(state.available, 1, 1e-6) // the second's token is back in the bucket
    }))
})

describe("pacing on Effect's live clock (no timing asserted)", () => {
  it.live("capacity 1 at 2000/s: the precise wait serves every waiter in order through a pause, and ends with the scope", () =>
    Effect.gen(function*() {
      const order: Array<number> = []
      const scope = yield* Scope.make()
      const coordinator = yield* Scope.provide(RateCoordinator.make, scope)
      yield* coordinator.registerProvider("p", { capacity: 1, refillRate: 2000 })
      const fibers = yield* Effect.forEach(
        Array.from({ length: 40 }, (_, i) => i),
        (i) => Effect.forkChild(Effect.andThen(coordinator.acquire("p"), Effect.sync(() => order.push(i)))),
        { concurrency: 1 }
      )
      // re-timed while the timer waits turn by turn: a pause, then full rate again
      yield* coordinator.setBudgetScale("p", 0)
      yield* coordinator.setBudgetScale("p", 1)
      yield* Fiber.joinAll(fibers)
      assert.deepStrictEqual(order, Array.from({ length: 40 }, (_, i) => i))
      // a waiter still parked when the scope closes is interrupted (its token is 0.5 s away: surely parked)
      yield* coordinator.registerProvider("p", { capacity: 1, refillRate: 2 })
      assert.isTrue(yield* coordinator.tryAcquire("p"))
      const parked = yield* Effect.forkChild(coordinator.acquire("p"))
      while ((yield* coordinator.state("p")).waiters === 0) yield* Effect.yieldNow
      yield* Scope.close(scope, Exit.void)
      assert.isTrue(Exit.hasInterrupts(yield* Fiber.await(parked)))
    }))
})
