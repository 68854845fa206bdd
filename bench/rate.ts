/**
 * RateCoordinator: `acquire` and `tryAcquire` throughput (one fiber and 100
 * fibers, each call building its effect anew) next to a bare JavaScript token
 * bucket, Effect's floor (`Effect.sync` of the same bucket per call), the
 * peers (rate-limiter-flexible, limiter, bottleneck, Effect's own
 * persistence/RateLimiter memory store) and the Python reference's quoted
 * figure; pacing on the real clock next to `limiter`; memory per provider
 * and per parked waiter, next to a fiber parked on its own Deferred.
 */
import Bottleneck from "bottleneck"
import { Deferred, Duration, Effect, Exit, Fiber, Metric, Scope } from "effect"
import * as RateLimiter from "effect/persistence/RateLimiter"
import { RateLimiter as LimiterRateLimiter, TokenBucket as LimiterTokenBucket } from "limiter"
import { RateCoordinator } from "market-data-pipeline"
import { RateLimiterMemory } from "rate-limiter-flexible"
import {
  type AlternativeInput,
  note,
  percentile,
  ratioTarget,
  record,
  runPromise,
  runSync,
  show,
  target
} from "./harness.ts"

const unlimited = { capacity: 1e15, refillRate: 1e15 }

/**
 * Ops/s of each case, measured side by side: warm-up rounds size each case's
 * round to over 100 ms, then 9 rounds take turns across the cases (so a
 * slower or busier stretch of the machine falls on all of them alike), and
 * each case reports its median round.
 */
const interleaved = async <K extends string>(
  cases: Record<K, (n: number) => Promise<unknown>>
): Promise<Record<K, number>> => {
  const names = Object.keys(cases) as Array<K>
  const sizes = {} as Record<K, number>
  for (const name of names) {
    let n = 100
    for (;;) {
      const start = performance.now()
      await cases[name](n)
      if (performance.now() - start > 100) break
      n *= 2
    }
    sizes[name] = n
  }
  const rounds = Object.fromEntries(names.map((name) => [name, [] as Array<number>])) as Record<K, Array<number>>
  for (let round = 0; round < 9; round++) {
    for (const name of names) {
      const start = performance.now()
      await cases[name](sizes[name])
      rounds[name].push(sizes[name] / ((performance.now() - start) / 1000))
    }
  }
  return Object.fromEntries(names.map((name) => [name, rounds[name].sort((a, b) => a - b)[4]!])) as Record<K, number>
}

/** The floor: the same arithmetic as a token bucket, without Effect. */
class BareBucket {
  tokens: number
  last = performance.now() / 1000
  readonly capacity: number
  readonly rate: number
  constructor(capacity: number, rate: number) {
    this.capacity = capacity
    this.rate = rate
    this.tokens = capacity
  }
  take(n: number): boolean {
    const now = performance.now() / 1000
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.last) * this.rate)
    this.last = now
    if (this.tokens < n) return false
    this.tokens -= n
    return true
  }
}

const fibers = 100

/** `n` calls of `call` in one fiber: each call builds its effect anew. */
const loop = (n: number, call: () => Effect.Effect<unknown, unknown>) =>
  Effect.gen(function*() {
    for (let i = 0; i < n; i++) yield* call()
  })

const contended = (n: number, call: () => Effect.Effect<unknown, unknown>) =>
  Effect.forEach(Array.from({ length: fibers }), () => loop(Math.ceil(n / fibers), call), {
    concurrency: "unbounded",
    discard: true
  })

/** `n` awaited calls in one async loop. */
const loopAsync = async (n: number, call: () => Promise<unknown>) => {
  for (let i = 0; i < n; i++) await call()
}

/** `n` awaited calls spread over 100 concurrent async loops: a peer's "100 fibers". */
const contendedAsync = (n: number, call: () => Promise<unknown>) =>
  Promise.all(Array.from({ length: fibers }, () => loopAsync(Math.ceil(n / fibers), call)))

const throughputTitle = "RateCoordinator: acquire / tryAcquire throughput, effectively unlimited bucket"

const throughput = async () => {
  // the coordinator lives in this scope for the whole benchmark, closed at the end
  const scope = runSync(Scope.make())
  const coordinator = await runPromise(Effect.gen(function*() {
    const c = yield* Scope.provide(RateCoordinator.make, scope)
    yield* c.registerProvider("p", unlimited)
    return c
  }))
  const effectLimiter = await runPromise(
    RateLimiter.make.pipe(Effect.provide(RateLimiter.layerStoreMemory))
  )
  const consume = () =>
    effectLimiter.consume({
      algorithm: "token-bucket",
      onExceeded: "delay",
      window: "1 second",
      limit: 1e15,
      key: "p"
    }).pipe(Effect.flatMap((result) => Duration.isZero(result.delay) ? Effect.void : Effect.sleep(result.delay)))
  const bare = new BareBucket(1e15, 1e15)
  const synced = new BareBucket(1e15, 1e15)
  const rlf = new RateLimiterMemory({ points: Number.MAX_SAFE_INTEGER, duration: 1 })
  const limiter = new LimiterRateLimiter({ tokensPerInterval: 1e15, interval: "second" })
  const bottleneck = new Bottleneck()
  const nothing = () => Promise.resolve()

  const acquire = () => coordinator.acquire("p")
  const tryAcquire = () => coordinator.tryAcquire("p")
  const sync = () => Effect.sync(() => synced.take(1))

  const measured = await interleaved({
    oursAcquire1: (n) => runPromise(loop(n, acquire)),
    oursAcquire100: (n) => runPromise(contended(n, acquire)),
    oursTry1: (n) => runPromise(loop(n, tryAcquire)),
    oursTry100: (n) => runPromise(contended(n, tryAcquire)),
    bare: async (n) => {
      for (let i = 0; i < n; i++) bare.take(1)
    },
    sync1: (n) => runPromise(loop(n, sync)),
    sync100: (n) => runPromise(contended(n, sync)),
    rlf1: (n) => loopAsync(n, () => rlf.consume("p")),
    rlf100: (n) => contendedAsync(n, () => rlf.consume("p")),
    limiter1: (n) => loopAsync(n, () => limiter.removeTokens(1)),
    limiter100: (n) => contendedAsync(n, () => limiter.removeTokens(1)),
    bottleneck1: (n) => loopAsync(n, () => bottleneck.schedule(nothing)),
    bottleneck100: (n) => contendedAsync(n, () => bottleneck.schedule(nothing)),
    effect1: (n) => runPromise(loop(n, consume)),
    effect100: (n) => runPromise(contended(n, consume))
  })
  // an unlimited bucket never refuses: the tryAcquire rounds measured grants
  if (!(await runPromise(tryAcquire()))) throw new Error("tryAcquire refused on an unlimited bucket")
  await runPromise(Scope.close(scope, Exit.void))
  await bottleneck.stop({ dropWaitingJobs: false })

  const alternatives = (concurrent: boolean): ReadonlyArray<AlternativeInput> => {
    const m = measured
    const c = concurrent
    const peer = (name: string, value: number): AlternativeInput => ({
      name,
      kind: "peer",
      value,
      target: ratioTarget(">", 1)
    })
    return [
      { name: "bare JavaScript token bucket", kind: "floor", value: m.bare },
      {
        name: "Effect.sync(() => bucket.take(1)) per call",
        kind: "floor",
        value: c ? m.sync100 : m.sync1,
        target: ratioTarget("≥", 0.85)
      },
      peer("rate-limiter-flexible 11.4 RateLimiterMemory.consume (await)", c ? m.rlf100 : m.rlf1),
      peer("limiter 4.1 removeTokens (await)", c ? m.limiter100 : m.limiter1),
      peer("bottleneck 2.19.5 schedule, no limits (await)", c ? m.bottleneck100 : m.bottleneck1),
      peer("Effect 4.1 persistence/RateLimiter, memory store", c ? m.effect100 : m.effect1),
      ...(c ? [] : [{ name: "Python 3.11 reference acquire", kind: "quoted", value: 709_000 } as const])
    ]
  }
  const bareNote = "(bare bucket: one loop, no fibers)"
  record(throughputTitle, "rc.acquire(\"p\") per call, 1 fiber", measured.oursAcquire1, "ops/s", {
    alternatives: alternatives(false)
  })
  record(throughputTitle, "rc.tryAcquire(\"p\") per call, 1 fiber", measured.oursTry1, "ops/s", {
    alternatives: alternatives(false)
  })
  record(throughputTitle, `rc.acquire("p") per call, ${fibers} fibers`, measured.oursAcquire100, "ops/s", {
    alternatives: alternatives(true)
  })
  record(throughputTitle, `rc.tryAcquire("p") per call, ${fibers} fibers`, measured.oursTry100, "ops/s", {
    alternatives: alternatives(true)
  })
  show(throughputTitle)
  note(`${bareNote}; peers' "${fibers} fibers" are ${fibers} concurrent async loops`)
  note(
    "(bottleneck with no limits still yields to setTimeout(0) several times per job, in its local datastore's " +
      "yieldLoop: one awaited loop runs at timer speed)"
  )
}

interface Pacing {
  readonly achieved: number
  readonly gaps: { readonly p50: number; readonly p99: number; readonly max: number }
  readonly excess: number
}

/**
 * Pacing figures of sorted grant times (ms from the start) at `perSecond`, burst `capacity`:
 * achieved % of the rate over (from, to]; gaps between consecutive grants; the largest excess
 * over any interval [t_i, t_j]: (j − i + 1) − capacity − round(rate × (t_j − t_i)).
 */
const pacing = (
  times: ReadonlyArray<number>,
  perSecond: number,
  capacity: number,
  from: number,
  to: number
): Pacing => {
  const inWindow = times.filter((t) => t > from && t <= to)
  const achieved = inWindow.length / ((to - from) / 1000) / perSecond * 100
  const gaps = new Float64Array(Math.max(0, inWindow.length - 1))
  for (let i = 1; i < inWindow.length; i++) gaps[i - 1] = inWindow[i]! - inWindow[i - 1]!
  gaps.sort()
  let excess = 0
  const perMs = perSecond / 1000
  for (let i = 0; i < times.length; i++) {
    for (let j = i + capacity; j < times.length; j++) {
      const over = j - i + 1 - capacity - Math.round(perMs * (times[j]! - times[i]!))
      if (over > excess) excess = over
    }
  }
  return {
    achieved,
    gaps: {
      p50: percentile(gaps, 0.5),
      p99: percentile(gaps, 0.99),
      max: gaps.length > 0 ? gaps[gaps.length - 1]! : 0
    },
    excess
  }
}

const seconds = 3
const callers = 10

/** Our grant times (ms from the start), 10 fibers at 1000/s, capacity 1; `halve`: scale 0.5 at 1.5 s. */
const paceOurs = async (halve: boolean): Promise<Array<number>> => {
  const grants: Array<number> = []
  await runPromise(Effect.scoped(Effect.gen(function*() {
    const c = yield* RateCoordinator.make
    yield* c.registerProvider("p", { capacity: 1, refillRate: 1000 })
    const start = performance.now()
    let scaled = !halve
    const worker = Effect.gen(function*() {
      while (performance.now() - start < seconds * 1000) {
        if (!scaled && performance.now() - start >= seconds * 500) {
          scaled = true
          yield* c.setBudgetScale("p", 0.5)
        }
        yield* c.acquire("p")
        grants.push(performance.now() - start)
      }
    })
    yield* Effect.forEach(Array.from({ length: callers }), () => worker, { concurrency: "unbounded", discard: true })
  })))
  return grants.sort((a, b) => a - b)
}

/** `limiter` 4.1's grant times: its TokenBucket, bucket size 1, 1000/s, 10 concurrent callers. */
const paceLimiter = async (): Promise<Array<number>> => {
  const grants: Array<number> = []
  const bucket = new LimiterTokenBucket({ bucketSize: 1, tokensPerInterval: 1000, interval: "second" })
  const start = performance.now()
  await Promise.all(Array.from({ length: callers }, async () => {
    while (performance.now() - start < seconds * 1000) {
      await bucket.removeTokens(1)
      grants.push(performance.now() - start)
    }
  }))
  return grants.sort((a, b) => a - b)
}

/**
 * What this machine allows any strict pacer: one loop, no event loop, no
 * garbage, reading the clock until each grant is due (the next one a period
 * after the last, as capacity 1 allows nothing sooner). The share it
 * achieves is the ceiling: every moment the process does not run (the OS
 * scheduling other work, a VM's stolen time) delays a grant, and at
 * capacity 1 a late grant cannot be made up without exceeding the bucket.
 */
const paceBare = (): Array<number> => {
  const grants: Array<number> = []
  const start = performance.now()
  let last = -1
  for (;;) {
    const due = last + 1
    let t = performance.now() - start
    while (t < due) t = performance.now() - start
    if (t > seconds * 1000) break
    grants.push(t)
    last = t
  }
  return grants
}

const accuracy = async () => {
  const bare = pacing(paceBare(), 1000, 1, 100, seconds * 1000)
  const ours = pacing(await paceOurs(false), 1000, 1, 100, seconds * 1000)
  const limiter = pacing(await paceLimiter(), 1000, 1, 100, seconds * 1000)
  const halved = await paceOurs(true)
  const secondHalf = pacing(halved.filter((t) => t > seconds * 500 + 100), 500, 1, seconds * 500 + 100, seconds * 1000)
  const title = `RateCoordinator: pacing on the real clock (capacity 1, 1000/s, ${callers} fibers, ${seconds} s)`
  const limiterName = `limiter 4.1 TokenBucket (size 1, 1000/s, ${callers} concurrent callers)`
  const vs = (value: number): AlternativeInput => ({ name: limiterName, kind: "peer", value })
  record(title, "achieved, % of the rate (after the first 100 ms)", ours.achieved, "%", {
    target: target("within", 99.9, 100.1),
    alternatives: [
      {
        name: "bare strict pacer: one JS loop reading the clock until each grant is due (this machine's ceiling)",
        kind: "floor",
        value: bare.achieved
      },
      vs(limiter.achieved),
      { name: "Python 3.11 reference", kind: "quoted", value: 85 }
    ]
  })
  record(title, "gap between consecutive grants, p50", ours.gaps.p50, "ms", { alternatives: [vs(limiter.gaps.p50)] })
  record(title, "gap between consecutive grants, p99", ours.gaps.p99, "ms", {
    target: target("≤", 2),
    alternatives: [vs(limiter.gaps.p99)]
  })
  record(title, "gap between consecutive grants, max", ours.gaps.max, "ms", { alternatives: [vs(limiter.gaps.max)] })
  record(title, "largest excess over any interval (grants beyond capacity + rate × time)", ours.excess, "count", {
    alternatives: [vs(limiter.excess)]
  })
  record(title, "scale 0.5 at 1.5 s: achieved, % of 500/s (second half)", secondHalf.achieved, "%")
  record(title, "scale 0.5 at 1.5 s: max gap (second half)", secondHalf.gaps.max, "ms")
  show(title)
}

const gcOrSkip = (): (() => void) | undefined => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) note("(memory: run with node --expose-gc, as npm run bench does)")
  return gc
}

const memory = async () => {
  const gc = gcOrSkip()
  if (gc === undefined) return
  const count = 10_000
  const measure = async (register: boolean) => {
    // a turn of the event loop first: the previous run's coordinator is only
    // collectable once the scheduler has let go of it, else half the runs
    // read twice the figure
    await new Promise((resolve) => setTimeout(resolve, 10))
    gc()
    gc()
    const before = process.memoryUsage().heapUsed
    const scope = runSync(Scope.make())
    const coordinator = runSync(Scope.provide(RateCoordinator.make, scope))
    if (register) {
      runSync(
        Effect.gen(function*() {
          for (let i = 0; i < count; i++) yield* coordinator.registerProvider(`provider-${i}`)
        }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
      )
    }
    gc()
    gc()
    const after = process.memoryUsage().heapUsed
    runSync(Scope.close(scope, Exit.void))
    return after - before
  }
  await measure(true) // warm up code paths
  const title = "RateCoordinator: memory (heapUsed after 2 gc)"
  for (let run = 1; run <= 3; run++) {
    const empty = await measure(false)
    const full = await measure(true)
    record(title, `10,000 registered providers, metrics included, run ${run}`, (full - empty) / 1024 / 1024, "MiB", {
      target: target("<", 2.5),
      alternatives: [{ name: "Python 3.11 reference", kind: "quoted", value: 18.4 }]
    })
  }
  const waiters = 100_000
  await parkedFloor(gc, 10_000) // warm up
  await parkedOurs(gc, 10_000)
  const floor = await parkedFloor(gc, waiters)
  const ours = await parkedOurs(gc, waiters)
  record(title, "100,000 parked waiters (paused provider), per waiter, its fiber included", ours, "B", {
    target: target("<", 1024),
    alternatives: [{ name: "a fiber parked on Deferred.await of its own Deferred", kind: "floor", value: floor }]
  })
  show(title)
}

const heap = (gc: () => void) =>
  Effect.sync(() => {
    gc()
    gc()
    return process.memoryUsage().heapUsed
  })

/** Bytes per fiber parked in `rc.acquire("p")` on a paused provider (scale 0, bucket emptied first). */
const parkedOurs = (gc: () => void, count: number): Promise<number> =>
  runPromise(Effect.scoped(
    Effect.gen(function*() {
      const c = yield* RateCoordinator.make
      yield* c.registerProvider("p", { capacity: 1, refillRate: 1 })
      yield* c.tryAcquire("p")
      yield* c.setBudgetScale("p", 0)
      const before = yield* heap(gc)
      const parked: Array<Fiber.Fiber<unknown, unknown>> = []
      for (let i = 0; i < count; i++) parked.push(yield* Effect.forkChild(c.acquire("p")))
      while ((yield* c.state("p")).waiters < count) yield* Effect.sleep("1 millis")
      const after = yield* heap(gc)
      yield* Fiber.interruptAll(parked)
      return (after - before) / count
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  ))

/** Bytes per fiber parked on `Deferred.await` of its own Deferred: the least a parked fiber costs. */
const parkedFloor = (gc: () => void, count: number): Promise<number> =>
  runPromise(Effect.gen(function*() {
    let started = 0
    const before = yield* heap(gc)
    const park = Effect.flatMap(Deferred.make<void>(), (deferred) =>
      Effect.andThen(
        Effect.sync(() => {
          started++
        }),
        Deferred.await(deferred)
      ))
    const parked: Array<Fiber.Fiber<unknown, unknown>> = []
    for (let i = 0; i < count; i++) parked.push(yield* Effect.forkChild(park))
    while (started < count) yield* Effect.sleep("1 millis")
    yield* Effect.yieldNow
    const after = yield* heap(gc)
    yield* Fiber.interruptAll(parked)
    return (after - before) / count
  }))

export const run = async (): Promise<void> => {
  await throughput()
  await accuracy()
  await memory()
}
