/**
 * The errors of rate control. Each names the provider and says what to do.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"

/**
 * The provider was never registered with this coordinator.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownProvider extends Data.TaggedError("UnknownProvider")<{
  readonly provider: string
}> {
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
  readonly provider: string
  readonly tokens: number
  readonly capacity: number
}> {
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
  readonly provider: string
  readonly tokens: number
}> {
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
  readonly provider: string
  /** Seconds until the cooldown ends. */
  readonly remainingSec: number
}> {
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
  readonly provider: string
  readonly option: string
  readonly value: unknown
  readonly expected: string
}> {
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
  readonly provider: string
  readonly scale: number
}> {
  override get message(): string {
    return `provider ${JSON.stringify(this.provider)}: scale must be a finite number, got ${this.scale}`
  }
}

/**
 * A cooldown duration that is not a positive finite number of seconds. Leave
 * it out to use the provider's `cooldownSec`.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidCooldown extends Data.TaggedError("InvalidCooldown")<{
  readonly provider: string
  readonly scope: string
  readonly durationSec: number
}> {
  override get message(): string {
    return `provider ${JSON.stringify(this.provider)}: cooldown ${JSON.stringify(this.scope)} must last a positive ` +
      `finite number of seconds, got ${this.durationSec}`
  }
}

/**
 * The coordinator's scope has closed: it grants nothing any more. Build a new
 * coordinator (or keep its layer's scope open for as long as it is used).
 *
 * @since 0.1.0
 * @category errors
 */
export class CoordinatorClosed extends Data.TaggedError("CoordinatorClosed")<{
  readonly provider: string
}> {
  override get message(): string {
    return `provider ${JSON.stringify(this.provider)}: the rate coordinator is closed (its scope ended)`
  }
}

/**
 * The shared bucket's Redis could not be reached in time (a shared
 * coordinator with the `"fail"` policy, or a `tryAcquire` under any policy
 * but `"allow"` and local fallback). `cause` is the Redis error or timeout.
 *
 * @since 0.1.0
 * @category errors
 */
export class SharedBucketUnavailable extends Data.TaggedError("SharedBucketUnavailable")<{
  readonly provider: string
  readonly cause: unknown
}> {
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
 * @since 0.1.0
 * @category errors
 */
export class InvalidRedisOptions extends Data.TaggedError("InvalidRedisOptions")<{
  readonly option: string
  readonly value: unknown
  readonly expected: string
}> {
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
