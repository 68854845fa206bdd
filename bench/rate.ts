/**
 * RateCoordinator: acquire throughput (uncontended and 100 fibers) next to
 * Effect's own persistence/RateLimiter memory store and a bare JavaScript
 * token bucket; pacing accuracy on the real clock; memory per provider.
 */
import { Duration, Effect, Exit, Metric, Scope } from "effect"
import * as RateLimiter from "effect/persistence/RateLimiter"
import { RateCoordinator } from "market-data-pipeline"
import { formatRate, runPromise, runSync, table } from "./harness.ts"

const unlimited = { capacity: 1e15, refillRate: 1e15 }

/** Runs `n` operations per round in rounds of ~0.3 s; median ops/s. */
const rate = async (name: string, round: (n: number) => Promise<void>): Promise<readonly [string, number]> => {
  let n = 10_000
  for (;;) {
    const start = performance.now()
    await round(n)
    if (performance.now() - start > 150) break
    n *= 2
  }
  const rates: Array<number> = []
  for (let i = 0; i < 7; i++) {
    const start = performance.now()
    await round(n)
    rates.push(n / ((performance.now() - start) / 1000))
  }
  rates.sort((a, b) => a - b)
  return [name, rates[3]!]
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

const throughput = async () => {
  // the coordinator lives in this scope for the whole benchmark, closed at the end
  const scope = runSync(Scope.make())
  const coordinator = await runPromise(Effect.gen(function*() {
    const c = yield* Scope.provide(RateCoordinator.make, scope)
    yield* c.registerProvider("p", unlimited)
    return c
  }))
  const limiter = await runPromise(
    RateLimiter.make.pipe(Effect.provide(RateLimiter.layerStoreMemory))
  )
  const consume = limiter.consume({
    algorithm: "token-bucket",
    onExceeded: "delay",
    window: "1 second",
    limit: 1e15,
    key: "p"
  }).pipe(Effect.flatMap((result) => Duration.isZero(result.delay) ? Effect.void : Effect.sleep(result.delay)))
  const loop = (n: number, effect: Effect.Effect<unknown, unknown>) =>
    Effect.gen(function*() {
      for (let i = 0; i < n; i++) yield* effect
    })
  const contended = (n: number, effect: Effect.Effect<unknown, unknown>) =>
    Effect.forEach(Array.from({ length: 100 }), () => loop(Math.ceil(n / 100), effect), {
      concurrency: "unbounded",
      discard: true
    })
  const bare = new BareBucket(1e15, 1e15)
  const acquire = coordinator.acquire("p")
  const results = [
    await rate("RateCoordinator.acquire, 1 fiber", (n) => runPromise(loop(n, acquire))),
    await rate("RateCoordinator.acquire, 100 fibers", (n) => runPromise(contended(n, acquire))),
    await rate("effect/persistence/RateLimiter (memory), 1 fiber", (n) => runPromise(loop(n, consume))),
    await rate("effect/persistence/RateLimiter (memory), 100 fibers", (n) => runPromise(contended(n, consume))),
    await rate("bare JavaScript token bucket (floor)", async (n) => {
      for (let i = 0; i < n; i++) bare.take(1)
    })
  ]
  await runPromise(Scope.close(scope, Exit.void))
  const ours = results[0]![1]
  const python = 710_000
  table("RateCoordinator: acquire throughput, effectively unlimited bucket (Python reference: 710k/s)", [
    ["case", "rate", "ours ÷ this", "vs Python"],
    ...results.map(([name, r]) => [name, formatRate(r), (ours / r).toFixed(2), `${(r / python).toFixed(2)}x`] as const)
  ])
}

const accuracy = async () => {
  const grants: Array<number> = []
  const seconds = 3
  await runPromise(Effect.scoped(Effect.gen(function*() {
    const c = yield* RateCoordinator.make
    yield* c.registerProvider("p", { capacity: 1, refillRate: 1000 })
    const start = performance.now()
    const worker = Effect.gen(function*() {
      while (performance.now() - start < seconds * 1000) {
        yield* c.acquire("p")
        grants.push(performance.now() - start)
      }
    })
    yield* Effect.forEach(Array.from({ length: 10 }), () => worker, { concurrency: "unbounded", discard: true })
  })))
  const halved: Array<number> = []
  await runPromise(Effect.scoped(Effect.gen(function*() {
    const c = yield* RateCoordinator.make
    yield* c.registerProvider("p", { capacity: 1, refillRate: 1000 })
    const start = performance.now()
    let scaled = false
    const worker = Effect.gen(function*() {
      while (performance.now() - start < seconds * 1000) {
        if (!scaled && performance.now() - start >= seconds * 500) {
          scaled = true
          yield* c.setBudgetScale("p", 0.5)
        }
        yield* c.acquire("p")
        halved.push(performance.now() - start)
      }
    })
    yield* Effect.forEach(Array.from({ length: 10 }), () => worker, { concurrency: "unbounded", discard: true })
  })))
  const achieved = (times: ReadonlyArray<number>, from: number, to: number) =>
    times.filter((t) => t > from && t <= to).length / ((to - from) / 1000)
  const maxGap = (times: ReadonlyArray<number>) => {
    let gap = 0
    for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i]! - times[i - 1]!)
    return gap
  }
  const steady = achieved(grants, 100, seconds * 1000)
  const secondHalf = achieved(halved, seconds * 500 + 100, seconds * 1000)
  table("RateCoordinator: pacing on the real clock (capacity 1, 1000/s, 10 fibers, 3 s; Python reaches 85%)", [
    ["run", "achieved", "of configured", "max gap between grants"],
    ["1000/s throughout", `${steady.toFixed(0)}/s`, `${(steady / 10).toFixed(2)}%`, `${maxGap(grants).toFixed(2)} ms`],
    [
      "scale 0.5 at 1.5 s (second half)",
      `${secondHalf.toFixed(0)}/s`,
      `${(secondHalf / 5).toFixed(2)}%`,
      `${maxGap(halved.filter((t) => t > seconds * 500 + 100)).toFixed(2)} ms`
    ]
  ])
}

const memory = async () => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) {
    console.log("\n(memory: run with node --expose-gc, as npm run bench does)")
    return
  }
  const count = 10_000
  const measure = async (register: boolean) => {
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
  const empty = await measure(false)
  const full = await measure(true)
  const mib = (full - empty) / 1024 / 1024
  table("RateCoordinator: memory for 10,000 registered providers (Python: about 18 MiB)", [
    ["what", "heap"],
    ["10,000 providers, metrics included", `${mib.toFixed(2)} MiB (${((full - empty) / count).toFixed(0)} B each)`]
  ])
}

export const run = async (): Promise<void> => {
  await throughput()
  await accuracy()
  await memory()
}
