/**
 * @since 0.1.0
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
  readonly ok: number
  readonly soft: number
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
  readonly key: string
  readonly reason: string
}> {
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
