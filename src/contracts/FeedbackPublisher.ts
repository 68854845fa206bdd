/**
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { FeedbackEvent } from "./FeedbackEvent.ts"
import { makeRecorder } from "./internal/recorder.ts"

/**
 * Reads back what `FeedbackPublisher.layerTest` received, in order.
 *
 * @since 0.1.0
 * @category testing
 */
export class FeedbackPublisherRecorder extends Context.Service<FeedbackPublisherRecorder, {
  readonly published: Effect.Effect<ReadonlyArray<FeedbackEvent>>
}>()("market-data-pipeline/FeedbackPublisherRecorder") {}

/**
 * Whatever carries feedback events from a store to the pipelines listening
 * for them (the `FeedbackPublisher` protocol of the Python reference):
 * in-process, HTTP or Redis.
 *
 * @since 0.1.0
 * @category services
 */
export class FeedbackPublisher extends Context.Service<FeedbackPublisher, {
  readonly publish: (event: FeedbackEvent) => Effect.Effect<void>
}>()("market-data-pipeline/FeedbackPublisher") {
  /**
   * A `FeedbackPublisher` that only records what it is given; read the events
   * back through {@link FeedbackPublisherRecorder}.
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly layerTest: Layer.Layer<FeedbackPublisher | FeedbackPublisherRecorder> = Layer.effectContext(
    Effect.map(
      makeRecorder<FeedbackEvent>(),
      (recorder) =>
        Context.make(FeedbackPublisher, FeedbackPublisher.of({ publish: recorder.record })).pipe(
          Context.add(FeedbackPublisherRecorder, FeedbackPublisherRecorder.of({ published: recorder.recorded }))
        )
    )
  )
}
