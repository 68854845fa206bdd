/**
 * @since 0.1.0
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
