/**
 * The feedback policy: the scale, from 0 to 1, applied to a provider's base
 * rate at each backpressure level (`ok`, `soft`, `hard`).
 *
 * Use {@link defaultPolicy} (the Python pipeline's 1 / 0.5 / 0), or
 * {@link makePolicy} for input from outside the code (a file, a request: level
 * keys in any case, every value checked). In the service the policy comes from
 * `FeedbackSettings` (`MDP_FB_SCALE_*`); a literal in code works too, since
 * `FeedbackHandler.run` checks it when it starts.
 *
 * Gotchas:
 * - A scale multiplies the base rate: 0 pauses the provider, and an `ok` below
 *   1 throttles it even when no store reports backpressure.
 * - Levels `makePolicy` is not given keep the default's value, not 1.
 * - Nothing checks that `ok >= soft >= hard`: the handler applies the scale of
 *   the worst level, whatever that scale is.
 *
 * @since 0.1.0
 * @module
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import type { BackpressureLevel } from "../contracts/BackpressureLevel.ts"
import { parseLevel } from "../contracts/BackpressureLevel.ts"

/**
 * The scale applied for each backpressure level, each in [0, 1].
 *
 * @since 0.1.0
 * @category models
 */
export interface FeedbackPolicy {
  /** The scale while no coordinator reports backpressure; 1 = the full base rate. */
  readonly ok: number
  /** The scale while the worst coordinator is at `soft` (a filling queue). */
  readonly soft: number
  /** The scale while the worst coordinator is at `hard` (a full queue); 0 = paused. */
  readonly hard: number
}

/**
 * A policy input that cannot be a policy: an unknown level key, the same
 * level twice (`soft` and `SOFT`), or a value outside [0, 1].
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidFeedbackPolicy extends Data.TaggedError("InvalidFeedbackPolicy")<{
  /** The input's key as given (`SOFT`, `medium`). */
  readonly key: string
  /** What is wrong with it: `scale must be in [0, 1], got 2`. */
  readonly reason: string
}> {
  /**
   * One line: `invalid feedback policy at "medium": not a level (expected ok, soft or hard)`.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `invalid feedback policy at ${JSON.stringify(this.key)}: ${this.reason}`
  }
}

/**
 * ok 1.0, soft 0.5, hard 0.0 (pause), as the Python pipeline's default.
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaultPolicy: FeedbackPolicy = { ok: 1, soft: 0.5, hard: 0 }

/**
 * Builds a policy from level keys in any case (`{ ok: 1, SOFT: 0.75 }`).
 * Levels not given keep the default policy's value.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { makePolicy } from "market-data-pipeline"
 *
 * const program = Effect.gen(function*() {
 *   console.log(yield* makePolicy({ SOFT: 0.75 }))
 *   const error = yield* Effect.flip(makePolicy({ soft: 0.5, Soft: 0.25 }))
 *   console.log(error.message)
 * })
 * Effect.runPromise(program)
 * // → { ok: 1, soft: 0.75, hard: 0 }
 * // → invalid feedback policy at "Soft": level soft is given twice
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makePolicy = (
  input: Readonly<Partial<Record<BackpressureLevel, number>>> | Readonly<Record<string, number>>
): Effect.Effect<FeedbackPolicy, InvalidFeedbackPolicy> =>
  Effect.suspend(() => {
    const policy: Record<BackpressureLevel, number> = { ...defaultPolicy }
    const seen = new Set<BackpressureLevel>()
    for (const [key, value] of Object.entries(input)) {
      const level = parseLevel(key)
      if (Result.isFailure(level)) {
        return Effect.fail(new InvalidFeedbackPolicy({ key, reason: "not a level (expected ok, soft or hard)" }))
      }
      if (seen.has(level.success)) {
        return Effect.fail(new InvalidFeedbackPolicy({ key, reason: `level ${level.success} is given twice` }))
      }
      seen.add(level.success)
      if (typeof value !== "number" || !(value >= 0 && value <= 1)) {
        return Effect.fail(new InvalidFeedbackPolicy({ key, reason: `scale must be in [0, 1], got ${value}` }))
      }
      policy[level.success] = value
    }
    return Effect.succeed(policy)
  })
