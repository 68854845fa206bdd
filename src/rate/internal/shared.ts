/**
 * The RateCoordinator whose buckets live in Redis, shared by every process
 * that uses the same Redis and key prefix.
 *
 * Per process and provider, waiters that arrive while a script call is in
 * flight go together in the next call (one reservation of their summed
 * tokens), so Redis sees at most one call per round trip per process and
 * provider. The reply says from which ticket the reservation starts and
 * where the frontier (the ticket due now) stands, at what rate it moves: the
 * process computes when each waiter is due and sleeps until then, never
 * polling. A change of rate, scale, pressure or coordinator level, made by
 * any process, is published on one control channel per prefix; every process
 * re-times its waiters from it. All bucket arithmetic runs in the scripts on
 * Redis `TIME`; processes only sleep relative durations.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Redis from "effect/persistence/Redis"
import * as Queue from "effect/Queue"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import { type BackpressureLevel, parseLevel } from "../../contracts/BackpressureLevel.ts"
import { registerReading } from "../../metrics/internal/cells.ts"
import { metricDefinitions } from "../../metrics/MetricDefinitions.ts"
import type { CoordinatorLevels } from "../CoordinatorLevels.ts"
import type { ProviderState, RateCoordinator, RedisCoordinatorOptions } from "../RateCoordinator.ts"
import {
  type AcquireError,
  CircuitOpen,
  CoordinatorClosed,
  InvalidCooldown,
  InvalidRedisOptions,
  InvalidScale,
  ProviderInCooldown,
  SharedBucketUnavailable,
  UnknownProvider
} from "../RateError.ts"
import * as B from "./bucket.ts"
import {
  admitLocal,
  clampScale,
  make as makeLocal,
  makeMetrics,
  positive,
  registerMetrics,
  validate
} from "./coordinator.ts"
import * as Scripts from "./scripts.ts"
import * as T from "./timeline.ts"

const Status = B.Status

interface Waiter {
  readonly tokens: number
  /** Local monotonic seconds of the acquire, for the wait histogram. */
  readonly since: number
  readonly deferred: Deferred.Deferred<void, AcquireError>
  status: B.Status
  /** The last ticket of its reservation, once reserved, in bucket generation `gen`. */
  ticket: number
  gen: string
}

/** Leased tickets (`next`, `end`] of generation `gen`, leased at local time `at` (ms). */
interface Lease {
  readonly gen: string
  next: number
  readonly end: number
  /** When its call left (local ms): it lives until `at + LEASE_TTL_MS`. */
  readonly at: number
}

/**
 * How long leased tokens may wait to be handed out (ms), counted from when
 * the call left (so at most this long after Redis leased them). The script
 * withholds the refill until the last lease of any process runs out, so
 * grants from leases keep the bucket's bound exactly (leases are only taken
 * from plenty, a quarter of what is there, for buckets of at least 500
 * tokens/s; the scripts use the same 10 ms).
 */
const LEASE_TTL_MS = 10

/**
 * What this process set in Redis, with the Redis time each setting counts
 * from (`""` while not yet taken). If Redis loses the bucket, every process
 * sets again what it had set; the scripts keep the newest of each, so a
 * pause, a manual scale or a coordinator's level survives a flush or a
 * restart. A forgotten coordinator stays as a tombstone (bounded), so a
 * stale level of another process cannot come back over it.
 */
interface Own {
  scale?: readonly [number, string]
  pressure?: readonly [BackpressureLevel, string]
  readonly levels: Map<string, readonly [level: BackpressureLevel | undefined, scale: number, at: string]>
}

const MAX_TOMBSTONES = 1024

class Shared {
  readonly name: string
  readonly keys: readonly [string, string]
  /** Configuration, breaker, cooldowns and the metric counters; scale and pressure mirror Redis. */
  readonly local: B.Bucket
  head: Scripts.Head
  pending: Array<Waiter> = []
  reserved: Array<Waiter> = []
  first = 0
  flushing = false
  timer = false
  wake: Deferred.Deferred<void> | undefined = undefined
  timeline: T.Timeline = { gen: "", frontier: 0, rate: 0, at: 0, epoch: -1, holes: [] }
  own: Own = { levels: new Map() }
  /** The batch whose reservation is in flight. */
  inflight: ReadonlyArray<Waiter> = []
  /** Releases Redis did not take (it was unavailable): sent again when it is back. */
  releases: Array<readonly [ticket: number, tokens: number, gen: string]> = []
  /** Some of `own` may not be in Redis (Redis was unavailable, or lost the bucket). */
  dirty = false
  degraded = false
  errors = 0
  /** Tokens due now that Redis leased to this process: handed out without a round trip. */
  lease: Lease | undefined = undefined
  /** The lease to ask for with the next batch: the demand a lease served, doubled (0: none yet). */
  leaseSize = 0
  leaseUsed = 0
  constructor(name: string, keys: readonly [string, string], local: B.Bucket, head: Scripts.Head) {
    this.name = name
    this.keys = keys
    this.local = local
    this.head = head
  }
}

/** Whether generation `a` (Redis `TIME` of the bucket's creation, `sec.usec`) is older than `b`. */
const olderGen = (a: string, b: string): boolean => {
  if (b === "") return false
  const [as, au] = a.split(".").map(Number) as [number, number]
  const [bs, bu] = b.split(".").map(Number) as [number, number]
  return as < bs || (as === bs && au < bu)
}

const backoff = (attempt: number): Duration.Duration =>
  Duration.millis(Math.min(50 * 2 ** Math.min(attempt, 6), 2000) + Math.floor(Math.random() * 50))

/** @internal */
export const make = (
  options: RedisCoordinatorOptions = {}
): Effect.Effect<
  readonly [RateCoordinator["Service"], CoordinatorLevels["Service"]],
  InvalidRedisOptions,
  Redis.Redis | Scope.Scope
> =>
  Effect.gen(function*() {
    const redis = yield* Redis.Redis
    const clock = yield* Clock.Clock
    const context = yield* Effect.context<never>()
    const prefix = options.prefix ?? "mdp"
    const policy = options.onUnavailable ?? "wait"
    if (
      typeof policy === "object"
        ? !(typeof policy.local === "number" && policy.local > 0 && policy.local <= 1)
        : !["wait", "fail", "allow"].includes(policy)
    ) {
      return yield* new InvalidRedisOptions({
        option: "onUnavailable",
        value: policy,
        expected: `"wait", "fail", "allow" or { local: share } with share in (0, 1]`
      })
    }
    const duration = (option: string, input: Duration.Input) =>
      Effect.suspend(() => {
        const parsed = Duration.fromInput(input)
        return parsed._tag === "Some" && Duration.toMillis(parsed.value) > 0
          ? Effect.succeed(parsed.value)
          : Effect.fail(new InvalidRedisOptions({ option, value: input, expected: "a positive duration" }))
      })
    const callTimeout = yield* duration("timeout", options.timeout ?? "250 millis")
    const ttlMs = Duration.toMillis(yield* duration("keyTtl", options.keyTtl ?? "10 minutes"))
    const channel = `${prefix}:rl:ctl`
    const runFork = yield* FiberSet.makeRuntime<never, void, never>()
    const fallback = typeof policy === "object" ? yield* makeLocal : undefined
    const metrics = makeMetrics()
    const buckets = new Map<string, Shared>()
    const unregister: Array<() => void> = []
    let closed = false

    const nowMs = (): number => Number(clock.monotonicTimeNanosUnsafe()) / 1e6

    const meter = (s: Shared): Shared => {
      if (s.local.stats === undefined) {
        B.stats(s.local)
        unregister.push(registerMetrics(metrics, s.local, s.name, context))
        for (
          const registration of [
            registerReading(
              context,
              metricDefinitions.sharedDegraded,
              { provider: s.name },
              () => ({ value: s.degraded ? 1 : 0 })
            ),
            registerReading(context, metricDefinitions.redisErrors, { provider: s.name }, () => ({
              count: s.errors,
              incremental: true
            }))
          ]
        ) unregister.push(() => registration.remove())
      }
      return s
    }

    // Every Redis call is bounded; a failure counts and becomes the typed error.
    const call = <A>(s: Shared, effect: Effect.Effect<A, Redis.RedisError>) =>
      effect.pipe(
        Effect.timeout(callTimeout),
        Effect.tapError(() =>
          Effect.sync(() => {
            s.errors++
          })
        ),
        Effect.mapError((cause) => new SharedBucketUnavailable({ provider: s.name, cause }))
      )
    const acquireScript = redis.eval(Scripts.acquire)
    const controlScript = redis.eval(Scripts.control)
    const control = (s: Shared, ...op: Scripts.Control) => call(s, controlScript(s.keys, s.head, ...op))

    // ---- the timeline: grants in ticket order as the frontier passes them

    const grantDue = (s: Shared): void => {
      const tl = s.timeline
      const now = nowMs()
      let granted: Array<Waiter> | undefined
      while (s.first < s.reserved.length) {
        const waiter = s.reserved[s.first]!
        if (waiter.status !== Status.Waiting || waiter.gen !== tl.gen) {
          s.first++
          continue
        }
        if (!T.isDue(tl, waiter.ticket, waiter.tokens, now)) break
        s.first++
        take(s, waiter, now)
        ;(granted ??= []).push(waiter)
      }
      if (s.first > 1024 && s.first * 2 > s.reserved.length) {
        s.reserved.splice(0, s.first)
        s.first = 0
      } else if (s.first === s.reserved.length) {
        s.reserved.length = 0
        s.first = 0
      }
      // resumed only once all are counted: a waiter resumed at once must find the line as it now is
      if (granted !== undefined) { for (const waiter of granted) Deferred.doneUnsafe(waiter.deferred, Exit.void) }
    }

    const take = (s: Shared, waiter: Waiter, now: number): void => {
      waiter.status = Status.Granted
      s.local.waiting--
      B.stats(s.local).granted += waiter.tokens
      B.observeWait(s.local, Math.max(0, now / 1000 - waiter.since))
    }

    const grant = (s: Shared, waiter: Waiter, now: number): void => {
      take(s, waiter, now)
      Deferred.doneUnsafe(waiter.deferred, Exit.void)
    }

    /** Milliseconds until the first reserved waiter is due; undefined when paused or none waits. */
    const nextDue = (s: Shared): number | undefined => {
      for (let i = s.first; i < s.reserved.length; i++) {
        const waiter = s.reserved[i]!
        if (waiter.status !== Status.Waiting) continue
        return T.dueIn(s.timeline, waiter.ticket, waiter.tokens, nowMs())
      }
      return undefined
    }

    const timer = (s: Shared): Effect.Effect<void> =>
      Effect.suspend(() => {
        grantDue(s)
        if (s.first >= s.reserved.length) {
          s.timer = false
          return Effect.void
        }
        const wake = Deferred.makeUnsafe<void>()
        s.wake = wake
        const due = nextDue(s)
        const sleep = due === undefined
          ? Deferred.await(wake)
          : Effect.raceFirst(clock.sleep(Duration.millis(Math.max(due, 0.001))), Deferred.await(wake))
        return Effect.flatMap(sleep, () => timer(s))
      })

    const retime = (s: Shared): void => {
      grantDue(s)
      if (s.first >= s.reserved.length) return
      if (s.timer) {
        if (s.wake !== undefined) Deferred.doneUnsafe(s.wake, Exit.void)
      } else {
        s.timer = true
        runFork(timer(s))
      }
    }

    // A bucket created anew (Redis lost it): reservations of the old one mean nothing; reserve again, in order.
    const regenerate = (s: Shared, gen: string): void => {
      const again: Array<Waiter> = []
      for (let i = s.first; i < s.reserved.length; i++) {
        const waiter = s.reserved[i]!
        if (waiter.status === Status.Waiting && waiter.gen !== gen) again.push(waiter)
      }
      s.reserved = s.reserved.slice(s.first).filter((w) => w.gen === gen)
      s.first = 0
      if (again.length > 0) {
        s.pending.unshift(...again)
        startFlush(s)
      }
      // the new bucket knows nothing of what this process had set
      if (ownOps(s).length > 0 && !s.dirty) {
        s.dirty = true
        runFork(resend(s))
      }
    }

    /** Adopts what Redis answered: the timeline if it is not older than the one known, and the shared state. */
    const adopt = (s: Shared, reply: Scripts.Reply, at: number): void => {
      const [, frontier, rate, , epoch, gen, base, burst, scale, level] = reply
      const tl = s.timeline
      if (gen !== tl.gen && olderGen(gen, tl.gen)) return
      const next = { gen, frontier: Number(frontier), rate: Number(rate), at, epoch, holes: T.parseHoles(reply[13]) }
      if (gen !== tl.gen) {
        s.timeline = next
        if (tl.gen !== "") regenerate(s, gen)
      } else if (epoch >= tl.epoch) {
        s.timeline = next
      }
      // another process may have registered the provider with other options: they are in force here too
      const config = s.local.config
      if (config.refillRate !== Number(base) || config.capacity !== Number(burst)) {
        s.local.config = { ...config, refillRate: Number(base), capacity: Number(burst) }
        s.head = { ...s.head, base: Number(base), burst: Number(burst) }
      }
      s.local.scale = Number(scale)
      const parsed = parseLevel(level)
      if (Result.isSuccess(parsed)) s.local.pressure = parsed.success
      retime(s)
    }

    const onControl = (message: string): void => {
      const parts = message.split("|")
      if (parts.length < 6) return
      const s = buckets.get(parts.slice(5).join("|"))
      if (s === undefined) return
      const [gen, frontier, rate, epoch, holes] = parts as [string, string, string, string, string]
      const tl = s.timeline
      if (gen === tl.gen && Number(epoch) <= tl.epoch) return
      if (gen !== tl.gen && olderGen(gen, tl.gen)) return
      if (gen !== tl.gen && tl.gen !== "") regenerate(s, gen)
      s.timeline = {
        gen,
        frontier: Number(frontier),
        rate: Number(rate),
        at: nowMs(),
        epoch: Number(epoch),
        holes: T.parseHoles(holes)
      }
      // a lease was taken under the old rate: a pause or a slower rate must not wait for it to run out
      // (a give-back of another process changes neither, and must not cost every process its lease)
      if (s.lease !== undefined && (gen !== tl.gen || Number(rate) < tl.rate)) dropLease(s)
      retime(s)
    }

    // ---- the flush: this process's waiters, one reservation per round trip

    const startFlush = (s: Shared): void => {
      if (s.flushing) return
      s.flushing = true
      runFork(flush(s))
    }

    /** `sentAt`: when the call left, for the lease's age; the timeline counts from the reply's arrival. */
    const settleBatch = (s: Shared, batch: ReadonlyArray<Waiter>, reply: Scripts.Reply, sentAt: number): void => {
      const stale = reply[4] < s.timeline.epoch && reply[5] === s.timeline.gen
      adopt(s, reply, nowMs())
      const gen = reply[5]
      let ticket = Number(reply[3])
      let cost = 0
      for (const waiter of batch) cost += waiter.tokens
      // a lease taken before a change this process already knows of (a pause) is given back at once
      installLease(s, reply, cost, sentAt)
      if (stale) dropLease(s)
      for (const waiter of batch) {
        ticket += waiter.tokens
        if (waiter.status === Status.Waiting) {
          waiter.ticket = ticket
          waiter.gen = gen
          s.reserved.push(waiter)
        } else {
          // interrupted while its reservation was in flight
          release(s, ticket, waiter.tokens, gen)
        }
      }
      retime(s)
    }

    const unavailable = (s: Shared, batch: ReadonlyArray<Waiter>, error: SharedBucketUnavailable) => {
      const live = batch.filter((w) => w.status === Status.Waiting)
      if (policy === "fail") {
        for (const waiter of live) {
          waiter.status = Status.Cancelled
          s.local.waiting--
          Deferred.doneUnsafe(waiter.deferred, Exit.fail(error))
        }
      } else if (policy === "allow") {
        const now = nowMs()
        for (const waiter of live) grant(s, waiter, now)
      } else if (fallback !== undefined) {
        degrade(s)
        for (const waiter of live) viaFallback(s, waiter)
      }
    }

    const flush = (s: Shared): Effect.Effect<void> =>
      Effect.gen(function*() {
        let attempt = 0
        while (s.pending.length > 0 && !closed) {
          // let the fibers just granted (and others ready to run) join this batch before it leaves
          yield* Effect.yieldNow
          const batch = s.pending.filter((w) => w.status === Status.Waiting)
          s.pending = []
          if (batch.length === 0) continue
          let cost = 0
          for (const waiter of batch) cost += waiter.tokens
          // ask for a lease as large as twice what the last one served (at least the batch again)
          const lease = Math.min(Math.max(2 * s.leaseUsed, cost, s.leaseSize), 1 << 20)
          s.leaseUsed = 0
          s.leaseSize = lease
          s.inflight = batch
          const sentAt = nowMs()
          const result = yield* Effect.result(call(s, acquireScript(s.keys, s.head, cost, "reserve", lease)))
          s.inflight = []
          if (Result.isSuccess(result)) {
            attempt = 0
            settleBatch(s, batch, result.success, sentAt)
            continue
          }
          if (policy !== "wait") {
            unavailable(s, batch, result.failure)
            continue
          }
          // wait: the waiters keep their place and their caller's deadline; retry with a capped backoff
          s.pending.unshift(...batch)
          if (attempt === 0) {
            yield* Effect.logWarning(`shared bucket ${s.name}: Redis unavailable, waiters wait`, result.failure.cause)
          }
          yield* Effect.sleep(backoff(attempt++))
        }
        s.flushing = false
      })

    // ---- the local fallback: a bucket of this process at a share of the rate

    const degrade = (s: Shared): void => {
      if (s.degraded) return
      s.degraded = true
      runFork(Effect.andThen(
        Effect.logWarning(`shared bucket ${s.name}: Redis unavailable, running on the local fallback`),
        recover(s)
      ))
    }

    const recover = (s: Shared): Effect.Effect<void> =>
      Effect.gen(function*() {
        for (let attempt = 0; s.degraded && !closed; attempt++) {
          yield* Effect.sleep(backoff(attempt))
          const result = yield* Effect.result(control(s, "state"))
          if (Result.isSuccess(result)) {
            adopt(s, result.success, nowMs())
            s.degraded = false
            yield* resend(s)
            yield* Effect.logInfo(`shared bucket ${s.name}: Redis is back, leaving the local fallback`)
          }
        }
      })

    const viaFallback = (s: Shared, waiter: Waiter): void => {
      runFork(
        fallback!.acquire(s.name, waiter.tokens).pipe(
          Effect.exit,
          Effect.flatMap((exit) =>
            Effect.sync(() => {
              if (waiter.status !== Status.Waiting) return
              if (Exit.isSuccess(exit)) grant(s, waiter, nowMs())
              else {
                waiter.status = Status.Cancelled
                s.local.waiting--
                Deferred.doneUnsafe(waiter.deferred, exit as Exit.Exit<never, AcquireError>)
              }
            })
          )
        )
      )
    }

    // ---- leases: tokens due now, handed out in this process without a round trip

    /** Ends the lease, giving back what was not handed out. */
    const dropLease = (s: Shared): void => {
      const lease = s.lease
      if (lease === undefined) return
      s.lease = undefined
      const left = lease.end - lease.next
      if (left > 0 && lease.gen === s.timeline.gen) release(s, lease.end, left, lease.gen)
    }

    /** Takes `tokens` from the lease if it is fresh and holds them. */
    const fromLease = (s: Shared, tokens: number): boolean => {
      const lease = s.lease
      if (lease === undefined) return false
      if (nowMs() - lease.at > LEASE_TTL_MS || lease.gen !== s.timeline.gen) {
        dropLease(s)
        return false
      }
      if (lease.end - lease.next < tokens) return false
      lease.next += tokens
      s.leaseUsed += tokens
      return true
    }

    /** Installs the lease a batch's reply brought (tickets after the batch's). */
    const installLease = (s: Shared, reply: Scripts.Reply, cost: number, at: number): void => {
      const leased = reply[11]
      if (leased < 1) {
        s.leaseSize = 0
        return
      }
      dropLease(s)
      const start = Number(reply[3]) + cost
      s.lease = { gen: reply[5], next: start, end: start + leased, at }
    }

    // ---- giving tokens back, and changes Redis did not take yet

    const release = (s: Shared, ticket: number, tokens: number, gen: string): void => {
      runFork(Effect.catch(Effect.asVoid(control(s, "release", ticket, tokens, gen)), () =>
        Effect.sync(() => {
          // kept until Redis is back; a bucket created meanwhile ignores it (its generation)
          if (s.releases.length < 4096) s.releases.push([ticket, tokens, gen])
          s.dirty = true
        })))
    }

    /** The operation that sets again what `own` holds, one per setting. */
    const ownOps = (s: Shared): Array<Scripts.Control> => {
      const own = s.own
      const ops: Array<Scripts.Control> = []
      if (own.scale !== undefined) ops.push(["scale", own.scale[0], own.scale[1]])
      if (own.pressure !== undefined) ops.push(["pressure", own.pressure[0], own.pressure[1]])
      for (const [coordinator, [level, scale, at]] of own.levels) {
        ops.push(level === undefined ? ["forget", coordinator, at] : ["level", coordinator, level, scale, at])
      }
      return ops
    }

    /** Records in `own` the setting `op` made, counting from `at` (`""`: not yet taken). */
    const record = (s: Shared, op: Scripts.Control, at: string): void => {
      const own = s.own
      switch (op[0]) {
        case "scale":
          own.scale = [op[1], at]
          break
        case "pressure": {
          const level = parseLevel(op[1])
          if (Result.isSuccess(level)) own.pressure = [level.success, at]
          break
        }
        case "level":
          own.levels.delete(op[1])
          own.levels.set(op[1], [op[2] as BackpressureLevel, op[3], at])
          break
        case "forget": {
          own.levels.delete(op[1])
          own.levels.set(op[1], [undefined, 1, at])
          let tombstones = 0
          for (const [, [level]] of own.levels) if (level === undefined) tombstones++
          for (const [coordinator, [level]] of own.levels) {
            if (tombstones <= MAX_TOMBSTONES) break
            if (level === undefined) {
              own.levels.delete(coordinator)
              tombstones--
            }
          }
        }
      }
    }

    /** Sends what `own` holds again (Redis was unavailable, or lost the bucket). */
    const resend = (s: Shared): Effect.Effect<void> =>
      Effect.gen(function*() {
        s.dirty = false
        const releases = s.releases
        s.releases = []
        for (const [ticket, tokens, gen] of releases) release(s, ticket, tokens, gen)
        for (const op of ownOps(s)) yield* apply(s, op)
      })

    /** Sends a setting and records it; if Redis is unavailable, it is sent again when Redis is back. */
    const apply = (s: Shared, op: Scripts.Control): Effect.Effect<void> =>
      Effect.gen(function*() {
        const result = yield* Effect.result(control(s, ...op))
        if (Result.isSuccess(result)) {
          record(s, op, result.success[12])
          adopt(s, result.success, nowMs())
          retime(s)
          return
        }
        record(s, op, op[op.length - 1] as string)
        s.dirty = true
        yield* Effect.logWarning(
          `shared bucket ${s.name}: Redis unavailable, ${op[0]} change kept to send when it is back`,
          result.failure.cause
        )
      })

    // ---- background: the control channel, refreshes while waiters wait, key heartbeats, unsent changes

    const listen = Effect.gen(function*() {
      for (let attempt = 0; !closed; attempt++) {
        yield* Effect.scoped(Effect.gen(function*() {
          const queue = yield* redis.subscribe(channel)
          // (re)subscribed: messages may have been missed meanwhile
          for (const s of buckets.values()) if (s.first < s.reserved.length) yield* Effect.ignore(refresh(s))
          attempt = 0
          for (;;) onControl((yield* Queue.take(queue)).message)
        })).pipe(Effect.ignore)
        yield* Effect.sleep(backoff(attempt))
      }
    })

    const refresh = (s: Shared) =>
      Effect.flatMap(control(s, "state"), (reply) =>
        Effect.sync(() => {
          adopt(s, reply, nowMs())
          retime(s)
        }))

    const housekeeping = Effect.gen(function*() {
      for (let tick = 0;; tick++) {
        yield* Effect.sleep("1 second")
        const heartbeat = tick % Math.max(1, Math.floor(ttlMs / 3000)) === 0
        for (const s of buckets.values()) {
          if (s.degraded) continue
          if (s.dirty) yield* resend(s)
          // pub/sub is lossy: while waiters are parked, or this process holds settings a lost
          // bucket would forget (a pause, a level), look again every second
          const holds = s.own.scale !== undefined || s.own.levels.size > 0
          if (heartbeat || holds || s.first < s.reserved.length) yield* Effect.ignore(refresh(s))
        }
      }
    })

    yield* Effect.forkScoped(listen)
    yield* Effect.forkScoped(housekeeping)

    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        closed = true
        const releases: Array<Effect.Effect<void>> = []
        for (const s of buckets.values()) {
          for (const waiter of [...s.inflight, ...s.pending, ...s.reserved.slice(s.first)]) {
            if (waiter.status !== Status.Waiting) continue
            waiter.status = Status.Cancelled
            Deferred.doneUnsafe(waiter.deferred, Exit.interrupt())
            if (waiter.gen !== "") {
              releases.push(Effect.ignore(control(s, "release", waiter.ticket, waiter.tokens, waiter.gen)))
            }
          }
          s.local.waiting = 0
          const lease = s.lease
          s.lease = undefined
          if (lease !== undefined && lease.end > lease.next) {
            releases.push(Effect.ignore(control(s, "release", lease.end, lease.end - lease.next, lease.gen)))
          }
        }
        // best effort: the reservations of this process need not wait for the keys' TTL
        yield* Effect.all(releases, { concurrency: "unbounded", discard: true })
        for (const remove of unregister) remove()
      })
    )

    // ---- the service

    const cancel = (s: Shared, waiter: Waiter): void => {
      if (waiter.status === Status.Granted) {
        // granted but interrupted before it resumed: the tokens go back
        B.stats(s.local).returned += waiter.tokens
        if (waiter.gen !== "") release(s, waiter.ticket, waiter.tokens, waiter.gen)
        return
      }
      if (waiter.status !== Status.Waiting) return
      waiter.status = Status.Cancelled
      s.local.waiting--
      // a reserved waiter gives its reservation back; one in a batch in flight, when the reply comes
      if (waiter.gen !== "") {
        release(s, waiter.ticket, waiter.tokens, waiter.gen)
        retime(s)
      }
    }

    const park = (s: Shared, tokens: number): Effect.Effect<void, AcquireError> =>
      Effect.uninterruptibleMask((restore) => {
        if (closed) return Effect.fail(new CoordinatorClosed({ provider: s.name }))
        const waiter: Waiter = {
          tokens,
          since: nowMs() / 1000,
          deferred: Deferred.makeUnsafe<void, AcquireError>(),
          status: Status.Waiting,
          ticket: 0,
          gen: ""
        }
        s.local.waiting++
        if (s.degraded) viaFallback(s, waiter)
        else {
          s.pending.push(waiter)
          startFlush(s)
        }
        return restore(Deferred.await(waiter.deferred)).pipe(
          Effect.onInterrupt(() => Effect.sync(() => cancel(s, waiter)))
        )
      })

    const admit = (provider: string, tokens: number): Shared | AcquireError => {
      if (closed) return new CoordinatorClosed({ provider })
      const s = buckets.get(provider)
      if (s === undefined) return new UnknownProvider({ provider })
      meter(s)
      return admitLocal(s.local, provider, tokens, nowMs() / 1000) ?? s
    }

    const withShared = <E>(
      provider: string,
      what: string,
      f: (s: Shared, at: number) => Effect.Effect<void, E> | void
    ): Effect.Effect<void, E> =>
      Effect.suspend(() => {
        const s = buckets.get(provider)
        if (s === undefined) {
          return Effect.logWarning(`provider ${JSON.stringify(provider)} is not registered, ignoring ${what}`)
        }
        return f(meter(s), nowMs() / 1000) ?? Effect.void
      })

    // waiters of this process in line when its breaker opens or a global cooldown starts
    const withdrawAll = (s: Shared, error: AcquireError): void => {
      for (const waiter of [...s.pending, ...s.reserved.slice(s.first)]) {
        if (waiter.status !== Status.Waiting) continue
        cancel(s, waiter)
        Deferred.doneUnsafe(waiter.deferred, Exit.fail(error))
      }
    }

    const coordinator: RateCoordinator["Service"] = {
      registerProvider: (name, options = {}) =>
        Effect.gen(function*() {
          const validated = validate(name, options)
          if (Result.isFailure(validated)) return yield* validated.failure
          const config = validated.success
          const head: Scripts.Head = {
            base: config.refillRate,
            burst: config.capacity,
            ttlMs,
            channel,
            provider: name
          }
          let s = buckets.get(name)
          if (s === undefined) {
            const tag = `{${prefix}:rl:${name}}`
            s = new Shared(name, [`${tag}:b`, `${tag}:c`], new B.Bucket(config, nowMs() / 1000), head)
            buckets.set(name, s)
          } else {
            s.local.config = config
            s.head = head
          }
          if (fallback !== undefined) {
            const share = (policy as { readonly local: number }).local
            yield* Effect.orDie(fallback.registerProvider(name, {
              ...options,
              capacity: Math.max(1, Math.floor(config.capacity * share)),
              refillRate: config.refillRate * share
            }))
          }
          const result = yield* Effect.result(control(s, "configure", config.refillRate, config.capacity))
          if (Result.isFailure(result)) {
            // the scripts create the bucket from this configuration when Redis is back
            return yield* Effect.logWarning(
              `registered shared provider ${name} while its Redis is unavailable: capacity ${config.capacity}, ` +
                `${config.refillRate}/s`,
              result.failure.cause
            )
          }
          const reply = result.success
          adopt(s, reply, nowMs())
          if (reply[0] === 1) {
            const [burst, base] = reply[12].split("|")
            return yield* Effect.logWarning(
              `shared provider ${name} was registered with other options (capacity ${burst}, ${base}/s); ` +
                `now capacity ${config.capacity}, ${config.refillRate}/s for every process`
            )
          }
          yield* Effect.logDebug(
            `registered shared provider ${name}: capacity ${config.capacity}, ${config.refillRate}/s`
          )
        }),

      acquire: (provider, tokens = 1) =>
        Effect.suspend(() => {
          const s = admit(provider, tokens)
          if (!(s instanceof Shared)) return Effect.fail(s)
          if (s.local.openUntil !== undefined) B.claimProbe(s.local, nowMs() / 1000)
          if (s.local.waiting === 0 && fromLease(s, tokens)) {
            const stats = B.stats(s.local)
            stats.granted += tokens
            stats.immediate++
            return Effect.void
          }
          return park(s, tokens)
        }),

      tryAcquire: (provider, tokens = 1) =>
        Effect.gen(function*() {
          const s = admit(provider, tokens)
          if (!(s instanceof Shared)) return yield* Effect.fail(s)
          // never ahead of this process's own line
          if (s.local.waiting > 0) return false
          if (s.degraded) return yield* fallback!.tryAcquire(provider, tokens)
          const result = yield* Effect.result(call(s, acquireScript(s.keys, s.head, tokens, "try", 0)))
          if (Result.isFailure(result)) {
            if (policy === "allow") return true
            if (fallback !== undefined) {
              degrade(s)
              return yield* fallback.tryAcquire(provider, tokens)
            }
            return yield* result.failure
          }
          adopt(s, result.success, nowMs())
          const granted = result.success[0] === 1
          if (granted) {
            const stats = B.stats(s.local)
            stats.granted += tokens
            stats.immediate++
            if (s.local.openUntil !== undefined) B.claimProbe(s.local, nowMs() / 1000)
          }
          return granted
        }),

      setBudgetScale: (provider, scale) =>
        Number.isFinite(scale)
          ? withShared(provider, "scale adjustment", (s) => apply(s, ["scale", clampScale(scale), ""]))
          : Effect.fail(new InvalidScale({ provider, scale })),

      setGlobalPressure: (provider, level) =>
        Effect.suspend(() => {
          const parsed = parseLevel(level)
          if (Result.isFailure(parsed)) return Effect.fail(parsed.failure)
          const next = parsed.success
          return withShared(provider, "pressure state", (s) => {
            s.local.pressure = next
            return apply(s, ["pressure", next, ""])
          })
        }),

      state: (provider) =>
        Effect.gen(function*() {
          const s = buckets.get(provider)
          if (s === undefined) return yield* new UnknownProvider({ provider })
          const result = yield* Effect.result(control(s, "state"))
          let available = 0
          if (Result.isSuccess(result)) {
            adopt(s, result.success, nowMs())
            available = Math.max(0, Number(result.success[1]) - Number(result.success[3]))
          }
          const at = nowMs() / 1000
          const state: ProviderState = {
            provider,
            capacity: s.local.config.capacity,
            baseRate: s.local.config.refillRate,
            rate: s.local.rate,
            scale: s.local.scale,
            pressure: s.local.pressure,
            available,
            waiters: s.local.waiting,
            circuit: B.circuitState(s.local, at),
            inCooldown: B.cooldownRemaining(s.local, "global", at) > 0
          }
          return state
        }),

      providers: Effect.sync(() => Array.from(buckets.keys())),

      recordFailure: (provider) =>
        withShared(provider, "failure", (s, at) => {
          if (!B.recordFailure(s.local, at)) return
          const retryAfterSec = s.local.config.breakerTimeoutSec
          withdrawAll(s, new CircuitOpen({ provider, retryAfterSec, probing: false }))
          return Effect.logWarning(`circuit opened for provider ${provider} for ${retryAfterSec} s`)
        }),

      recordSuccess: (provider) =>
        Effect.sync(() => {
          const s = buckets.get(provider)
          if (s !== undefined) B.recordSuccess(s.local, nowMs() / 1000)
        }),

      triggerCooldown: (provider, scope, durationSec) =>
        durationSec !== undefined && !positive(durationSec)
          ? Effect.fail(new InvalidCooldown({ provider, scope, durationSec }))
          : withShared(provider, "cooldown", (s, at) => {
            const duration = durationSec ?? s.local.config.cooldownSec
            ;(s.local.cooldowns ??= new Map()).set(scope, at + duration)
            if (scope === "global") withdrawAll(s, new ProviderInCooldown({ provider, remainingSec: duration }))
            return Effect.logWarning(`provider ${provider} cooldown ${scope} for ${duration} s`)
          })
    }

    const levels: CoordinatorLevels["Service"] = {
      report: (provider, coordinatorId, level, scale) =>
        withShared(provider, "coordinator level", (s) => {
          const parsed = parseLevel(level)
          if (Result.isFailure(parsed) || !(Number.isFinite(scale) && scale >= 0 && scale <= 1)) {
            return Effect.logWarning(
              `shared bucket ${s.name}: ignoring coordinator ${JSON.stringify(coordinatorId)}'s level ` +
                `${JSON.stringify(level)} at scale ${scale} (a level ok|soft|hard and a scale in [0, 1] expected)`
            )
          }
          return apply(s, ["level", coordinatorId, parsed.success, scale, ""])
        }),
      forget: (provider, coordinatorId) =>
        withShared(provider, "coordinator level", (s) => {
          // only what this process reported: a newer report of another process stays
          const own = s.own.levels.get(coordinatorId)
          if (own === undefined || own[0] === undefined) return
          return apply(s, ["forget", coordinatorId, own[2]])
        }),
      clear: (provider, coordinatorId) =>
        Effect.suspend(() => {
          const s = buckets.get(provider)
          if (s === undefined) return Effect.succeed(false)
          return Effect.map(
            Effect.result(control(meter(s), "forget", coordinatorId, "")),
            (result) => {
              if (Result.isFailure(result)) return false
              record(s, ["forget", coordinatorId, ""], result.success[12])
              adopt(s, result.success, nowMs())
              return result.success[0] === 1
            }
          )
        })
    }

    return [coordinator, levels] as const
  })
