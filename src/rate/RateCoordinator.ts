/**
 * The rate coordinator: one token bucket per provider that every call to it
 * goes through, with a first-in first-out line of waiters, a runtime scale
 * (the feedback's throttle), a circuit breaker and cooldowns. `layer` keeps
 * the buckets in this process; `layerRedis` keeps them in Redis, shared by
 * every process with the same Redis and key prefix.
 *
 * Use it in front of an API with a rate limit: register each provider once
 * (`capacity` = burst, `refillRate` = tokens/s), then `acquire` before each
 * call (it waits its turn) or `tryAcquire` (it never waits: shed or defer the
 * work), and report outcomes with `recordFailure` / `recordSuccess`. The
 * feedback handler drives `setBudgetScale` and `setGlobalPressure` through
 * `RateCoordinatorAdapter`. To bound concurrency rather than rate, use
 * Effect's `Semaphore`; for keyed quotas, Effect's `RateLimiter`.
 *
 * Gotchas:
 * - Rates are tokens per second; durations are seconds (`cooldownSec`).
 * - `acquire` and `tryAcquire` fail on an unregistered provider; the setters
 *   only log a warning.
 * - The scale is clamped to [0, 1]; 0 pauses, burst included. The pressure
 *   level is only recorded: it does not change the rate.
 * - With `layerRedis` the bucket, scale and pressure are shared; the breaker
 *   and cooldowns stay per process.
 * - A coordinator dies with its scope: parked waiters are interrupted, later
 *   acquires fail with `CoordinatorClosed`.
 *
 * @since 0.1.0
 * @module
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redis from "effect/persistence/Redis"
import type * as Scope from "effect/Scope"
import type { BackpressureLevel, InvalidPressureLevel } from "../contracts/BackpressureLevel.ts"
import { CoordinatorLevels } from "./CoordinatorLevels.ts"
import { make as makeCoordinator } from "./internal/coordinator.ts"
import { make as makeShared } from "./internal/shared.ts"
import type {
  AcquireError,
  InvalidCooldown,
  InvalidProviderOptions,
  InvalidRedisOptions,
  InvalidScale,
  UnknownProvider
} from "./RateError.ts"

/**
 * How a provider is paced. Every field is optional.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProviderOptions {
  /** Burst: the most tokens the bucket holds (a positive integer). Default 60. */
  readonly capacity?: number
  /** Base refill rate in tokens per second (positive, finite). Default 60. */
  readonly refillRate?: number
  /** Default duration of `triggerCooldown`, in seconds. Default 600. */
  readonly cooldownSec?: number
  /** Consecutive failures that open the circuit breaker (a positive integer). Default 5. */
  readonly breakerThreshold?: number
  /**
   * Seconds the breaker stays open before letting one trial call through,
   * and the longest that trial holds its slot. Default 60.
   */
  readonly breakerTimeoutSec?: number
}

/**
 * What a shared coordinator does while its Redis cannot be reached (every
 * call is bounded by `timeout`):
 *
 * - `"wait"` (default): waiters keep their place and wait, retried with a
 *   capped backoff, until Redis answers or their caller's own deadline
 *   interrupts them; `tryAcquire` fails with `SharedBucketUnavailable`.
 * - `"fail"`: `acquire` and `tryAcquire` fail at once with
 *   `SharedBucketUnavailable`.
 * - `{ local: share }`: each provider runs on a bucket of this process at
 *   `share` (0..1] of its rate and burst until Redis is back (e.g. 1/4 with
 *   four workers); `pipeline_rate_shared_degraded{provider}` is 1 meanwhile.
 * - `"allow"`: every call is granted (fail-open; an explicit choice).
 *
 * @since 0.2.0
 * @category models
 */
export type RedisUnavailablePolicy = "wait" | "fail" | "allow" | {
  /** This process's share of each provider's rate and burst while Redis is away, in (0, 1]. */
  readonly local: number
}

/**
 * Options of {@link RateCoordinator.layerRedis}.
 *
 * @since 0.2.0
 * @category models
 */
export interface RedisCoordinatorOptions {
  /** Key prefix; processes with the same Redis and prefix share their buckets. Default `"mdp"`. */
  readonly prefix?: string | undefined
  /** What to do while Redis is unavailable; default `"wait"`. */
  readonly onUnavailable?: RedisUnavailablePolicy | undefined
  /** Bound of every Redis call; default 250 ms. */
  readonly timeout?: Duration.Input | undefined
  /**
   * How long a bucket's keys outlive the last process that touched them;
   * default 10 minutes. Every live process refreshes them, so a paused
   * bucket does not expire back to full while anyone uses it.
   */
  readonly keyTtl?: Duration.Input | undefined
}

/**
 * A snapshot of one provider's pacing.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProviderState {
  /** The provider's registered name. */
  readonly provider: string
  /** Burst: the most tokens the bucket holds. */
  readonly capacity: number
  /** The registered refill rate, tokens/s. */
  readonly baseRate: number
  /** The rate in force: `baseRate × scale` (0 while paused). */
  readonly rate: number
  /**
   * The scale in force, in [0, 1]; with `layerRedis`, the smallest of the one
   * set with `setBudgetScale` and those `CoordinatorLevels` holds.
   */
  readonly scale: number
  /**
   * The last level set with `setGlobalPressure`; with `layerRedis`, the worst
   * of it and the levels `CoordinatorLevels` holds.
   */
  readonly pressure: BackpressureLevel
  /** Tokens in the bucket now (fractional). */
  readonly available: number
  /** Acquirers parked in the FIFO queue. */
  readonly waiters: number
  /** The circuit breaker: `half_open` once the open period is over, until a trial call succeeds or fails. */
  readonly circuit: "closed" | "open" | "half_open"
  /** Whether a `"global"` cooldown is running (`acquire` fails with `ProviderInCooldown`). */
  readonly inCooldown: boolean
}

/**
 * Paces provider calls with one token bucket per provider (burst =
 * `capacity`, refilled at `refillRate × scale` tokens/s, starting full), a
 * circuit breaker and cooldowns. Waiters are served first-in first-out, also
 * for weighted acquires; a rate change re-times them at once; scale 0 pauses
 * the provider completely; an interrupted waiter takes nothing. Over any
 * interval of length `t`, grants stay within `capacity + rate × t`: a late
 * timer is never credited above the capacity. Time comes only from the
 * `Clock` the coordinator is built with, so everything runs under
 * `TestClock`; Effect's own live clock is read through `performance.now()`,
 * the same monotonic time without a BigInt per read. On that live clock,
 * when a late wake-up would lose tokens (the room a waiter leaves in the
 * bucket refills in under 2 ms: always at capacity 1), the timer stops
 * sleeping 2 ms before a grant, checks the clock once per turn of the event
 * loop, and reads it without yielding for the last 50 µs: grants come within
 * microseconds of their time, at the cost of CPU while callers wait.
 *
 * A coordinator lives as long as the scope it was built in. When that scope
 * closes, waiters still parked in `acquire` are interrupted (as takers of a
 * shut-down `Queue` are), and from then on `acquire` and `tryAcquire` fail at
 * once with `CoordinatorClosed`; every other call still returns at once,
 * reading or updating state that nothing can spend any more.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { RateCoordinator } from "market-data-pipeline"
 *
 * const program = Effect.gen(function*() {
 *   const rates = yield* RateCoordinator
 *   // a burst of 2, then 4 tokens/s
 *   yield* rates.registerProvider("ibkr", { capacity: 2, refillRate: 4 })
 *   // one token per call, in arrival order: 2 at once, the third 250 ms later
 *   yield* Effect.forEach(["AAPL", "MSFT", "NVDA"], (symbol) => Effect.as(rates.acquire("ibkr"), symbol))
 *   // tryAcquire never waits: false while the bucket is empty
 *   console.log(yield* rates.tryAcquire("ibkr"))
 *   // what the feedback does under pressure: half the rate (0 would pause)
 *   yield* rates.setGlobalPressure("ibkr", "soft")
 *   yield* rates.setBudgetScale("ibkr", 0.5)
 *   const { pressure, rate } = yield* rates.state("ibkr")
 *   console.log(pressure, rate)
 *   console.log((yield* Effect.flip(rates.acquire("polygon")))._tag)
 * })
 *
 * // one process; processes sharing one limit use RateCoordinator.layerRedis
 * Effect.runPromise(program.pipe(Effect.provide(RateCoordinator.layer)))
 * // → false
 * // → soft 2
 * // → UnknownProvider
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export class RateCoordinator extends Context.Service<RateCoordinator, {
  /**
   * Registers a provider, or replaces its configuration and state (full
   * bucket, scale 1, pressure ok, breaker closed) if it exists; parked
   * waiters stay in line. With `layerRedis` the shared bucket keeps its
   * tokens, scale and pressure: a new `capacity` or `refillRate` applies to
   * every process, and the last process to register wins.
   */
  readonly registerProvider: (name: string, options?: ProviderOptions) => Effect.Effect<void, InvalidProviderOptions>
  /**
   * Waits until `tokens` (default 1) are granted, in arrival order. While the
   * breaker is half-open, only the first caller after the open period (the
   * trial call) gets in line; the others fail with `CircuitOpen` until the
   * trial's outcome is recorded or its slot lapses.
   */
  readonly acquire: (provider: string, tokens?: number) => Effect.Effect<void, AcquireError>
  /**
   * Takes `tokens` now if they are there and nobody is waiting; never waits.
   * Half-open, a granted try is the trial call.
   */
  readonly tryAcquire: (provider: string, tokens?: number) => Effect.Effect<boolean, AcquireError>
  /**
   * Sets the rate to `baseRate × scale`; the scale is clamped to [0, 1] and 0
   * pauses. A logged no-op for a provider this coordinator does not own.
   */
  readonly setBudgetScale: (provider: string, scale: number) => Effect.Effect<void, InvalidScale>
  /**
   * Records the backpressure level (a level, or a string in any case). A
   * logged no-op for a provider this coordinator does not own.
   */
  readonly setGlobalPressure: (
    provider: string,
    level: BackpressureLevel | string
  ) => Effect.Effect<void, InvalidPressureLevel>
  /**
   * A snapshot of the provider's bucket, scale, line and breaker; fails with
   * `UnknownProvider` if it was never registered. With `layerRedis` it asks
   * Redis, and reports 0 available tokens while Redis cannot be reached.
   */
  readonly state: (provider: string) => Effect.Effect<ProviderState, UnknownProvider>
  /** The registered providers, in registration order. */
  readonly providers: Effect.Effect<ReadonlyArray<string>>
  /**
   * Counts a failed provider call towards opening the circuit breaker; half-open,
   * it reopens the breaker for another `breakerTimeoutSec`.
   */
  readonly recordFailure: (provider: string) => Effect.Effect<void>
  /**
   * A successful call: resets the failure count and closes a half-open breaker.
   * A trial call that never reports holds its slot for `breakerTimeoutSec`,
   * then the next caller becomes the trial: the breaker cannot stay wedged.
   */
  readonly recordSuccess: (provider: string) => Effect.Effect<void>
  /**
   * Starts a cooldown of `scope` lasting `durationSec` (default: the
   * provider's `cooldownSec`) and returns at once. Scope `"global"` makes
   * `acquire` fail until the deadline. A duration that is not a positive
   * finite number fails with `InvalidCooldown`.
   */
  readonly triggerCooldown: (
    provider: string,
    scope: string,
    durationSec?: number
  ) => Effect.Effect<void, InvalidCooldown>
}>()("market-data-pipeline/RateCoordinator") {
  /**
   * Builds an in-memory coordinator. Its timers run in the given scope, and
   * its metrics (`pipeline_rate_*`, `pipeline_backpressure_state`) register in
   * the `Metric.MetricRegistry` of the context it is built in, until the
   * scope closes. Closing the scope interrupts parked waiters; later
   * acquires fail with `CoordinatorClosed`.
   *
   * @since 0.1.0
   * @category constructors
   */
  static readonly make: Effect.Effect<RateCoordinator["Service"], never, Scope.Scope> = makeCoordinator

  /**
   * The in-memory `RateCoordinator`: buckets of this process only. It reads
   * the `Clock` it is built with, so under `TestClock` waits move with
   * `TestClock.adjust`.
   *
   * @example
   * ```ts
   * import { Effect, Fiber } from "effect"
   * import { TestClock } from "effect/testing"
   * import { RateCoordinator } from "market-data-pipeline"
   *
   * const program = Effect.gen(function*() {
   *   const rates = yield* RateCoordinator
   *   yield* rates.registerProvider("ibkr", { capacity: 1, refillRate: 2 })
   *   yield* rates.acquire("ibkr")
   *   const next = yield* Effect.forkChild(rates.acquire("ibkr"))
   *   yield* TestClock.adjust("250 millis")
   *   console.log((yield* rates.state("ibkr")).waiters)
   *   yield* TestClock.adjust("250 millis")
   *   yield* Fiber.join(next)
   *   console.log("granted after 500 ms")
   * })
   *
   * Effect.runPromise(program.pipe(Effect.provide(RateCoordinator.layer), Effect.provide(TestClock.layer())))
   * // → 1
   * // → granted after 500 ms
   * ```
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly layer: Layer.Layer<RateCoordinator> = Layer.effect(RateCoordinator, RateCoordinator.make)

  /**
   * A `RateCoordinator` whose buckets live in Redis, shared by every process
   * that uses the same Redis and `prefix`: together they are granted what
   * one bucket grants (burst + rate, on Redis `TIME`), waiters are timed from
   * Redis' answers and re-timed by any process's change of scale or
   * pressure, and scale 0 pauses every process. It also provides
   * `CoordinatorLevels`, so the feedback handler's worst-of spans every
   * process. The circuit breaker and cooldowns stay per process. Requires
   * Effect's `Redis` service, e.g. `NodeRedis.layer({ url, disableOfflineQueue: true })`
   * from `@effect/platform-node` (turn the offline queue off, or a dead link
   * queues calls instead of failing them).
   *
   * @example
   * ```ts
   * import * as NodeRedis from "@effect/platform-node/NodeRedis"
   * import { Context, Effect, Layer } from "effect"
   * import { RateCoordinator } from "market-data-pipeline"
   *
   * // each call builds one process's coordinator; the same prefix shares the buckets
   * const shared = () => RateCoordinator.layerRedis({ prefix: `example-${process.pid}`, keyTtl: "10 seconds" })
   *
   * const program = Effect.gen(function*() {
   *   const a = Context.get(yield* Layer.build(shared()), RateCoordinator)
   *   const b = Context.get(yield* Layer.build(shared()), RateCoordinator)
   *   yield* a.registerProvider("ibkr", { capacity: 3, refillRate: 1 })
   *   yield* b.registerProvider("ibkr", { capacity: 3, refillRate: 1 })
   *   console.log(yield* a.tryAcquire("ibkr", 2))
   *   // b sees what a took: 1 token left for everyone
   *   console.log(yield* b.tryAcquire("ibkr", 2), yield* b.tryAcquire("ibkr", 1))
   * })
   *
   * Effect.runPromise(program.pipe(
   *   Effect.scoped,
   *   Effect.provide(NodeRedis.layer({ url: "redis://127.0.0.1:6379", disableOfflineQueue: true }))
   * ))
   * // → true
   * // → false true
   * ```
   *
   * @since 0.2.0
   * @category layers
   */
  static readonly layerRedis = (
    options?: RedisCoordinatorOptions
  ): Layer.Layer<RateCoordinator | CoordinatorLevels, InvalidRedisOptions, Redis.Redis> =>
    Layer.effectContext(Effect.map(
      makeShared(options),
      ([coordinator, levels]) => Context.make(RateCoordinator, coordinator).pipe(Context.add(CoordinatorLevels, levels))
    ))
}
