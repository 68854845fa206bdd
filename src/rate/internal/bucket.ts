/**
 * One provider's token bucket, its FIFO of parked waiters, circuit breaker
 * and cooldowns. Everything here is synchronous: a call runs to completion
 * without yielding, so each operation is atomic with respect to fibers. The
 * coordinator calls these from its effects' synchronous steps and drives the
 * timer.
 *
 * @internal
 */
import type * as Exit from "effect/Exit"
import type { BackpressureLevel } from "../../contracts/BackpressureLevel.ts"
import * as Histogram from "../../metrics/internal/histogram.ts"
import { metricDefinitions } from "../../metrics/MetricDefinitions.ts"
import type { CircuitOpen, ExceedsCapacity, ProviderInCooldown } from "../RateError.ts"

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
 * A late timer costs tokens only when the bucket would fill up before it
 * fires: while `capacity − head waiter's tokens` holds at least this many
 * seconds of refill, a wake-up up to this late loses nothing. With less slack
 * than that (capacity 1, say), the timer on the live clock stops sleeping
 * this long before the deadline and yields to the event loop until it is
 * due, so the long-run rate stays exact without ever letting the bucket hold
 * more than its capacity.
 *
 * @internal
 */
export const PRECISE_WINDOW_SEC = 0.002

/**
 * The last stretch of such a precise wait, in seconds, which the timer spends
 * reading the clock without yielding: a turn of the event loop takes longer
 * than the microsecond a grant may be late without costing the rate.
 *
 * @internal
 */
export const BUSY_WINDOW_SEC = 0.00005

/** Upper bounds, in seconds, of the wait-time histogram buckets (defined with the metric). @internal */
export const WAIT_BOUNDARIES: ReadonlyArray<number> = metricDefinitions.waitSeconds.boundaries

/** @internal */
export const Status = { Waiting: 0, Granted: 1, Cancelled: 2 } as const

/** @internal */
export type Status = typeof Status[keyof typeof Status]

/** Why a parked waiter is withdrawn: a smaller capacity, an opened breaker, a global cooldown. @internal */
export type Withdrawn = ExceedsCapacity | CircuitOpen | ProviderInCooldown

/** @internal */
export interface Waiter {
  readonly tokens: number
  readonly since: number
  /** Resumes the parked fiber: `Exit.void` when granted, the reason when withdrawn. */
  readonly resume: (exit: Exit.Exit<void, Withdrawn>) => void
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

/** The parked waiters of a bucket and the timer serving them; only while someone waits. @internal */
export interface Line {
  readonly queue: Array<Waiter>
  head: number
  /** A timer fiber is serving this line. */
  timer: boolean
  /** Makes the timer recompute its deadline at once (the head of the line or the rate changed). */
  wake: (() => void) | undefined
}

/**
 * What a used provider counts for its metrics: tokens granted, tokens given
 * back by waiters interrupted after their grant, acquires granted without
 * waiting, and how long grants waited (only once something had to wait).
 * Created when the provider is first used, with its metric series.
 *
 * @internal
 */
export interface Stats {
  granted: number
  returned: number
  immediate: number
  waits: Histogram.Histogram | undefined
}

/**
 * Kept small: a registered provider that is never used costs one object of
 * a dozen fields, its configuration being shared with every provider
 * registered alike; its counters come with its first use.
 *
 * @internal
 */
export class Bucket {
  config: BucketOptions
  scale = 1
  tokens: number
  /** Monotonic seconds of the last refill. */
  last: number
  pressure: BackpressureLevel = "ok"
  waiting = 0
  line: Line | undefined = undefined
  failures = 0
  /** Set while the breaker is open or half-open (`now >= openUntil`). */
  openUntil: number | undefined = undefined
  /** While half-open: the trial call's slot is taken until then. */
  probeUntil: number | undefined = undefined
  cooldowns: Map<string, number> | undefined = undefined
  /** Set once the provider is used; its metric series are registered then. */
  stats: Stats | undefined = undefined

  constructor(config: BucketOptions, now: number) {
    this.config = config
    this.tokens = config.capacity
    this.last = now
  }

  /** The rate in force, tokens/s: `refillRate × scale`. */
  get rate(): number {
    return this.config.refillRate * this.scale
  }
}

/** The bucket's stats, created on first use. @internal */
export const stats = (b: Bucket): Stats => b.stats ??= { granted: 0, returned: 0, immediate: 0, waits: undefined }

/** Accrues tokens at the rate in force since the last refill. @internal */
export const refill = (b: Bucket, now: number): void => {
  const elapsed = now - b.last
  if (elapsed > 0) {
    const cap = b.config.capacity
    const tokens = b.tokens + elapsed * b.rate
    b.tokens = tokens < cap ? tokens : cap
  }
  b.last = now
}

/** Changes the scale from `now` on: what accrued so far accrued at the old rate. @internal */
export const rescale = (b: Bucket, scale: number, now: number): void => {
  refill(b, now)
  b.scale = scale
}

/** Takes tokens at once if nobody is waiting and the bucket is not paused. @internal */
export const take = (b: Bucket, tokens: number, now: number): boolean => {
  if (b.waiting > 0 || b.scale === 0) return false
  refill(b, now)
  if (!enough(b, tokens)) return false
  // may dip a hair below 0 (a grant within RESOLUTION_SEC of its time): the debt carries over, so no drift
  b.tokens -= tokens
  const s = stats(b)
  s.granted += tokens
  s.immediate++
  return true
}

/** Parks a waiter at the back of the line; returns the line. @internal */
export const enqueue = (b: Bucket, waiter: Waiter): Line => {
  const line = b.line ??= { queue: [], head: 0, timer: false, wake: undefined }
  line.queue.push(waiter)
  b.waiting++
  return line
}

const headWaiter = (line: Line | undefined): Waiter | undefined => {
  if (line === undefined) return undefined
  const queue = line.queue
  while (line.head < queue.length) {
    const waiter = queue[line.head]!
    if (waiter.status === Status.Waiting) return waiter
    line.head++
  }
  return undefined
}

/** Counts a grant that waited `seconds` in the wait histogram. @internal */
export const observeWait = (b: Bucket, seconds: number): void => {
  const s = stats(b)
  Histogram.observe(s.waits ??= Histogram.make(WAIT_BOUNDARIES), WAIT_BOUNDARIES, seconds)
}

/**
 * Grants parked waiters in order for as long as the tokens last; returns the
 * waiters granted, whom the caller resumes.
 *
 * @internal
 */
export const drain = (b: Bucket, now: number): Array<Waiter> | undefined => {
  refill(b, now)
  const line = b.line
  let granted: Array<Waiter> | undefined
  if (b.rate > 0 && line !== undefined) {
    for (let waiter = headWaiter(line); waiter !== undefined; waiter = headWaiter(line)) {
      if (!enough(b, waiter.tokens)) break
      // may dip a hair below 0 (a grant within RESOLUTION_SEC of its time): the debt carries over, so no drift
      b.tokens -= waiter.tokens
      waiter.status = Status.Granted
      line.head++
      b.waiting--
      stats(b).granted += waiter.tokens
      observeWait(b, now - waiter.since)
      ;(granted ??= []).push(waiter)
    }
  }
  if (line !== undefined) {
    if (b.waiting === 0) {
      // the timer, if running, still holds the line: empty it rather than drop it
      if (line.timer) {
        line.queue.length = 0
        line.head = 0
      } else {
        b.line = undefined
      }
    } else if (line.head > 1024 && line.head * 2 > line.queue.length) {
      line.queue.splice(0, line.head)
      line.head = 0
    }
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
  const waiter = headWaiter(b.line)
  if (waiter === undefined || b.rate === 0) return undefined
  // rounded down (float error just below a whole microsecond aside): waking up to a
  // microsecond early is served (`enough`), while waking late would lose what accrued
  // past the capacity
  const seconds = Math.floor((waiter.tokens - b.tokens) / b.rate / RESOLUTION_SEC + 1e-6) * RESOLUTION_SEC
  return seconds > 0 ? seconds : 0
}

/**
 * How late, in seconds, the head waiter's grant may come without the bucket
 * overflowing meanwhile (the refill of `capacity − its tokens`); a wake-up
 * later than this loses tokens. Infinite while paused or with nobody waiting.
 *
 * @internal
 */
export const lateTolerance = (b: Bucket): number => {
  const waiter = headWaiter(b.line)
  return waiter === undefined || b.scale === 0 ? Infinity : (b.config.capacity - waiter.tokens) / b.rate
}

/**
 * Withdraws an interrupted waiter. One that was granted but never resumed
 * gives its tokens back; they count as returned, as the granted count may
 * never go down.
 *
 * @internal
 */
export const cancel = (b: Bucket, waiter: Waiter, now: number): void => {
  refill(b, now)
  if (waiter.status === Status.Granted) {
    b.tokens += waiter.tokens
    stats(b).returned += waiter.tokens
    if (b.tokens > b.config.capacity) b.tokens = b.config.capacity
  } else if (waiter.status === Status.Waiting) {
    waiter.status = Status.Cancelled
    b.waiting--
  }
}

/**
 * Withdraws, in order, the parked waiters `select` picks; the others keep
 * their place. The caller resumes those returned.
 *
 * @internal
 */
export const withdraw = (b: Bucket, select: (waiter: Waiter) => boolean): Array<Waiter> => {
  const withdrawn: Array<Waiter> = []
  const line = b.line
  if (line === undefined) return withdrawn
  for (let i = line.head; i < line.queue.length; i++) {
    const waiter = line.queue[i]!
    if (waiter.status === Status.Waiting && select(waiter)) {
      waiter.status = Status.Cancelled
      b.waiting--
      withdrawn.push(waiter)
    }
  }
  return withdrawn
}

/** @internal */
export type CircuitState = "closed" | "open" | "half_open"

/** @internal */
export const circuitState = (b: Bucket, now: number): CircuitState =>
  b.openUntil === undefined ? "closed" : now < b.openUntil ? "open" : "half_open"

/**
 * Seconds until the breaker admits a call: until the end of the open period,
 * or, half-open, until the trial call's slot lapses; 0 if it admits one now.
 *
 * @internal
 */
export const breakerWait = (b: Bucket, now: number): number =>
  b.openUntil === undefined
    ? 0
    : now < b.openUntil
    ? b.openUntil - now
    : b.probeUntil !== undefined && now < b.probeUntil
    ? b.probeUntil - now
    : 0

/**
 * Gives the half-open breaker's one trial slot to the caller, for
 * `breakerTimeoutSec`: a trial whose outcome is never recorded cannot wedge
 * the breaker. Returns the claim, for `releaseProbe`.
 *
 * @internal
 */
export const claimProbe = (b: Bucket, now: number): number => (b.probeUntil = now + b.config.breakerTimeoutSec)

/** Frees the trial slot of a trial that never made its call, unless the slot has moved on. @internal */
export const releaseProbe = (b: Bucket, claim: number): void => {
  if (b.probeUntil === claim) b.probeUntil = undefined
}

const open = (b: Bucket, now: number): true => {
  b.openUntil = now + b.config.breakerTimeoutSec
  b.probeUntil = undefined
  b.failures = 0
  return true
}

/** Returns true when this failure opened the breaker. @internal */
export const recordFailure = (b: Bucket, now: number): boolean => {
  // half-open, the trial failed: open again at once
  if (b.openUntil !== undefined) return now >= b.openUntil && open(b, now)
  b.failures++
  return b.failures >= b.config.breakerThreshold && open(b, now)
}

/** @internal */
export const recordSuccess = (b: Bucket, now: number): void => {
  b.failures = 0
  if (b.openUntil !== undefined && now >= b.openUntil) {
    b.openUntil = undefined
    b.probeUntil = undefined
  }
}

/** Seconds left in the cooldown of `scope`, or 0. @internal */
export const cooldownRemaining = (b: Bucket, scope: string, now: number): number => {
  const until = b.cooldowns?.get(scope)
  return until === undefined || until <= now ? 0 : until - now
}
