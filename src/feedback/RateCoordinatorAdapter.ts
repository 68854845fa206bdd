/**
 * The bridge from the feedback loop to the rate coordinator: a
 * `RateController` layer that applies each `RateAdjustment` to a
 * `RateCoordinator`, setting the provider's pressure level, then its scale.
 *
 * Provide it over a `RateCoordinator` layer (in memory or Redis) wherever a
 * `FeedbackHandler` should pace that coordinator's providers; `UnifiedRuntime`
 * wires it itself. To record adjustments without acting on them use
 * `RateController.layerTest`; to drive something else, a `RateController` of
 * your own.
 *
 * Gotchas: the scale replaces whatever scale was set before (the
 * application's `setBudgetScale` included) and multiplies the base rate, 0
 * pausing the provider. An adjustment for a provider the coordinator does not
 * own is logged and ignored. A scale outside [0, 1] is clamped; one that is
 * not finite, or a reason that is not a level, is a defect (`apply` cannot fail).
 *
 * @since 0.1.0
 * @module
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { RateAdjustment } from "../contracts/RateAdjustment.ts"
import { RateController } from "../contracts/RateController.ts"
import { tracingEnabled } from "../internal/tracing.ts"
import { RateCoordinator } from "../rate/RateCoordinator.ts"

/**
 * The `RateController` that applies an adjustment to the `RateCoordinator`:
 * `setGlobalPressure(provider, reason)`, then `setBudgetScale(provider,
 * scale)`. An adjustment for a provider the coordinator does not own is a
 * logged no-op. Adjustments are validated contracts, so the coordinator's
 * typed errors (bad level, non-finite scale) cannot occur; if an unvalidated
 * one carries them, that is a bug and surfaces as a defect.
 *
 * With a tracer installed (not the native one), each adjustment is a
 * `rate.adjust` span with `rate.provider`, `rate.scale` (the new scale) and
 * `feedback.level` (its reason); with the native one, no span is made.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { RateController, RateCoordinator, RateCoordinatorAdapter } from "market-data-pipeline"
 *
 * const program = Effect.gen(function*() {
 *   const coordinator = yield* RateCoordinator
 *   yield* coordinator.registerProvider("ibkr", { capacity: 20, refillRate: 100 })
 *   const controller = yield* RateController
 *   yield* controller.apply({ provider: "ibkr", scale: 0.5, reason: "soft", ts: 1700000000 })
 *   const state = yield* coordinator.state("ibkr")
 *   console.log(`${state.pressure} at ${state.rate} tokens/s`)
 * })
 * const layers = RateCoordinatorAdapter.layer.pipe(Layer.provideMerge(RateCoordinator.layer))
 * Effect.runPromise(program.pipe(Effect.provide(layers)))
 * // → soft at 50 tokens/s
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<RateController, never, RateCoordinator> = Layer.effect(
  RateController,
  Effect.gen(function*() {
    const coordinator = yield* RateCoordinator
    // read once: with the native tracer (no exporter) no span is made per adjustment
    const tracing = yield* tracingEnabled
    const apply = (adjustment: RateAdjustment): Effect.Effect<void> =>
      coordinator.setGlobalPressure(adjustment.provider, adjustment.reason).pipe(
        Effect.andThen(coordinator.setBudgetScale(adjustment.provider, adjustment.scale)),
        Effect.orDie
      )
    return RateController.of({
      apply: tracing
        ? (adjustment) =>
          Effect.withSpan(apply(adjustment), "rate.adjust", {
            attributes: {
              "rate.provider": adjustment.provider,
              "rate.scale": adjustment.scale,
              "feedback.level": adjustment.reason
            },
            captureStackTrace: false
          })
        : apply
    })
  })
)
