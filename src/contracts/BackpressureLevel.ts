/**
 * The store's backpressure level (`ok`, `soft`, `hard`): the schema of the
 * wire value, its metric ordinal, and a lenient parser for levels typed by
 * people or read from configuration.
 *
 * Use `BackpressureLevel` (the schema) inside contracts and wherever a level
 * arrives on the wire; use `parseLevel` for a level a person wrote (CLI
 * flags, environment, policy keys, Redis), and `levelOrdinal` to report a
 * level as a number. To decode a whole feedback document, decode a
 * `FeedbackEvent` with `decodeJson` instead.
 *
 * Gotchas:
 * - The schema is strict: only the lower-case strings decode (`"HARD"` is a
 *   `ContractError` in a `FeedbackEvent`); `parseLevel` accepts any case but
 *   does not trim (`" ok"` is an `InvalidPressureLevel`).
 * - The levels are ordered `ok` < `soft` < `hard`; the ordinal (0, 1, 2) is
 *   what the `pipeline_backpressure_state` and
 *   `pipeline_feedback_coordinator_level` gauges report.
 *
 * @since 0.1.0
 * @module
 */
import * as Data from "effect/Data"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"

/**
 * The store's backpressure severity: `ok` (normal), `soft` (approaching
 * capacity, throttle) or `hard` (at capacity, must throttle). Exactly these
 * lower-case strings on the wire, as `market_data_core.telemetry.BackpressureLevel`.
 *
 * @since 0.1.0
 * @category contracts
 */
export const BackpressureLevel: Schema.Literals<readonly ["ok", "soft", "hard"]> = Schema.Literals([
  "ok",
  "soft",
  "hard"
])

/**
 * A level as a value: `"ok" | "soft" | "hard"`.
 *
 * @since 0.1.0
 * @category contracts
 */
export type BackpressureLevel = typeof BackpressureLevel.Type

/**
 * The numeric value metrics use for a level: ok 0, soft 1, hard 2.
 *
 * @since 0.1.0
 * @category contracts
 */
export const levelOrdinal = (level: BackpressureLevel): 0 | 1 | 2 => level === "ok" ? 0 : level === "soft" ? 1 : 2

/**
 * A pressure level given as a string that is not `ok`, `soft` or `hard` in
 * any case.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidPressureLevel extends Data.TaggedError("InvalidPressureLevel")<{
  /** The rejected input, as given (a non-string converted with `String`). */
  readonly input: string
}> {
  /** Names the rejected input (JSON-quoted) and the accepted levels. */
  override get message(): string {
    return `invalid pressure level ${JSON.stringify(this.input)}: expected ok, soft or hard (any case)`
  }
}

/**
 * Reads a level from a string in any case (`"SOFT"` → `"soft"`), as the
 * Python docs promise and its code does not. A value that is not a string
 * (`null`, a number, from an untyped caller) is an `InvalidPressureLevel` too.
 *
 * @since 0.1.0
 * @category constructors
 */
export const parseLevel = (input: string): Result.Result<BackpressureLevel, InvalidPressureLevel> => {
  const level = input === "ok" || input === "soft" || input === "hard"
    ? input
    : typeof input === "string"
    ? input.toLowerCase()
    : undefined
  return level === "ok" || level === "soft" || level === "hard"
    ? Result.succeed(level)
    : Result.fail(new InvalidPressureLevel({ input: String(input) }))
}
