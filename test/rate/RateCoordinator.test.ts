import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Exit, Fiber, Logger, Metric, References, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"
import { type AcquireError, type CircuitOpen, type ProviderOptions, RateCoordinator } from "market-data-pipeline"

const withCoordinator = <A, E>(effect: Effect.Effect<A, E, RateCoordinator>) =>
  Effect.provide(effect, RateCoordinator.layer)

/** Forks an acquire that records the virtual time (ms) it was granted at; lets it reach the queue. */
const acquireAt = (provider: string, tokens: number, log: Array<[string, number]>, label: string) =>
  Effect.gen(function*() {
    const coordinator = yield* RateCoordinator
    const fiber = yield* coordinator.acquire(provider, tokens).pipe(
      Effect.andThen(Clock.currentTimeMillis),
      Effect.tap((ms) => Effect.sync(() => log.push([label, ms]))),
      Effect.forkChild
    )
    yield* Effect.yieldNow
    return fiber
  })

const drainBucket = (provider: string) =>
  Effect.gen(function*() {
    const coordinator = yield* RateCoordinator
    while (yield* coordinator.tryAcquire(provider)) {
      // empty the burst
    }
  })

/** Registers a provider and empties its burst; returns the coordinator. */
const drained = (provider: string, options: ProviderOptions) =>
  Effect.gen(function*() {
    const coordinator = yield* RateCoordinator
    yield* coordinator.registerProvider(provider, options)
    yield* drainBucket(provider)
    return coordinator
  })

describe("token bucket timing", () => {
  it.effect("burst then steady rate: capacity 5, rate 10/s, 7 acquires finish at 0.2 s", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* RateCoordinator
      yield* coordinator.registerProvider("p", { capacity: 5, refillRate: 10 })
      const fiber = yield* Effect.forkChild(
        Effect.gen(function*() {
          for (let i = 0; i < 7; i++) yield* coordinator.acquire("p")
          return yield* Clock.currentTimeMillis
        })
      )
      yield* TestClock.adjust("199 millis")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(yield* Fiber.join(fiber), 200)
    })))

  it.effect("FIFO: five waiters, capacity 1, rate 10/s complete at 0.1 … 0.5 s in order", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* drained("p", { capacity: 1, refillRate: 10 })
      const log: Array<[string, number]> = []
      for (const label of ["a", "b", "c", "d", "e"]) yield* acquireAt("p", 1, log, label)
      assert.strictEqual((yield* coordinator.state("p")).waiters, 5)
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(log, [["a", 100], ["b", 200], ["c", 300], ["d", 400], ["e", 500]])
    })))

  it.effect("FIFO for weighted acquires: a later small request never overtakes an earlier large one", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* drained("p", { capacity: 3, refillRate: 10 })
      const log: Array<[string, number]> = []
      yield* acquireAt("p", 3, log, "three")
      yield* acquireAt("p", 1, log, "one")
      yield* acquireAt("p", 2, log, "two")
      yield* acquireAt("p", 1, log, "one-more")
      // tryAcquire does not jump the line either, even when a token is there
      yield* TestClock.adjust("150 millis")
      assert.isFalse(yield* coordinator.tryAcquire("p"))
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(log, [["three", 300], ["one", 400], ["two", 600], ["one-more", 700]])
    })))

  it.effect("fractional rates: base 100 × scale 0.29 is 29 tokens/s, not 28", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* RateCoordinator
      yield* coordinator.registerProvider("p", { capacity: 1, refillRate: 100 })
      yield* coordinator.setBudgetScale("p", 0.29)
      const state = yield* coordinator.state("p")
      assert.closeTo(state.rate, 29, 1e-9)
      yield* drainBucket("p")
      const fiber = yield* Effect.forkChild(Effect.gen(function*() {
        for (let i = 0; i < 29; i++) yield* coordinator.acquire("p")
        return yield* Clock.currentTimeMillis
      }))
      yield* TestClock.adjust("990 millis")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("10 millis")
      assert.closeTo(yield* Fiber.join(fiber), 1000, 1e-3)
    })))

  it.effect("a rate change applies from the moment it is made, not to time already elapsed", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* drained("p", { capacity: 100, refillRate: 10 })
      yield* TestClock.adjust("1 second") // 10 tokens at 10/s
      yield* coordinator.setBudgetScale("p", 0.5)
      yield* TestClock.adjust("1 second") // 5 more at 5/s
      assert.closeTo((yield* coordinator.state("p")).available, 15, 1e-9)
    })))
})

describe("pause and re-timing", () => {
  it.effect("scale 0 pauses completely, burst included; waiters resume in order when it rises", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* RateCoordinator
      yield* coordinator.registerProvider("p", { capacity: 5, refillRate: 10 })
      yield* coordinator.setBudgetScale("p", 0)
      assert.isFalse(yield* coordinator.tryAcquire("p"))
      const log: Array<[string, number]> = []
      for (const label of ["a", "b", "c"]) yield* acquireAt("p", 2, log, label)
      yield* TestClock.adjust("1 minute")
      assert.deepStrictEqual(log, [])
      const paused = yield* coordinator.state("p")
      assert.strictEqual(paused.rate, 0)
      assert.strictEqual(paused.waiters, 3)
      assert.strictEqual(paused.available, 5) // nothing accrued, nothing spent
      yield* coordinator.setBudgetScale("p", 1)
      yield* Effect.yieldNow
      // 5 tokens were there: a and b at once; c needs 1 more token at 10/s
      assert.deepStrictEqual(log, [["a", 60_000], ["b", 60_000]])
      yield* TestClock.adjust("100 millis")
      assert.deepStrictEqual(log, [["a", 60_000], ["b", 60_000], ["c", 60_100]])
    })))

  it.effect("a raised rate grants a sleeping waiter earlier", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* RateCoordinator
      yield* coordinator.registerProvider("p", { capacity: 1, refillRate: 10 })
      yield* coordinator.setBudgetScale("p", 0.1) // 1 token/s
      yield* drainBucket("p")
      const log: Array<[string, number]> = []
      yield* acquireAt("p", 1, log, "w") // due at 1.0 s
      yield* TestClock.adjust("500 millis") // 0.5 token accrued
      yield* coordinator.setBudgetScale("p", 1) // 10/s: 0.5 token in 50 ms
      yield* TestClock.adjust("50 millis")
      assert.deepStrictEqual(log, [["w", 550]])
    })))

  it.effect("a lowered rate delays a sleeping waiter, which never fails", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* RateCoordinator
      yield* coordinator.registerProvider("p", { capacity: 1, refillRate: 10 })
      yield* coordinator.setBudgetScale("p", 0.1) // 1 token/s
      yield* drainBucket("p")
      const log: Array<[string, number]> = []
      const fiber = yield* acquireAt("p", 1, log, "w")
      yield* TestClock.adjust("500 millis")
      yield* coordinator.setBudgetScale("p", 0.05) // 0.5 token/s: 0.5 token in 1 s
      yield* TestClock.adjust("999 millis")
      assert.deepStrictEqual(log, [])
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(log, [["w", 1500]])
      yield* Fiber.join(fiber)
    })))
})

describe("interruption", () => {
  it.effect("an interrupted waiter takes nothing and does not hold up those behind it", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* drained("p", { capacity: 2, refillRate: 10 })
      const log: Array<[string, number]> = []
      const big = yield* acquireAt("p", 2, log, "big") // due at 0.2 s
      yield* acquireAt("p", 1, log, "small") // behind it
      yield* TestClock.adjust("50 millis")
      yield* Fiber.interrupt(big)
      assert.strictEqual((yield* coordinator.state("p")).waiters, 1)
      yield* TestClock.adjust("50 millis") // 1 token at 0.1 s: small goes
      assert.deepStrictEqual(log, [["small", 100]])
      const state = yield* coordinator.state("p")
      assert.strictEqual(state.waiters, 0)
      assert.closeTo(state.available, 0, 1e-9)
    })))

  it.effect("a timed-out waiter takes nothing and the next one is served on time", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* drained("p", { capacity: 1, refillRate: 10 })
      const timedOut = yield* coordinator.acquire("p").pipe(Effect.timeout("30 millis"), Effect.flip, Effect.forkChild)
      yield* Effect.yieldNow
      const log: Array<[string, number]> = []
      yield* acquireAt("p", 1, log, "next")
      yield* TestClock.adjust("100 millis")
      assert.strictEqual((yield* Fiber.join(timedOut))._tag, "TimeoutError")
      assert.deepStrictEqual(log, [["next", 100]])
    })))

  it.effect("a waiter blocked by a long pause can be interrupted and leaves no trace", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* RateCoordinator
      yield* coordinator.registerProvider("p", { capacity: 3, refillRate: 10 })
      yield* coordinator.setBudgetScale("p", 0)
      const fiber = yield* coordinator.acquire("p", 3).pipe(Effect.forkChild)
      yield* Effect.yieldNow
      yield* Fiber.interrupt(fiber)
      yield* coordinator.setBudgetScale("p", 1)
      const state = yield* coordinator.state("p")
      assert.strictEqual(state.waiters, 0)
      assert.strictEqual(state.available, 3)
    })))
})

describe("scales and providers", () => {
  it.effect("scale and pressure changes are logged at debug level, and only when debug is on", () => {
    const lines: Array<string> = []
    const logger = Logger.layer([Logger.make((options) => {
      lines.push(`${options.logLevel} ${String(Array.isArray(options.message) ? options.message[0] : options.message)}`)
    })])
    return withCoordinator(Effect.gen(function*() {
      const coordinator = yield* RateCoordinator
      yield* coordinator.registerProvider("p", { capacity: 10, refillRate: 100 })
      yield* coordinator.setBudgetScale("p", 0.5)
      yield* coordinator.setGlobalPressure("p", "soft")
      assert.deepStrictEqual(lines, [])
      yield* Effect.provideService(
        Effect.andThen(coordinator.setBudgetScale("p", 0.25), coordinator.setGlobalPressure("p", "HARD")),
        References.MinimumLogLevel,
        "Debug"
      )
      assert.deepStrictEqual(lines, [
        "Debug scaled p rate: 50 → 25 tokens/s (scale 0.25)",
        "Debug provider p backpressure: soft → hard"
      ])
    })).pipe(Effect.provide(logger))
  })

  it.effect("the reference sequence: base 100 scaled 0.5 → 50, 0.25 → 25, 1.0 → 100", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* RateCoordinator
      yield* coordinator.registerProvider("p", { capacity: 100, refillRate: 100 })
      for (const [scale, rate] of [[0.5, 50], [0.25, 25], [1.0, 100]] as const) {
        yield* coordinator.setBudgetScale("p", scale)
        const state = yield* coordinator.state("p")
        assert.strictEqual(state.rate, rate)
        assert.strictEqual(state.scale, scale)
        assert.strictEqual(state.baseRate, 100)
        assert.strictEqual(state.capacity, 100)
      }
    })))

  it.effect("scale clamps to [0, 1]; a non-finite scale is an InvalidScale error", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* RateCoordinator
      yield* coordinator.registerProvider("p", { capacity: 10, refillRate: 40 })
      yield* coordinator.setBudgetScale("p", 1.5)
      assert.strictEqual((yield* coordinator.state("p")).scale, 1)
      yield* coordinator.setBudgetScale("p", -0.5)
      assert.strictEqual((yield* coordinator.state("p")).scale, 0)
      const error = yield* Effect.flip(coordinator.setBudgetScale("p", NaN))
      assert.strictEqual(error._tag, "InvalidScale")
      assert.strictEqual((yield* Effect.flip(coordinator.setBudgetScale("p", Infinity)))._tag, "InvalidScale")
    })))

  it.prop("base rate and capacity survive any sequence of scales; rate = base × last clamped scale", {
    scales: Schema.Array(Schema.Finite.check(Schema.isBetween({ minimum: -1, maximum: 2 })))
  }, ({ scales }) =>
    Effect.runSync(withCoordinator(Effect.gen(function*() {
      const coordinator = yield* RateCoordinator
      yield* coordinator.registerProvider("p", { capacity: 7, refillRate: 33 })
      for (const scale of scales) yield* coordinator.setBudgetScale("p", scale)
      const state = yield* coordinator.state("p")
      const last = Math.min(1, Math.max(0, scales[scales.length - 1] ?? 1))
      assert.strictEqual(state.baseRate, 33)
      assert.strictEqual(state.capacity, 7)
      assert.strictEqual(state.scale, last)
      assert.strictEqual(state.rate, 33 * last)
    }))))

  it.effect("providers are independent", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* RateCoordinator
      yield* coordinator.registerProvider("a", { capacity: 2, refillRate: 10 })
      yield* coordinator.registerProvider("b", { capacity: 2, refillRate: 10 })
      yield* coordinator.setBudgetScale("a", 0)
      yield* coordinator.setGlobalPressure("a", "hard")
      assert.isFalse(yield* coordinator.tryAcquire("a"))
      assert.isTrue(yield* coordinator.tryAcquire("b"))
      const b = yield* coordinator.state("b")
      assert.strictEqual(b.scale, 1)
      assert.strictEqual(b.pressure, "ok")
      assert.deepStrictEqual(yield* coordinator.providers, ["a", "b"])
    })))

  it.effect("pressure accepts a level or a string in any case; an unknown string is a typed error", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* RateCoordinator
      yield* coordinator.registerProvider("p")
      yield* coordinator.setGlobalPressure("p", "SOFT")
      assert.strictEqual((yield* coordinator.state("p")).pressure, "soft")
      yield* coordinator.setGlobalPressure("p", "hard")
      assert.strictEqual((yield* coordinator.state("p")).pressure, "hard")
      const error = yield* Effect.flip(coordinator.setGlobalPressure("p", "critical"))
      assert.strictEqual(error._tag, "InvalidPressureLevel")
      assert.include(error.message, "critical")
    })))

  it.effect("pressure that is not a string (an untyped caller's null or number) is InvalidPressureLevel, not a defect", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* RateCoordinator
      yield* coordinator.registerProvider("p")
      for (const level of [null, 2, undefined, {}]) {
        const error = yield* Effect.flip(coordinator.setGlobalPressure("p", level as unknown as string))
        assert.strictEqual(error._tag, "InvalidPressureLevel")
        assert.strictEqual(error.input, String(level))
      }
      assert.strictEqual((yield* coordinator.state("p")).pressure, "ok")
    })))

  it.effect("scale and pressure for an unregistered provider are a no-op", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* RateCoordinator
      yield* coordinator.setBudgetScale("nobody", 0.5)
      yield* coordinator.setGlobalPressure("nobody", "hard")
      yield* coordinator.triggerCooldown("nobody", "global")
      yield* coordinator.recordFailure("nobody")
      yield* coordinator.recordSuccess("nobody")
      assert.deepStrictEqual(yield* coordinator.providers, [])
      assert.strictEqual((yield* Effect.flip(coordinator.state("nobody")))._tag, "UnknownProvider")
    })))

  it.effect("registering again replaces configuration and state", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* drained("p", { capacity: 5, refillRate: 10 })
      yield* coordinator.setBudgetScale("p", 0.5)
      yield* coordinator.setGlobalPressure("p", "soft")
      yield* coordinator.registerProvider("p", { capacity: 8, refillRate: 20 })
      const state = yield* coordinator.state("p")
      assert.deepStrictEqual(
        [state.capacity, state.baseRate, state.rate, state.scale, state.pressure, state.available],
        [8, 20, 20, 1, "ok", 8]
      )
    })))
})

describe("registering again with waiters parked", () => {
  it.effect("they keep their place; those larger than the new capacity fail with ExceedsCapacity", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* drained("p", { capacity: 3, refillRate: 10 })
      const log: Array<[string, number]> = []
      yield* acquireAt("p", 1, log, "a")
      const big = yield* Effect.forkChild(Effect.flip(coordinator.acquire("p", 3)))
      yield* acquireAt("p", 2, log, "c")
      assert.strictEqual((yield* coordinator.state("p")).waiters, 3)
      yield* coordinator.registerProvider("p", { capacity: 2, refillRate: 20 })
      const exceeds = yield* Fiber.join(big)
      assert(exceeds._tag === "ExceedsCapacity")
      assert.deepStrictEqual([exceeds.provider, exceeds.tokens, exceeds.capacity], ["p", 3, 2])
      // a full bucket of 2: a takes 1 at once, c needs 1 more at 20/s
      assert.deepStrictEqual(log, [["a", 0]])
      assert.strictEqual((yield* coordinator.state("p")).waiters, 1)
      yield* TestClock.adjust("50 millis")
      assert.deepStrictEqual(log, [["a", 0], ["c", 50]])
    })))
})

describe("errors", () => {
  it.effect("unknown provider, too many tokens, bad token counts fail at once with typed errors", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* RateCoordinator
      yield* coordinator.registerProvider("p", { capacity: 5, refillRate: 10 })
      assert.strictEqual((yield* Effect.flip(coordinator.acquire("nobody")))._tag, "UnknownProvider")
      const exceeds = yield* Effect.flip(coordinator.acquire("p", 6))
      assert.strictEqual(exceeds._tag, "ExceedsCapacity")
      assert.include(exceeds.message, "capacity is 5")
      assert.strictEqual((yield* Effect.flip(coordinator.tryAcquire("p", 6)))._tag, "ExceedsCapacity")
      assert.strictEqual((yield* Effect.flip(coordinator.acquire("p", 0)))._tag, "InvalidTokenCount")
      assert.strictEqual((yield* Effect.flip(coordinator.acquire("p", 1.5)))._tag, "InvalidTokenCount")
      assert.strictEqual(yield* Clock.currentTimeMillis, 0) // nobody waited
    })))

  it.effect("invalid provider options are rejected naming the option", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* RateCoordinator
      const cases: Array<[Parameters<typeof coordinator.registerProvider>[1], string]> = [
        [{ capacity: 0 }, "capacity"],
        [{ capacity: 2.5 }, "capacity"],
        [{ refillRate: 0 }, "refillRate"],
        [{ refillRate: NaN }, "refillRate"],
        [{ refillRate: Infinity }, "refillRate"],
        [{ cooldownSec: -1 }, "cooldownSec"],
        [{ breakerThreshold: 0 }, "breakerThreshold"],
        [{ breakerTimeoutSec: 0 }, "breakerTimeoutSec"]
      ]
      for (const [options, option] of cases) {
        const error = yield* Effect.flip(coordinator.registerProvider("p", options))
        assert.strictEqual(error._tag, "InvalidProviderOptions")
        assert.strictEqual(error.option, option)
        assert.include(error.message, option)
      }
      assert.deepStrictEqual(yield* coordinator.providers, [])
    })))
})

describe("circuit breaker and cooldown", () => {
  /** Provider "p" with a breaker of threshold 1 and timeout 10 s, tripped and waited out: half-open. */
  const halfOpen = Effect.gen(function*() {
    const coordinator = yield* RateCoordinator
    yield* coordinator.registerProvider("p", { breakerThreshold: 1, breakerTimeoutSec: 10 })
    yield* coordinator.recordFailure("p")
    yield* TestClock.adjust("10 seconds")
    return coordinator
  })

  const assertTrialInFlight: (error: AcquireError, retryAfterSec: number) => asserts error is CircuitOpen = (
    error,
    retryAfterSec
  ) => {
    assert(error._tag === "CircuitOpen")
    assert.isTrue(error.probing)
    assert.closeTo(error.retryAfterSec, retryAfterSec, 1e-9)
  }

  it.effect("the breaker opens after breakerThreshold failures and lets a trial through after its timeout", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* RateCoordinator
      yield* coordinator.registerProvider("p", { breakerThreshold: 3, breakerTimeoutSec: 10 })
      for (let i = 0; i < 2; i++) yield* coordinator.recordFailure("p")
      assert.strictEqual((yield* coordinator.state("p")).circuit, "closed")
      yield* coordinator.acquire("p")
      yield* coordinator.recordFailure("p")
      assert.strictEqual((yield* coordinator.state("p")).circuit, "open")
      const open = yield* Effect.flip(coordinator.acquire("p"))
      assert.strictEqual(open._tag, "CircuitOpen")
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual((yield* coordinator.state("p")).circuit, "half_open")
      yield* coordinator.acquire("p")
      yield* coordinator.recordSuccess("p")
      assert.strictEqual((yield* coordinator.state("p")).circuit, "closed")
    })))

  it.effect("waiters in line when the breaker opens or a global cooldown starts fail instead of slipping through", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* drained("p", { capacity: 1, refillRate: 1, breakerThreshold: 2 })
      const first = yield* Effect.forkChild(Effect.flip(coordinator.acquire("p")))
      yield* Effect.yieldNow
      yield* coordinator.recordFailure("p")
      yield* coordinator.recordFailure("p") // opens
      const opened = yield* Fiber.join(first)
      assert.strictEqual(opened._tag, "CircuitOpen")
      assert.strictEqual((yield* coordinator.state("p")).waiters, 0)

      const other = yield* drained("q", { capacity: 1, refillRate: 1 })
      const second = yield* Effect.forkChild(Effect.flip(other.acquire("q")))
      yield* Effect.yieldNow
      yield* other.triggerCooldown("q", "global", 30)
      const cooled = yield* Fiber.join(second)
      assert.strictEqual(cooled._tag, "ProviderInCooldown")
      // a cooldown of another scope leaves the line alone
      yield* drained("r", { capacity: 1, refillRate: 1 })
      const third = yield* Effect.forkChild(other.acquire("r").pipe(Effect.exit))
      yield* Effect.yieldNow
      yield* other.triggerCooldown("r", "orders", 30)
      assert.isUndefined(third.pollUnsafe())
      assert.strictEqual((yield* other.state("r")).waiters, 1)
    })))

  it.effect("half-open admits exactly one trial call; the others fail with CircuitOpen until its outcome", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* halfOpen
      yield* coordinator.acquire("p") // the trial
      const rejected = yield* Effect.flip(coordinator.acquire("p"))
      assertTrialInFlight(rejected, 10)
      assert.include(rejected.message, "trial call is in flight")
      assertTrialInFlight(yield* Effect.flip(coordinator.tryAcquire("p")), 10)
      assert.strictEqual((yield* coordinator.state("p")).circuit, "half_open")
      yield* coordinator.recordSuccess("p") // the trial succeeded: closed
      yield* coordinator.acquire("p")
      yield* coordinator.acquire("p")

      yield* coordinator.recordFailure("p")
      yield* TestClock.adjust("10 seconds")
      assert.isTrue(yield* coordinator.tryAcquire("p")) // a granted try is the trial too
      assertTrialInFlight(yield* Effect.flip(coordinator.acquire("p")), 10)
      yield* coordinator.recordFailure("p") // the trial failed: open for another 10 s
      const reopened = yield* Effect.flip(coordinator.acquire("p"))
      assert(reopened._tag === "CircuitOpen")
      assert.deepStrictEqual([reopened.probing, reopened.retryAfterSec], [false, 10])
      assert.strictEqual((yield* coordinator.state("p")).circuit, "open")
    })))

  it.effect("a trial that never reports holds its slot for breakerTimeoutSec, then the next caller is the trial", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* halfOpen
      yield* coordinator.acquire("p") // a trial whose caller never records its outcome
      yield* TestClock.adjust("9999 millis")
      assertTrialInFlight(yield* Effect.flip(coordinator.acquire("p")), 0.001)
      yield* TestClock.adjust("1 millis")
      yield* coordinator.acquire("p") // the slot lapsed: a new trial
      assertTrialInFlight(yield* Effect.flip(coordinator.acquire("p")), 10)
      yield* coordinator.recordSuccess("p")
      assert.strictEqual((yield* coordinator.state("p")).circuit, "closed")
    })))

  it.effect("a would-be trial that gets no tokens, or is interrupted while it waits, leaves the slot free", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* halfOpen
      yield* coordinator.setBudgetScale("p", 0) // nothing is granted
      assert.isFalse(yield* coordinator.tryAcquire("p")) // not granted: not the trial
      const waiting = yield* Effect.forkChild(coordinator.acquire("p")) // the trial, in line for its token
      yield* Effect.yieldNow
      assertTrialInFlight(yield* Effect.flip(coordinator.tryAcquire("p")), 10)
      yield* Fiber.interrupt(waiting) // it never made its call
      const trial = yield* Effect.forkChild(coordinator.acquire("p"))
      yield* Effect.yieldNow
      assert.strictEqual((yield* coordinator.state("p")).waiters, 1)
      assertTrialInFlight(yield* Effect.flip(coordinator.tryAcquire("p")), 10)
      yield* Fiber.interrupt(trial)
    })))

  it.effect("a failed trial in half-open reopens the breaker at once", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* RateCoordinator
      yield* coordinator.registerProvider("p", { breakerThreshold: 1, breakerTimeoutSec: 5 })
      yield* coordinator.recordFailure("p")
      yield* TestClock.adjust("5 seconds")
      yield* coordinator.recordFailure("p")
      assert.strictEqual((yield* coordinator.state("p")).circuit, "open")
    })))

  it.effect("triggerCooldown returns at once; scope global blocks acquire until its deadline", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* RateCoordinator
      yield* coordinator.registerProvider("p", { cooldownSec: 30 })
      yield* coordinator.triggerCooldown("p", "historical")
      yield* coordinator.acquire("p") // other scopes do not block
      yield* coordinator.triggerCooldown("p", "global", 5)
      assert.strictEqual(yield* Clock.currentTimeMillis, 0)
      assert.isTrue((yield* coordinator.state("p")).inCooldown)
      assert.strictEqual((yield* Effect.flip(coordinator.acquire("p")))._tag, "ProviderInCooldown")
      yield* TestClock.adjust("5 seconds")
      assert.isFalse((yield* coordinator.state("p")).inCooldown)
      yield* coordinator.acquire("p")
      yield* coordinator.triggerCooldown("p", "global") // default: cooldownSec
      yield* TestClock.adjust("29 seconds")
      assert.strictEqual((yield* Effect.flip(coordinator.acquire("p")))._tag, "ProviderInCooldown")
      yield* TestClock.adjust("1 second")
      yield* coordinator.acquire("p")
    })))

  it.effect("a cooldown of 0, a negative, NaN or Infinity seconds is an InvalidCooldown error, not the default", () =>
    withCoordinator(Effect.gen(function*() {
      const coordinator = yield* RateCoordinator
      yield* coordinator.registerProvider("p", { cooldownSec: 30 })
      for (const durationSec of [0, -5, NaN, Infinity]) {
        const error = yield* Effect.flip(coordinator.triggerCooldown("p", "global", durationSec))
        assert.strictEqual(error._tag, "InvalidCooldown")
        assert.deepStrictEqual([error.provider, error.scope], ["p", "global"])
        assert.isTrue(Object.is(error.durationSec, durationSec))
        assert.include(error.message, "\"p\"")
        assert.include(error.message, String(durationSec))
      }
      assert.isFalse((yield* coordinator.state("p")).inCooldown)
      yield* coordinator.acquire("p")
    })))
})

describe("after the scope closes", () => {
  it.effect("parked waiters are interrupted; acquire and tryAcquire then fail at once with CoordinatorClosed", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const coordinator = yield* Scope.provide(RateCoordinator.make, scope)
      yield* coordinator.registerProvider("p", { capacity: 1, refillRate: 10 })
      yield* coordinator.acquire("p")
      const parked = yield* Effect.forkChild(coordinator.acquire("p"))
      yield* Effect.yieldNow
      yield* Scope.close(scope, Exit.void)
      yield* Effect.yieldNow
      const exit = parked.pollUnsafe()
      assert.isTrue(exit !== undefined && Exit.hasInterrupts(exit))
      const later = yield* Effect.forkChild(Effect.flip(coordinator.acquire("p")))
      yield* TestClock.adjust("1 hour") // the bucket is full again: still nothing is granted
      assert.isDefined(later.pollUnsafe())
      const closed = yield* Fiber.join(later)
      assert.strictEqual(closed._tag, "CoordinatorClosed")
      assert.include(closed.message, "\"p\"")
      assert.strictEqual((yield* Effect.flip(coordinator.tryAcquire("p")))._tag, "CoordinatorClosed")
      assert.strictEqual((yield* Effect.flip(coordinator.acquire("nobody")))._tag, "CoordinatorClosed")
      // the rest still answers at once
      yield* coordinator.setBudgetScale("p", 0.5)
      assert.strictEqual((yield* coordinator.state("p")).waiters, 0)
    }))

  it.effect("a coordinator used outside its scope fails at once instead of hanging", () =>
    Effect.gen(function*() {
      const coordinator = yield* Effect.scoped(Effect.gen(function*() {
        const coordinator = yield* RateCoordinator.make
        yield* coordinator.registerProvider("p", { capacity: 1, refillRate: 10 })
        yield* coordinator.acquire("p") // drained
        return coordinator
      }))
      const fiber = yield* Effect.forkChild(Effect.flip(coordinator.acquire("p")))
      yield* TestClock.adjust("1 minute")
      assert.isDefined(fiber.pollUnsafe())
      assert.strictEqual((yield* Fiber.join(fiber))._tag, "CoordinatorClosed")
      assert.strictEqual((yield* Effect.flip(coordinator.tryAcquire("p")))._tag, "CoordinatorClosed")
    }))
})

describe("metrics", () => {
  const values = Effect.map(
    Metric.snapshot,
    (snapshots) =>
      Object.fromEntries(snapshots.map((s) => [`${s.id}{${s.attributes?.provider ?? ""}}`, s.state as any]))
  )

  /** Runs with a coordinator reporting into a registry of its own. */
  const metered = <A, E>(effect: Effect.Effect<A, E, RateCoordinator>) =>
    Effect.provideService(withCoordinator(effect), Metric.MetricRegistry, new Map())

  /** Registers a provider and pauses it: every acquire waits. */
  const paused = (provider: string, options: ProviderOptions) =>
    Effect.gen(function*() {
      const coordinator = yield* RateCoordinator
      yield* coordinator.registerProvider(provider, options)
      yield* coordinator.setBudgetScale(provider, 0)
      return coordinator
    })

  it.effect("each coordinator reports its own providers in its own registry", () =>
    Effect.gen(function*() {
      const first = yield* metered(Effect.gen(function*() {
        const coordinator = yield* RateCoordinator
        yield* coordinator.registerProvider("ibkr", { capacity: 2, refillRate: 10 })
        yield* coordinator.acquire("ibkr")
        yield* coordinator.acquire("ibkr")
        const waiter = yield* Effect.forkChild(coordinator.acquire("ibkr"))
        yield* Effect.yieldNow
        const during = yield* values
        yield* TestClock.adjust("100 millis")
        yield* Fiber.join(waiter)
        yield* coordinator.setBudgetScale("ibkr", 0.5)
        yield* coordinator.setGlobalPressure("ibkr", "soft")
        return { during, after: yield* values }
      }))
      assert.strictEqual(first.during["pipeline_rate_waiters{ibkr}"].value, 1)
      assert.strictEqual(first.after["pipeline_rate_waiters{ibkr}"].value, 0)
      assert.strictEqual(first.after["pipeline_rate_scale_factor{ibkr}"].value, 0.5)
      assert.strictEqual(first.after["pipeline_backpressure_state{ibkr}"].value, 1)
      assert.strictEqual(first.after["pipeline_rate_tokens_granted_total{ibkr}"].count, 3)
      const wait = first.after["pipeline_rate_wait_seconds{ibkr}"]
      assert.strictEqual(wait.count, 3)
      assert.closeTo(wait.sum, 0.1, 1e-9)
      assert.deepStrictEqual(wait.buckets.slice(0, 6).map(([, n]: [number, number]) => n), [2, 2, 2, 2, 2, 3])

      const second = yield* metered(Effect.gen(function*() {
        const coordinator = yield* RateCoordinator
        yield* coordinator.registerProvider("ibkr")
        const registered = yield* values
        yield* coordinator.tryAcquire("ibkr")
        return { registered, used: yield* values }
      }))
      // series appear when a provider is first used or adjusted, not at registration
      assert.deepStrictEqual(second.registered, {})
      assert.strictEqual(second.used["pipeline_rate_scale_factor{ibkr}"].value, 1)
      assert.strictEqual(second.used["pipeline_rate_tokens_granted_total{ibkr}"].count, 1)
    }))

  it.effect("base and current rate: base 100 at scale 0.5 scrapes 100 and 50", () =>
    Effect.gen(function*() {
      const scraped = yield* metered(Effect.gen(function*() {
        const coordinator = yield* RateCoordinator
        yield* coordinator.registerProvider("ibkr", { refillRate: 100 })
        yield* coordinator.setBudgetScale("ibkr", 0.5)
        const half = yield* values
        yield* coordinator.setBudgetScale("ibkr", 0)
        return { half, paused: yield* values }
      }))
      assert.strictEqual(scraped.half["pipeline_rate_base_tokens_per_second{ibkr}"].value, 100)
      assert.strictEqual(scraped.half["pipeline_rate_tokens_per_second{ibkr}"].value, 50)
      assert.strictEqual(scraped.paused["pipeline_rate_base_tokens_per_second{ibkr}"].value, 100)
      assert.strictEqual(scraped.paused["pipeline_rate_tokens_per_second{ibkr}"].value, 0)
    }))

  it.effect("pipeline_rate_wait_seconds reports the shortest wait as min, 0 once a grant was immediate", () =>
    metered(Effect.gen(function*() {
      const coordinator = yield* paused("p", { capacity: 1, refillRate: 10 })
      const log: Array<[string, number]> = []
      yield* acquireAt("p", 1, log, "a")
      yield* TestClock.adjust("50 millis")
      yield* acquireAt("p", 1, log, "b")
      yield* TestClock.adjust("150 millis")
      yield* coordinator.setBudgetScale("p", 1) // a waited 0.2 s; b gets its token at 0.3 s, after 0.25 s
      yield* TestClock.adjust("100 millis")
      assert.deepStrictEqual(log, [["a", 200], ["b", 300]])
      const waited = (yield* values)["pipeline_rate_wait_seconds{p}"]
      assert.strictEqual(waited.count, 2)
      assert.closeTo(waited.min, 0.2, 1e-9) // not the mean, 0.225
      assert.closeTo(waited.max, 0.25, 1e-9)
      yield* TestClock.adjust("1 second")
      yield* coordinator.acquire("p")
      assert.strictEqual((yield* values)["pipeline_rate_wait_seconds{p}"].min, 0)
    })))

  it.effect("tokens given back by a granted waiter interrupted before it resumed count as returned, never ungranted", () =>
    metered(Effect.gen(function*() {
      const coordinator = yield* paused("p", { capacity: 2, refillRate: 10 })
      // both are granted together; the race interrupts the loser before it resumes
      const race = yield* Effect.forkChild(Effect.raceFirst(coordinator.acquire("p"), coordinator.acquire("p")))
      yield* Effect.yieldNow
      yield* coordinator.setBudgetScale("p", 1)
      yield* Fiber.join(race)
      const after = yield* values
      assert.strictEqual(after["pipeline_rate_tokens_granted_total{p}"].count, 2)
      assert.strictEqual(after["pipeline_rate_tokens_returned_total{p}"].count, 1)
      assert.strictEqual((yield* coordinator.state("p")).available, 1)
    })))

  it.effect("closing the coordinator's scope removes its series", () =>
    Effect.gen(function*() {
      const registry = new Map()
      yield* Effect.provideService(
        withCoordinator(Effect.gen(function*() {
          yield* (yield* RateCoordinator).registerProvider("ibkr")
          yield* (yield* RateCoordinator).setBudgetScale("ibkr", 0.5)
          assert.isAbove((yield* Metric.snapshot).length, 0)
        })),
        Metric.MetricRegistry,
        registry
      )
      assert.strictEqual(registry.size, 0)
    }))
})
