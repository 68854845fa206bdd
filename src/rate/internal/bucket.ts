/**
 * One provider's token bucket, its FIFO of parked waiters, circuit breaker
 * and cooldowns. Everything here is synchronous: a call runs to completion
 * without yielding, so each operation is atomic with respect to fibers. The
 * coordinator calls these from `Effect.sync` blocks and drives the timer.
 *
 * @internal
 */
import type * as Deferred from "effect/Deferred"
import type { BackpressureLevel } from "../../contracts/BackpressureLevel.ts"
import type { ExceedsCapacity } from "../RateError.ts"

/**
 * Deadlines are computed to the microsecond, so a waiter whose tokens will
 * accrue within a microsecond counts as served: float error in `rate ×
 * elapsed` can then never leave it sleeping for ever shorter intervals.
 *
 * @internal
 */
export const RESOLUTION_SEC = 1e-6

const enough = (b: Bucket, tokens: number): boolean => b.tokens + b.rate * RESOLUTION_SEC + 1e-12 >= tokens

/**
 * Timers fire late. While waiters are parked the bucket may hold this much
 * above its capacity, so a late wake-up is credited to the next waiter
 * instead of being lost; the long-run rate stays exact and a burst never
 * exceeds capacity + 1 token.
 *
 * @internal
 */
export const LATENESS_CREDIT = 1

/** Upper bounds, in seconds, of the wait-time histogram buckets. @internal */
export const WAIT_BOUNDARIES: ReadonlyArray<number> = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** @internal */
export const Status = { Waiting: 0, Granted: 1, Cancelled: 2 } as const

/** @internal */
export type Status = typeof Status[keyof typeof Status]

/** @internal */
export interface Waiter {
  readonly tokens: number
  readonly since: number
  readonly deferred: Deferred.Deferred<void, ExceedsCapacity>
  status: Status
}

/** @internal */
export interface BucketOptions {
  readonly capacity: number
  readonly refillRate: number
  readonly cooldownSec: number
  readonly breakerThreshold: number
  readonly breakerTimeoutSec: number
}

/** @internal */
export class Bucket {
  capacity: number
  baseRate: number
  cooldownSec: number
  breakerThreshold: number
  breakerTimeoutSec: number

  scale = 1
  rate: number
  tokens: number
  /** Monotonic seconds of the last refill. */
  last: number
  pressure: BackpressureLevel = "ok"

  queue: Array<Waiter> | undefined = undefined
  head = 0
  waiting = 0
  /** A timer fiber is driving this bucket's waiters. */
  timer = false
  /** Completing it makes the timer recompute its deadline. */
  wake: Deferred.Deferred<void> | undefined = undefined

  failures = 0
  /** Set while the breaker is open or half-open (`now >= openUntil`). */
  openUntil: number | undefined = undefined
  cooldowns: Map<string, number> | undefined = undefined

  /** Statistics, read by the metrics at scrape time. */
  granted = 0
  immediate = 0
  waitBuckets: Uint32Array | undefined = undefined
  waitCount = 0
  waitSum = 0
  waitMax = 0

  constructor(options: BucketOptions, now: number) {
    this.capacity = options.capacity
    this.baseRate = options.refillRate
    this.cooldownSec = options.cooldownSec
    this.breakerThreshold = options.breakerThreshold
    this.breakerTimeoutSec = options.breakerTimeoutSec
    this.rate = options.refillRate
    this.tokens = options.capacity
    this.last = now
  }
}

/** Accrues tokens at the rate in force since the last refill. @internal */
export const refill = (b: Bucket, now: number): void => {
  const elapsed = now - b.last
  if (elapsed > 0) {
    const cap = b.waiting > 0 ? b.capacity + LATENESS_CREDIT : b.capacity
    const tokens = b.tokens + elapsed * b.rate
    b.tokens = tokens < cap ? tokens : cap
  }
  b.last = now
}

/** Changes the scale from `now` on: what accrued so far accrued at the old rate. @internal */
export const rescale = (b: Bucket, scale: number, now: number): void => {
  refill(b, now)
  b.scale = scale
  b.rate = b.baseRate * scale
}

/** Takes tokens at once if nobody is waiting and the bucket is not paused. @internal */
export const take = (b: Bucket, tokens: number, now: number): boolean => {
  if (b.waiting > 0 || b.rate === 0) return false
  refill(b, now)
  if (!enough(b, tokens)) return false
  // may dip a hair below 0 (a grant within RESOLUTION_SEC of its time): the debt carries over, so no drift
  b.tokens -= tokens
  b.granted += tokens
  b.immediate++
  return true
}

/** Parks a waiter at the back of the queue. @internal */
export const enqueue = (b: Bucket, waiter: Waiter): void => {
  if (b.queue === undefined) b.queue = []
  b.queue.push(waiter)
  b.waiting++
}

const headWaiter = (b: Bucket): Waiter | undefined => {
  const queue = b.queue
  if (queue === undefined) return undefined
  while (b.head < queue.length) {
    const waiter = queue[b.head]!
    if (waiter.status === Status.Waiting) return waiter
    b.head++
  }
  return undefined
}

const observeWait = (b: Bucket, seconds: number): void => {
  if (b.waitBuckets === undefined) b.waitBuckets = new Uint32Array(WAIT_BOUNDARIES.length)
  let i = 0
  while (i < WAIT_BOUNDARIES.length && seconds > WAIT_BOUNDARIES[i]!) i++
  if (i < WAIT_BOUNDARIES.length) b.waitBuckets[i]!++
  b.waitCount++
  b.waitSum += seconds
  if (seconds > b.waitMax) b.waitMax = seconds
}

/**
 * Grants parked waiters in order for as long as the tokens last; returns the
 * waiters granted, whose deferreds the caller completes.
 *
 * @internal
 */
export const drain = (b: Bucket, now: number): Array<Waiter> | undefined => {
  refill(b, now)
  let granted: Array<Waiter> | undefined
  if (b.rate > 0) {
    for (let waiter = headWaiter(b); waiter !== undefined; waiter = headWaiter(b)) {
      if (!enough(b, waiter.tokens)) break
      b.tokens -= waiter.tokens
      waiter.status = Status.Granted
      b.head++
      b.waiting--
      b.granted += waiter.tokens
      observeWait(b, now - waiter.since)
      ;(granted ??= []).push(waiter)
    }
  }
  if (b.waiting === 0) {
    b.queue = undefined
    b.head = 0
    if (b.tokens > b.capacity) b.tokens = b.capacity
  }
  return granted
}

/**
 * Seconds until the head waiter can be granted at the current rate;
 * `undefined` while paused or with nobody waiting.
 *
 * @internal
 */
export const nextDeadline = (b: Bucket): number | undefined => {
  const waiter = headWaiter(b)
  if (waiter === undefined || b.rate === 0) return undefined
  const seconds = Math.round((waiter.tokens - b.tokens) / b.rate / RESOLUTION_SEC) * RESOLUTION_SEC
  return seconds > 0 ? seconds : 0
}

/**
 * Withdraws an interrupted waiter. One that was granted but never resumed
 * gives its tokens back.
 *
 * @internal
 */
export const cancel = (b: Bucket, waiter: Waiter, now: number): void => {
  refill(b, now)
  if (waiter.status === Status.Granted) {
    b.tokens += waiter.tokens
    b.granted -= waiter.tokens
    const cap = b.waiting > 0 ? b.capacity + LATENESS_CREDIT : b.capacity
    if (b.tokens > cap) b.tokens = cap
  } else if (waiter.status === Status.Waiting) {
    waiter.status = Status.Cancelled
    b.waiting--
  }
}

/** @internal */
export type CircuitState = "closed" | "open" | "half_open"

/** @internal */
export const circuitState = (b: Bucket, now: number): CircuitState =>
  b.openUntil === undefined ? "closed" : now < b.openUntil ? "open" : "half_open"

/** Returns true when this failure opened the breaker. @internal */
export const recordFailure = (b: Bucket, now: number): boolean => {
  if (b.openUntil !== undefined && now >= b.openUntil) {
    // the half-open trial failed: open again at once
    b.openUntil = now + b.breakerTimeoutSec
    b.failures = 0
    return true
  }
  if (b.openUntil !== undefined) return false
  b.failures++
  if (b.failures < b.breakerThreshold) return false
  b.openUntil = now + b.breakerTimeoutSec
  b.failures = 0
  return true
}

/** @internal */
export const recordSuccess = (b: Bucket, now: number): void => {
  b.failures = 0
  if (b.openUntil !== undefined && now >= b.openUntil) b.openUntil = undefined
}

/** Seconds left in the cooldown of `scope`, or 0. @internal */
export const cooldownRemaining = (b: Bucket, scope: string, now: number): number => {
  const until = b.cooldowns?.get(scope)
  return until === undefined || until <= now ? 0 : until - now
}
