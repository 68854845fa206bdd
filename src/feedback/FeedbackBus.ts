/**
 * The in-process feedback bus.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { FeedbackEvent } from "../contracts/FeedbackEvent.ts"
import { FeedbackPublisher } from "../contracts/FeedbackPublisher.ts"
import { make as makeBus } from "./internal/bus.ts"

/**
 * One subscriber's view of the bus, open until its scope closes.
 *
 * @since 0.1.0
 * @category models
 */
export interface FeedbackSubscription {
  /** The next event (waits while there is none). */
  readonly take: Effect.Effect<FeedbackEvent>
  /** The events of this subscription as a stream. */
  readonly stream: Stream.Stream<FeedbackEvent>
}

/**
 * Options of {@link FeedbackBus.layer}.
 *
 * @since 0.1.0
 * @category models
 */
export interface FeedbackBusOptions {
  /**
   * Events a subscriber may fall behind by before the oldest are dropped
   * (each coordinator's latest event is delivered regardless). Default 1024.
   */
  readonly bufferSize?: number
}

/**
 * Fans feedback events out to every subscriber, in process, on an Effect
 * `PubSub`. `publish` never waits for a subscriber and never fails. A
 * subscriber that falls more than `bufferSize` events behind loses the
 * oldest ones (counted in `pipeline_feedback_events_dropped_total`), but
 * the latest event of every `coordinator_id` is always delivered to it, so a
 * final `ok` or `hard` is never lost.
 *
 * @since 0.1.0
 * @category services
 */
export class FeedbackBus extends Context.Service<FeedbackBus, {
  readonly publish: (event: FeedbackEvent) => Effect.Effect<void>
  /** Subscribes now; the subscription ends with the scope. */
  readonly subscribe: Effect.Effect<FeedbackSubscription, never, Scope.Scope>
  /**
   * Runs `handler` on every event in a fiber of the scope. A failing or
   * defective handler is logged and counted
   * (`pipeline_feedback_subscriber_errors_total`) and keeps receiving.
   */
  readonly consume: <E>(
    name: string,
    handler: (event: FeedbackEvent) => Effect.Effect<void, E>
  ) => Effect.Effect<void, never, Scope.Scope>
}>()("market-data-pipeline/FeedbackBus") {
  /**
   * Builds a bus in the given scope; its metrics register in the
   * `Metric.MetricRegistry` of the context it is built in.
   *
   * @since 0.1.0
   * @category constructors
   */
  static readonly make: (
    options?: FeedbackBusOptions
  ) => Effect.Effect<FeedbackBus["Service"], never, Scope.Scope> = makeBus

  /**
   * A bus with options; provides `FeedbackBus` and, publishing on it,
   * `FeedbackPublisher`. Two layers are two independent buses.
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly layerWith = (options: FeedbackBusOptions): Layer.Layer<FeedbackBus | FeedbackPublisher> =>
    Layer.effectContext(Effect.map(
      FeedbackBus.make(options),
      (bus) =>
        Context.make(FeedbackBus, bus).pipe(
          Context.add(FeedbackPublisher, FeedbackPublisher.of({ publish: bus.publish }))
        )
    ))

  /**
   * The bus with default options; provides `FeedbackBus` and
   * `FeedbackPublisher`.
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly layer: Layer.Layer<FeedbackBus | FeedbackPublisher> = FeedbackBus.layerWith({})
}
