/**
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { FeedbackEvent } from "../contracts/FeedbackEvent.ts"
import type { RateAdjustment } from "../contracts/RateAdjustment.ts"
import type { RateController } from "../contracts/RateController.ts"
import type { FeedbackBus } from "./FeedbackBus.ts"
import type { FeedbackPolicy } from "./FeedbackPolicy.ts"
import { run as runHandler } from "./internal/handler.ts"

/**
 * The adjustment an event calls for: the policy's scale for the event's
 * level, for the handler's provider, with the event's level as `reason` and
 * the event's `ts`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const toAdjustment = (policy: FeedbackPolicy, provider: string) => (event: FeedbackEvent): RateAdjustment => ({
  provider,
  scale: policy[event.level],
  reason: event.level,
  ts: event.ts
})

/**
 * Options of the running handler.
 *
 * @since 0.1.0
 * @category models
 */
export interface FeedbackHandlerOptions {
  readonly provider: string
  readonly policy: FeedbackPolicy
  /** Listen only to these coordinators; default: every coordinator. */
  readonly coordinators?: ReadonlyArray<string>
  /**
   * Raise the scale linearly to a higher target over this duration instead
   * of in one step (off by default). Lowering is always immediate.
   */
  readonly recovery?: {
    readonly duration: Duration.Input
    /** Intermediate steps; default 10. */
    readonly steps?: number
  }
}

/**
 * Consumes the bus in a fiber of the scope and applies adjustments through
 * the `RateController`. With several coordinators it applies the worst
 * current level across them; each coordinator's level persists until it
 * reports again. Counts `feedback_events_processed_total{provider,level}`,
 * `pipeline_rate_adjustments_total{provider,reason}` and sets
 * `pipeline_feedback_queue_depth{source}` (source = coordinator id).
 *
 * @since 0.1.0
 * @category running
 */
export const run: (
  options: FeedbackHandlerOptions
) => Effect.Effect<void, never, FeedbackBus | RateController | Scope.Scope> = runHandler
