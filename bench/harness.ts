/**
 * A small benchmark harness: each case runs in timed rounds after a warm-up,
 * and reports the median round in operations per second. The result
 * collector: every suite records its measures as rows ({@link record},
 * {@link table}, {@link note}); the tables printed are rendered from them,
 * and `--json` prints them all. Also what the feedback-loop benchmarks share:
 * their events, a controller that notes when an adjustment is applied, and
 * percentiles of latency samples; and how they run effects: with the
 * library's log lines off unless asked for.
 */
import { Effect, type Fiber, Layer, Logger, type LogLevel, References, Result } from "effect"
import {
  type BackpressureLevel,
  type FeedbackEvent,
  type RateAdjustment,
  RateController,
  RateCoordinator
} from "market-data-pipeline"
import * as os from "node:os"
import { format } from "node:util"
import * as Logging from "../src/service/Logging.ts"
import {
  type Alternative,
  type Kind,
  type Machine,
  meets,
  type Note,
  renderText,
  type Row,
  tableCells,
  type Target,
  type Unit
} from "./report.ts"

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

/** Operations per second as the tables show them: `7.40M/s`, `832k/s`, `2.3k/s`, `185/s`. */
export { formatRate } from "./report.ts"

// ---------------------------------------------------------------------------------------------
// the result collector

const rows: Array<Row> = []
const notes: Array<Note> = []
let suite = ""
let quiet = false

/** The suite whose rows are being recorded (set by bench/index.ts before each suite). */
export const beginSuite = (name: string): void => {
  suite = name
}

/** With `--json`: the tables and notes go to stderr, so that stdout is the JSON document alone. */
export const setJsonMode = (json: boolean): void => {
  quiet = json
}

/** A line of human-readable output: stdout, or stderr with `--json`. */
export const print = (...args: ReadonlyArray<unknown>): void => {
  const line = `${format(...args)}\n`
  if (quiet) process.stderr.write(line)
  else process.stdout.write(line)
}

/** Every row recorded so far. */
export const recorded = (): ReadonlyArray<Row> => rows

/** Every note recorded so far. */
export const recordedNotes = (): ReadonlyArray<Note> => notes

/** This machine: node, os, cpu, cores, memory, and the date of the run. */
export const machine = (): Machine => {
  const cpus = os.cpus()
  return {
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    cpu: cpus[0]?.model.trim() ?? "unknown",
    cores: cpus.length,
    memoryBytes: os.totalmem(),
    date: new Date().toISOString()
  }
}

/** A target on our figure. */
export const target = (op: Target["op"], bound: number, upper?: number): Omit<Target, "met"> =>
  upper === undefined ? { on: "value", op, bound } : { on: "value", op, bound, upper }

/** A target on ours ÷ an alternative. */
export const ratioTarget = (op: Target["op"], bound: number): Omit<Target, "met"> => ({ on: "ratio", op, bound })

/** An alternative to our figure: its name, kind, figure (same unit as ours unless given) and an optional target. */
export interface AlternativeInput {
  readonly name: string
  readonly kind: Kind
  readonly value: number | string | null
  readonly unit?: Unit
  readonly target?: Omit<Target, "met">
}

const settle = (t: Omit<Target, "met">, figure: number | null): Target => ({
  ...t,
  met: meets(figure, t.op, t.bound, t.upper)
})

/**
 * Records one measure of the current suite in table `tableTitle`: our figure, its alternatives
 * (ours ÷ each is computed when both are numbers in the same unit) and targets.
 */
export const record = (
  tableTitle: string,
  measure: string,
  value: number | string | null,
  unit: Unit,
  options: { readonly alternatives?: ReadonlyArray<AlternativeInput>; readonly target?: Omit<Target, "met"> } = {}
): Row => {
  const alternatives = (options.alternatives ?? []).map((input): Alternative => {
    const altUnit = input.unit ?? unit
    const ratio = typeof value === "number" && typeof input.value === "number" && altUnit === unit &&
        input.value !== 0
      ? value / input.value
      : null
    const base = { name: input.name, kind: input.kind, value: input.value, unit: altUnit, ratio }
    return input.target === undefined ? base : { ...base, target: settle(input.target, ratio) }
  })
  const base = { suite, table: tableTitle, measure, value, unit, alternatives }
  const row: Row = options.target === undefined
    ? base
    : { ...base, target: settle(options.target, typeof value === "number" ? value : null) }
  rows.push(row)
  return row
}

/** Prints table `title` of the current suite, rendered from its recorded rows. */
export const show = (title: string): void => {
  const mine = rows.filter((row) => row.suite === suite && row.table === title)
  if (mine.length > 0) print(renderText(title, tableCells(mine)))
}

/**
 * Records a grid table (a header, then rows of text cells: the first names the row) and prints
 * it: for the suites whose figures are not compared with alternatives.
 */
export const table = (title: string, cells: ReadonlyArray<readonly [string, string, ...Array<string>]>): void => {
  const header = cells[0]!
  for (const line of cells.slice(1)) {
    for (let i = 1; i < header.length; i++) {
      rows.push({
        suite,
        table: title,
        measure: line[0],
        rowHeader: header[0],
        column: header[i]!,
        value: line[i] ?? "",
        unit: "text",
        alternatives: []
      })
    }
  }
  show(title)
}

/** Records and prints a note of the current suite (a caveat, a skipped case). */
export const note = (text: string): void => {
  notes.push({ suite, text })
  print(text)
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
