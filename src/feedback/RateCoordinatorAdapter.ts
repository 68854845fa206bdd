/**
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { RateController } from "../contracts/RateController.ts"
import { RateCoordinator } from "../rate/RateCoordinator.ts"

/**
 * The `RateController` that applies an adjustment to the `RateCoordinator`:
 * `setGlobalPressure(provider, reason)`, then `setBudgetScale(provider,
 * scale)`. An adjustment for a provider the coordinator does not own is a
 * logged no-op. Adjustments are validated contracts, so the coordinator's
 * typed errors (bad level, non-finite scale) cannot occur; if an unvalidated
 * one carries them, that is a bug and surfaces as a defect.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<RateController, never, RateCoordinator> = Layer.effect(
  RateController,
  Effect.map(Effect.service(RateCoordinator), (coordinator) =>
    RateController.of({
      apply: (adjustment) =>
        coordinator.setGlobalPressure(adjustment.provider, adjustment.reason).pipe(
          Effect.andThen(coordinator.setBudgetScale(adjustment.provider, adjustment.scale)),
          Effect.orDie
        )
    }))
)
