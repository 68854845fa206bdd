/**
 * The `RateController` service: where the feedback loop's rate adjustments
 * go; and a recording test layer.
 *
 * The feedback handler needs a `RateController` and calls `apply` with every
 * `RateAdjustment` it decides. `RateCoordinatorAdapter.layer` is the one to
 * provide in a pipeline (it sets the `RateCoordinator`'s pressure and scale,
 * and `UnifiedRuntime.layer` wires it for you); implement your own to drive
 * another rate limiter, or provide `RateController.layerTest` in tests and
 * read the adjustments back through `RateControllerRecorder`.
 *
 * Gotchas:
 * - `apply` cannot fail: an implementation handles (or logs) its own
 *   errors. A defect in it is counted and logged by the bus as a subscriber
 *   error (`pipeline_feedback_subscriber_errors_total`), and that adjustment
 *   is lost.
 * - Adjustments are absolute (scale of the base rate), and arrive in
 *   decision order, but a recovery ramp applies several in a row: apply each
 *   as the new state, never as a delta.
 *
 * @since 0.1.0
 * @module
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { makeRecorder } from "./internal/recorder.ts"
import type { RateAdjustment } from "./RateAdjustment.ts"

/**
 * Reads back what `RateController.layerTest` received, in order.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { RateController, RateControllerRecorder } from "market-data-pipeline"
 *
 * const program = Effect.gen(function*() {
 *   const controller = yield* RateController
 *   yield* controller.apply({ provider: "ibkr", scale: 0, reason: "hard", ts: 1700000000 })
 *   yield* controller.apply({ provider: "ibkr", scale: 1, reason: "ok", ts: 1700000003 })
 *   const applied = yield* (yield* RateControllerRecorder).applied
 *   console.log(applied.map((a) => `${a.reason} ${a.scale}`).join(", "))
 * })
 * Effect.runPromise(program.pipe(Effect.provide(RateController.layerTest)))
 * // → hard 0, ok 1
 * ```
 *
 * @since 0.1.0
 * @category testing
 */
export class RateControllerRecorder extends Context.Service<RateControllerRecorder, {
  /** Every adjustment applied so far, oldest first (a new array each time it is read). */
  readonly applied: Effect.Effect<ReadonlyArray<RateAdjustment>>
}>()("market-data-pipeline/RateControllerRecorder") {}

/**
 * Whatever applies rate adjustments to the pipeline's providers (the
 * `RateController` protocol of the Python reference). The feedback handler
 * calls `apply` for every adjustment it derives.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { RateController, RateCoordinator, RateCoordinatorAdapter } from "market-data-pipeline"
 *
 * const program = Effect.gen(function*() {
 *   const coordinator = yield* RateCoordinator
 *   yield* coordinator.registerProvider("ibkr", { refillRate: 60 })
 *   const controller = yield* RateController
 *   yield* controller.apply({ provider: "ibkr", scale: 0.5, reason: "soft", ts: 1700000000 })
 *   const state = yield* coordinator.state("ibkr")
 *   console.log(`${state.rate} tokens/s at ${state.pressure}`)
 * })
 * // the pipeline's controller: applies adjustments to the RateCoordinator
 * const layer = RateCoordinatorAdapter.layer.pipe(Layer.provideMerge(RateCoordinator.layer))
 * Effect.runPromise(program.pipe(Effect.provide(layer)))
 * // → 30 tokens/s at soft
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export class RateController extends Context.Service<RateController, {
  /** Puts the adjustment in force for its provider; cannot fail. */
  readonly apply: (adjustment: RateAdjustment) => Effect.Effect<void>
}>()("market-data-pipeline/RateController") {
  /**
   * A `RateController` that only records what it is given; read the
   * adjustments back through {@link RateControllerRecorder}. Each build
   * records afresh.
   *
   * @example
   * ```ts
   * import { Effect } from "effect"
   * import { RateController, RateControllerRecorder } from "market-data-pipeline"
   *
   * // the code under test: throttles a provider to half its rate
   * const throttle = (provider: string) =>
   *   Effect.flatMap(RateController, (controller) =>
   *     controller.apply({ provider, scale: 0.5, reason: "soft", ts: 1700000000 }))
   *
   * const test = Effect.gen(function*() {
   *   yield* throttle("ibkr")
   *   const applied = yield* (yield* RateControllerRecorder).applied
   *   console.log(applied.length, applied[0]?.provider, applied[0]?.scale)
   * })
   * Effect.runPromise(test.pipe(Effect.provide(RateController.layerTest)))
   * // → 1 ibkr 0.5
   * ```
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
