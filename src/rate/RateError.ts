/**
 * The typed errors of rate control: what `RateCoordinator`'s operations and
 * layers fail with, one `Data.TaggedError` per cause. Each names the provider
 * (or the option) it is about, and its `message` says what went wrong in
 * words an operator can act on.
 *
 * Handle them by `_tag` (`Effect.catchTag("CircuitOpen", …)`);
 * {@link AcquireError} is the union `acquire` and `tryAcquire` fail with. The
 * other errors come from configuration calls and are bugs or bad settings
 * rather than load.
 *
 * Gotchas:
 * - Times are fractional seconds on the coordinator's `Clock`
 *   (`retryAfterSec`, `remainingSec`), not milliseconds.
 * - `ExceedsCapacity` and `InvalidTokenCount` fail at once and never succeed
 *   on retry; `CircuitOpen` and `ProviderInCooldown` are worth retrying after
 *   their delay; `CoordinatorClosed` is final for that coordinator.
 * - A waiter already parked in `acquire` also fails with `CircuitOpen` or
 *   `ProviderInCooldown` when the breaker opens or a global cooldown starts.
 * - `SharedBucketUnavailable` and `InvalidRedisOptions` only come from
 *   `RateCoordinator.layerRedis`.
 *
 * @since 0.1.0
 * @module
 */
import * as Data from "effect/Data"

/**
 * The provider was never registered with this coordinator.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownProvider extends Data.TaggedError("UnknownProvider")<{
  /** The provider name as passed to the call. */
  readonly provider: string
}> {
  /** Reads, for example, `provider "x" is not registered`. */
  override get message(): string {
    return `provider ${JSON.stringify(this.provider)} is not registered`
  }
}

/**
 * More tokens were asked for at once than the bucket can ever hold: the
 * request could never be granted, so it fails at once instead of waiting.
 *
 * @since 0.1.0
 * @category errors
 */
export class ExceedsCapacity extends Data.TaggedError("ExceedsCapacity")<{
  /** The provider name as passed to the call. */
  readonly provider: string
  /** The tokens asked for in one call. */
  readonly tokens: number
  /** The provider's burst: the most tokens its bucket ever holds. */
  readonly capacity: number
}> {
  /** Reads, for example, `provider "x": 5 tokens requested, capacity is 2`. */
  override get message(): string {
    return `provider ${JSON.stringify(this.provider)}: ${this.tokens} tokens requested, capacity is ${this.capacity}`
  }
}

/**
 * A token count that is not a positive integer.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidTokenCount extends Data.TaggedError("InvalidTokenCount")<{
  /** The provider name as passed to the call. */
  readonly provider: string
  /** The count given: zero, negative, fractional or not a safe integer. */
  readonly tokens: number
}> {
  /** Reads, for example, `provider "x": token count must be a positive integer, got 0`. */
  override get message(): string {
    return `provider ${JSON.stringify(this.provider)}: token count must be a positive integer, got ${this.tokens}`
  }
}

/**
 * The provider's circuit breaker is open after repeated failures.
 *
 * @since 0.1.0
 * @category errors
 */
export class CircuitOpen extends Data.TaggedError("CircuitOpen")<{
  /** The provider whose breaker is open. */
  readonly provider: string
  /**
   * Seconds until the breaker lets a trial call through: the end of the open
   * period, or, while a trial is in flight, the moment its slot lapses (the
   * breaker may close sooner, when the trial succeeds).
   */
  readonly retryAfterSec: number
  /** The breaker is half-open and its one trial call is in flight. */
  readonly probing: boolean
}> {
  /**
   * Reads, for example, `circuit open for provider "x", retry in 12.500 s`,
   * or says the trial call is in flight while half-open.
   */
  override get message(): string {
    const provider = JSON.stringify(this.provider)
    const retry = `retry in ${this.retryAfterSec.toFixed(3)} s`
    return this.probing
      ? `circuit half-open for provider ${provider}: its trial call is in flight, ${retry} at the latest`
      : `circuit open for provider ${provider}, ${retry}`
  }
}

/**
 * The provider is in a global cooldown (for example after a pacing violation).
 *
 * @since 0.1.0
 * @category errors
 */
export class ProviderInCooldown extends Data.TaggedError("ProviderInCooldown")<{
  /** The provider in a global cooldown. */
  readonly provider: string
  /** Seconds until the cooldown ends. */
  readonly remainingSec: number
}> {
  /** Reads, for example, `provider "x" is in cooldown for 42.000 s`. */
  override get message(): string {
    return `provider ${JSON.stringify(this.provider)} is in cooldown for ${this.remainingSec.toFixed(3)} s`
  }
}

/**
 * Provider options that cannot describe a token bucket.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidProviderOptions extends Data.TaggedError("InvalidProviderOptions")<{
  /** The provider being registered. */
  readonly provider: string
  /** The `ProviderOptions` field at fault, such as `"capacity"`. */
  readonly option: string
  /** The value given for it. */
  readonly value: unknown
  /** What it must be, such as `"a positive integer"`. */
  readonly expected: string
}> {
  /** Reads, for example, `provider "x": capacity must be a positive integer, got 0`. */
  override get message(): string {
    return `provider ${JSON.stringify(this.provider)}: ${this.option} must be ${this.expected}, got ${
      String(this.value)
    }`
  }
}

/**
 * A scale that is not a finite number.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidScale extends Data.TaggedError("InvalidScale")<{
  /** The provider whose scale was set. */
  readonly provider: string
  /** The value given: `NaN` or infinite (finite values are clamped to [0, 1], not refused). */
  readonly scale: number
}> {
  /** Reads, for example, `provider "x": scale must be a finite number, got NaN`. */
  override get message(): string {
    return `provider ${JSON.stringify(this.provider)}: scale must be a finite number, got ${this.scale}`
  }
}

/**
 * A cooldown duration that is not a positive finite number of seconds. Leave
 * it out to use the provider's `cooldownSec`.
 *
 * @since 0.2.0
 * @category errors
 */
export class InvalidCooldown extends Data.TaggedError("InvalidCooldown")<{
  /** The provider the cooldown was for. */
  readonly provider: string
  /** The cooldown scope asked for, such as `"global"`. */
  readonly scope: string
  /** The duration given, in seconds. */
  readonly durationSec: number
}> {
  /** Reads, for example, `provider "x": cooldown "global" must last a positive finite number of seconds, got 0`. */
  override get message(): string {
    return `provider ${JSON.stringify(this.provider)}: cooldown ${JSON.stringify(this.scope)} must last a positive ` +
      `finite number of seconds, got ${this.durationSec}`
  }
}

/**
 * The coordinator's scope has closed: it grants nothing any more. Build a new
 * coordinator (or keep its layer's scope open for as long as it is used).
 *
 * @since 0.2.0
 * @category errors
 */
export class CoordinatorClosed extends Data.TaggedError("CoordinatorClosed")<{
  /** The provider the refused call named. */
  readonly provider: string
}> {
  /** Reads, for example, `provider "x": the rate coordinator is closed (its scope ended)`. */
  override get message(): string {
    return `provider ${JSON.stringify(this.provider)}: the rate coordinator is closed (its scope ended)`
  }
}

/**
 * The shared bucket's Redis could not be reached in time (a shared
 * coordinator with the `"fail"` policy, or a `tryAcquire` under any policy
 * but `"allow"` and local fallback). `cause` is the Redis error or timeout.
 *
 * @since 0.2.0
 * @category errors
 */
export class SharedBucketUnavailable extends Data.TaggedError("SharedBucketUnavailable")<{
  /** The provider whose shared bucket could not be reached. */
  readonly provider: string
  /** The `RedisError` the call failed with, or the `TimeoutError` of the layer's `timeout`. */
  readonly cause: unknown
}> {
  /** Reads `provider "x": the shared bucket's Redis is unavailable (…)`, with the cause's message. */
  override get message(): string {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `provider ${JSON.stringify(this.provider)}: the shared bucket's Redis is unavailable (${cause})`
  }
}

/**
 * Options of `RateCoordinator.layerRedis` that cannot work: an unknown
 * `onUnavailable` policy, a local share outside (0, 1], a timeout or key TTL
 * that is not a positive duration.
 *
 * @since 0.2.0
 * @category errors
 */
export class InvalidRedisOptions extends Data.TaggedError("InvalidRedisOptions")<{
  /** The `RedisCoordinatorOptions` field at fault: `onUnavailable`, `timeout` or `keyTtl`. */
  readonly option: string
  /** The value given for it. */
  readonly value: unknown
  /** What it must be, such as `"a positive duration"`. */
  readonly expected: string
}> {
  /** Reads, for example, `RateCoordinator.layerRedis option timeout must be a positive duration, got 0`. */
  override get message(): string {
    return `RateCoordinator.layerRedis option ${this.option} must be ${this.expected}, got ${
      typeof this.value === "object" ? JSON.stringify(this.value) : String(this.value)
    }`
  }
}

/**
 * Why an `acquire` or `tryAcquire` failed.
 *
 * @since 0.1.0
 * @category errors
 */
export type AcquireError =
  | UnknownProvider
  | ExceedsCapacity
  | InvalidTokenCount
  | CircuitOpen
  | ProviderInCooldown
  | CoordinatorClosed
  | SharedBucketUnavailable
