/**
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { makeRecorder } from "./internal/recorder.ts"
import type { RateAdjustment } from "./RateAdjustment.ts"

/**
 * Reads back what `RateController.layerTest` received, in order.
 *
 * @since 0.1.0
 * @category testing
 */
export class RateControllerRecorder extends Context.Service<RateControllerRecorder, {
  readonly applied: Effect.Effect<ReadonlyArray<RateAdjustment>>
}>()("market-data-pipeline/RateControllerRecorder") {}

/**
 * Whatever applies rate adjustments to the pipeline's providers (the
 * `RateController` protocol of the Python reference). The feedback handler
 * calls `apply` for every adjustment it derives.
 *
 * @since 0.1.0
 * @category services
 */
export class RateController extends Context.Service<RateController, {
  readonly apply: (adjustment: RateAdjustment) => Effect.Effect<void>
}>()("market-data-pipeline/RateController") {
  /**
   * A `RateController` that only records what it is given; read the
   * adjustments back through {@link RateControllerRecorder}.
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly layerTest: Layer.Layer<RateController | RateControllerRecorder> = Layer.effectContext(
    Effect.map(
      makeRecorder<RateAdjustment>(),
      (recorder) =>
        Context.make(RateController, RateController.of({ apply: recorder.record })).pipe(
          Context.add(RateControllerRecorder, RateControllerRecorder.of({ applied: recorder.recorded }))
        )
    )
  )
}
