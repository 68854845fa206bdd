/**
 * A small benchmark harness: each case runs in timed rounds after a warm-up,
 * and reports the median round in operations per second. Also what the
 * feedback-loop benchmarks share: their events, a controller that notes when
 * an adjustment is applied, and percentiles of latency samples; and how they
 * run effects: with the library's log lines off unless asked for.
 */
import { Effect, type Fiber, Layer, Logger, type LogLevel, References, Result } from "effect"
import {
  type BackpressureLevel,
  type FeedbackEvent,
  type RateAdjustment,
  RateController,
  RateCoordinator
} from "market-data-pipeline"
import * as Logging from "../src/service/Logging.ts"

export interface Case {
  readonly name: string
  /** Runs the operation `n` times; returns something so the work is not dead code. */
  readonly run: (n: number) => unknown
}

export interface Measured {
  readonly name: string
  readonly opsPerSecond: number
}

let sink: unknown

const round = (c: Case, n: number): number => {
  const start = performance.now()
  sink = c.run(n)
  return (performance.now() - start) / 1000
}

export const measure = (c: Case, options: { readonly seconds?: number; readonly rounds?: number } = {}): Measured => {
  const rounds = options.rounds ?? 7
  const target = (options.seconds ?? 1.5) / rounds
  let n = 1000
  // warm up and size a round to the target duration
  for (;;) {
    const elapsed = round(c, n)
    if (elapsed >= target / 2) break
    n *= 2
  }
  const rates: Array<number> = []
  for (let i = 0; i < rounds; i++) rates.push(n / round(c, n))
  rates.sort((a, b) => a - b)
  return { name: c.name, opsPerSecond: rates[Math.floor(rates.length / 2)]! }
}

export const consumed = (): unknown => sink

export const formatRate = (opsPerSecond: number): string =>
  opsPerSecond >= 1e6 ? `${(opsPerSecond / 1e6).toFixed(2)}M/s` : `${(opsPerSecond / 1e3).toFixed(0)}k/s`

export const table = (title: string, rows: ReadonlyArray<readonly [string, string, ...Array<string>]>): void => {
  console.log(`\n## ${title}`)
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? "").length)))
  for (const row of rows) console.log(row.map((cell, i) => (cell ?? "").padEnd(widths[i]!)).join("  "))
}

/** A store's report of `level` for `coordinatorId`; `i` numbers it (queue size and ts). */
export const feedbackEvent = (coordinatorId: string, level: BackpressureLevel, i: number): FeedbackEvent => ({
  coordinatorId,
  queueSize: i % 1000,
  capacity: 1000,
  level,
  source: "store",
  ts: 1700000000 + i / 1000
})

/**
 * A RateController that applies each adjustment to the RateCoordinator, then
 * calls `applied` with it: the time a new scale becomes visible.
 */
export const timedController = (applied: (adjustment: RateAdjustment) => void) =>
  Layer.effect(
    RateController,
    Effect.gen(function*() {
      const coordinator = yield* RateCoordinator
      return RateController.of({
        apply: (adjustment) =>
          Effect.andThen(
            coordinator.setGlobalPressure(adjustment.provider, adjustment.reason),
            coordinator.setBudgetScale(adjustment.provider, adjustment.scale)
          ).pipe(
            Effect.orDie,
            Effect.andThen(Effect.sync(() => applied(adjustment)))
          )
      })
    })
  )

/** The `q` quantile (0 to 1) of samples sorted in ascending order. */
export const percentile = (sorted: ArrayLike<number>, q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!

let levelFrom: string | undefined
let level: LogLevel.LogLevel = "None"

/**
 * The minimum level of the log lines the benchmarks print (on stderr, apart from the tables):
 * `MDP_LOG_LEVEL` (`npm run bench -- --verbose` sets it to `info`), none by default. Throws on
 * a value that names no level.
 */
export const logLevel = (): LogLevel.LogLevel => {
  const value = process.env.MDP_LOG_LEVEL ?? "none"
  if (value !== levelFrom) {
    const parsed = Logging.parseLevel(value)
    if (Result.isFailure(parsed)) throw new Error(parsed.failure.message)
    level = parsed.success
    levelFrom = value
  }
  return level
}

/** `effect` logging at {@link logLevel}, on stderr. */
export const logged = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  effect.pipe(
    Effect.provideService(References.MinimumLogLevel, logLevel()),
    Effect.provideService(Logger.LogToStderr, true)
  )

/** `Effect.runPromise`, {@link logged}. */
export const runPromise = <A, E>(effect: Effect.Effect<A, E>): Promise<A> => Effect.runPromise(logged(effect))

/** `Effect.runSync`, {@link logged}. */
export const runSync = <A, E>(effect: Effect.Effect<A, E>): A => Effect.runSync(logged(effect))

/** `Effect.runFork`, {@link logged}. */
export const runFork = <A, E>(effect: Effect.Effect<A, E>): Fiber.Fiber<A, E> => Effect.runFork(logged(effect))
