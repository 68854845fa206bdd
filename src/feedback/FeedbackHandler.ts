/**
 * The feedback handler: consumes the `FeedbackBus` and drives one provider's
 * rate through the `RateController`, at the policy's scale for the worst
 * current level across the coordinators it listens to.
 *
 * `UnifiedRuntime` runs one for its provider; call {@link run} yourself for
 * another provider or another `RateController` (`RateCoordinatorAdapter.layer`
 * is the one over a `RateCoordinator`). The handle it returns shows who holds
 * the provider down (`status`) and lets an operator forget a coordinator (`clear`).
 *
 * Gotchas:
 * - A level persists until its coordinator reports again (stores report only
 *   transitions): a dead store keeps holding the provider down until `clear`,
 *   or `levelTtl`, forgets it; a TTL below the longest real stall lifts real backpressure.
 * - At most `maxCoordinators` are held; when every place is at `soft` or `hard`,
 *   a new coordinator's events are refused (counted, logged, never applied).
 * - Lowering the scale is immediate; raising is too, unless `recovery` ramps it.
 * - Options are checked when `run` starts and fail it with `InvalidHandlerOptions`.
 * - With `CoordinatorLevels` in context (`RateCoordinator.layerRedis`), levels are
 *   written to Redis and the worst-of spans every process (`clear` clears for
 *   all); the `RateController` and `recovery` are then not used.
 *
 * @since 0.1.0
 * @module
 */
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { BackpressureLevel } from "../contracts/BackpressureLevel.ts"
import type { FeedbackEvent } from "../contracts/FeedbackEvent.ts"
import type { RateAdjustment } from "../contracts/RateAdjustment.ts"
import type { RateController } from "../contracts/RateController.ts"
import type { FeedbackBus } from "./FeedbackBus.ts"
import type { FeedbackPolicy } from "./FeedbackPolicy.ts"
import { checkOptions, run as runHandler } from "./internal/handler.ts"
import { describe, validated } from "./internal/options.ts"

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
 * Options of the running handler. Every one is checked when the handler
 * starts; one that cannot be used fails `run` with `InvalidHandlerOptions`.
 *
 * @since 0.1.0
 * @category models
 */
export interface FeedbackHandlerOptions {
  /** The provider whose rate is driven; a non-empty string. */
  readonly provider: string
  /** Each level's scale in [0, 1] (checked even when not built by `makePolicy`). */
  readonly policy: FeedbackPolicy
  /** Listen only to these coordinators; default: every coordinator. */
  readonly coordinators?: ReadonlyArray<string>
  /**
   * Raise the scale linearly to a higher target over this duration (positive,
   * finite) instead of in one step (off by default). Lowering is always
   * immediate.
   */
  readonly recovery?: {
    /** How long the rise from the current scale to the target takes (e.g. `"30 seconds"`). */
    readonly duration: Duration.Input
    /** Intermediate steps, a positive integer; default 10. */
    readonly steps?: number
  }
  /**
   * The most coordinators held at once (their levels, and one
   * `pipeline_feedback_queue_depth{source}` series each). When full, a new
   * coordinator takes the place of the longest-idle one at `ok`; when every
   * place holds `soft` or `hard`, the new coordinator's events are refused:
   * never applied, counted in
   * `pipeline_feedback_events_refused_total{provider,reason="too_many_coordinators"}`
   * and logged (at most once per 10 s). Default 256.
   */
  readonly maxCoordinators?: number
  /**
   * Forget a coordinator whose level no report has refreshed for this long
   * (positive, finite), as `clear` would, and apply the new worst level; an
   * expired `soft` or `hard` is logged at warning. Off by default.
   *
   * Risk: a store that reports only transitions (the Python store does) does
   * not refresh a long `hard`. A TTL shorter than the longest real stall
   * lifts the backpressure while the store is still full. Set it well above
   * that, or use it only with stores that report periodically.
   */
  readonly levelTtl?: Duration.Input
}

/**
 * An option of {@link run} that cannot be used: names the option (a path
 * such as `recovery.steps` or `coordinators[2]`), the value given and what
 * was expected.
 *
 * @since 0.2.0
 * @category errors
 */
export class InvalidHandlerOptions extends Data.TaggedError("InvalidHandlerOptions")<{
  /** The option's path from the root of the options: `provider`, `recovery.steps`, `coordinators[2]`. */
  readonly option: string
  /** The value given, as given (of any type). */
  readonly value: unknown
  /** What the option takes, e.g. `a positive integer`. */
  readonly expected: string
}> {
  /**
   * One line: `FeedbackHandler option recovery.steps must be a positive integer, got 0`.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return describe("FeedbackHandler", this)
  }
}

/**
 * One coordinator as the handler holds it.
 *
 * @since 0.2.0
 * @category models
 */
export interface CoordinatorLevel {
  /** The coordinator's id, as its events carry it (`coordinator_id`). */
  readonly coordinatorId: string
  /** The level of its last report, which holds until its next one. */
  readonly level: BackpressureLevel
  /** Epoch ms (`Clock.currentTimeMillis`) since which it has been at this level. */
  readonly since: number
  /** Epoch ms (`Clock.currentTimeMillis`) of its last report, as the handler received it. */
  readonly lastReport: number
}

/**
 * What the handler holds now: the worst current level, the coordinators at
 * it when it is not `ok` (those holding the provider down; none at `ok`),
 * and every coordinator. Both lists are ordered by coordinator id.
 *
 * @since 0.2.0
 * @category models
 */
export interface FeedbackStatus {
  /** The worst level held; `ok` when no coordinator is held. */
  readonly level: BackpressureLevel
  /** The coordinators at `level` when it is `soft` or `hard`; empty at `ok`. */
  readonly holders: ReadonlyArray<CoordinatorLevel>
  /** Every coordinator held, at any level (at most `maxCoordinators`). */
  readonly coordinators: ReadonlyArray<CoordinatorLevel>
}

/**
 * A running handler, valid until the scope it was started in closes.
 *
 * @since 0.2.0
 * @category models
 */
export interface FeedbackHandle {
  /** The provider this handler drives (`FeedbackHandlerOptions.provider`). */
  readonly provider: string
  /** The worst current level and the coordinators at it (those holding the provider down), plus all coordinators. */
  readonly status: Effect.Effect<FeedbackStatus>
  /**
   * Forgets a coordinator (an operator clearing a dead store); the worst-of is
   * recomputed and applied at once. true if it was known.
   */
  readonly clear: (coordinatorId: string) => Effect.Effect<boolean>
  /**
   * Whether an event of this coordinator would be taken now: it is held, or
   * there is room, or an `ok` coordinator's place can be reclaimed. An edge
   * asks before publishing, to answer "too many coordinators" itself.
   */
  readonly admits: (coordinatorId: string) => Effect.Effect<boolean>
  /** The queue a held coordinator last reported (size and capacity); undefined for one not held. */
  readonly queue: (coordinatorId: string) => {
    /** Items in the store's queue at its last report (`queue_size`). */
    readonly queueSize: number
    /** The store queue's capacity at its last report. */
    readonly capacity: number
  } | undefined
}

/**
 * Checks the options, then consumes the bus for the scope and applies
 * adjustments through the `RateController`. Delivery is inline (see
 * `FeedbackConsumeOptions`): with a controller that does not wait (the
 * in-memory `RateCoordinator`), an event's adjustment is applied before its
 * `publish` returns; one that waits delays the events after it, never the
 * publisher. With several
 * coordinators it applies the worst current level across them; each
 * coordinator's level persists until it reports again (or `levelTtl`
 * expires it, or it is cleared). Counts
 * `feedback_events_processed_total{provider,level}`,
 * `pipeline_rate_adjustments_total{provider,reason}`,
 * `pipeline_feedback_events_refused_total{provider,reason="too_many_coordinators"}`
 * and sets `pipeline_feedback_queue_depth{source}` (source = coordinator id).
 * Per event, the cost does not depend on the number of coordinators.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import {
 *   defaultPolicy,
 *   FeedbackBus,
 *   FeedbackHandler,
 *   RateController,
 *   RateControllerRecorder
 * } from "market-data-pipeline"
 *
 * const program = Effect.gen(function*() {
 *   const handler = yield* FeedbackHandler.run({ provider: "ibkr", policy: defaultPolicy })
 *   const bus = yield* FeedbackBus
 *   yield* bus.publish({ coordinatorId: "a", queueSize: 800, capacity: 1000, level: "soft", source: "store", ts: 1 })
 *   yield* bus.publish({ coordinatorId: "b", queueSize: 950, capacity: 1000, level: "hard", source: "store", ts: 2 })
 *   yield* bus.publish({ coordinatorId: "b", queueSize: 100, capacity: 1000, level: "ok", source: "store", ts: 3 })
 *   const applied = yield* (yield* RateControllerRecorder).applied
 *   console.log(applied.map((adjustment) => `${adjustment.reason} ${adjustment.scale}`).join(", "))
 *   const status = yield* handler.status
 *   console.log(`${status.level}, held by ${status.holders.map((holder) => holder.coordinatorId)}`)
 * })
 * const layers = Layer.merge(FeedbackBus.layer, RateController.layerTest)
 * Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(layers)))
 * // → soft 0.5, hard 0, soft 0.5
 * // → soft, held by a
 * ```
 *
 * @since 0.1.0
 * @category running
 */
export const run: (
  options: FeedbackHandlerOptions
) => Effect.Effect<FeedbackHandle, InvalidHandlerOptions, FeedbackBus | RateController | Scope.Scope> = validated(
  checkOptions,
  (problem) => new InvalidHandlerOptions(problem),
  runHandler
)
