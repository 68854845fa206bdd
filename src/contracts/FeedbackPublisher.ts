/**
 * The `FeedbackPublisher` service: the one way feedback events enter the
 * pipeline, whatever carries them; and a recording test layer.
 *
 * Depend on `FeedbackPublisher` in code that produces or receives events (a
 * store, an ingest edge, a simulation) rather than on a transport. Provide it
 * with `FeedbackBus.layer` (in process: the handler of the same runtime
 * hears it) or `PulsePublisher.layer` (a Redis stream that pipelines in
 * other processes, Python ones included, consume). In tests, provide
 * `FeedbackPublisher.layerTest` and read the events back through
 * `FeedbackPublisherRecorder`.
 *
 * Gotchas:
 * - `publish` takes a decoded, valid event and never fails: validate what
 *   comes from outside first (`decodeJson(FeedbackEvent)`,
 *   `coordinatorIdIssue`).
 * - `publish` does not wait for delivery: the bus and Pulse keep only the
 *   latest event of a coordinator for a subscriber or a Redis that falls
 *   behind, so events in between may never arrive (levels, not deltas).
 *
 * @since 0.1.0
 * @module
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { FeedbackEvent } from "./FeedbackEvent.ts"
import { makeRecorder } from "./internal/recorder.ts"

/**
 * Reads back what `FeedbackPublisher.layerTest` received, in order.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { FeedbackPublisher, FeedbackPublisherRecorder } from "market-data-pipeline"
 *
 * const program = Effect.gen(function*() {
 *   const publisher = yield* FeedbackPublisher
 *   const event = { coordinatorId: "store-1", queueSize: 700, capacity: 1000, source: "store", ts: 1700000000 }
 *   yield* publisher.publish({ ...event, level: "soft" })
 *   yield* publisher.publish({ ...event, level: "hard", queueSize: 900 })
 *   const recorder = yield* FeedbackPublisherRecorder
 *   const published = yield* recorder.published
 *   console.log(published.map((e) => `${e.level} ${e.queueSize}`).join(", "))
 * })
 * Effect.runPromise(program.pipe(Effect.provide(FeedbackPublisher.layerTest)))
 * // → soft 700, hard 900
 * ```
 *
 * @since 0.1.0
 * @category testing
 */
export class FeedbackPublisherRecorder extends Context.Service<FeedbackPublisherRecorder, {
  /** Every event published so far, oldest first (a new array each time it is read). */
  readonly published: Effect.Effect<ReadonlyArray<FeedbackEvent>>
}>()("market-data-pipeline/FeedbackPublisherRecorder") {}

/**
 * Whatever carries feedback events from a store to the pipelines listening
 * for them (the `FeedbackPublisher` protocol of the Python reference): in
 * process (`FeedbackBus.layer`) or over Redis (`PulsePublisher.layer`); the
 * HTTP API and the Pulse consumer publish what they receive through it.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { FeedbackBus, FeedbackPublisher } from "market-data-pipeline"
 *
 * const program = Effect.gen(function*() {
 *   const subscription = yield* (yield* FeedbackBus).subscribe
 *   const publisher = yield* FeedbackPublisher
 *   yield* publisher.publish({
 *     coordinatorId: "store-1", queueSize: 850, capacity: 1000, level: "hard", source: "store", ts: 1700000000
 *   })
 *   const event = yield* subscription.take
 *   console.log(event.coordinatorId, event.level)
 * })
 * // the in-process bus provides FeedbackPublisher, publishing on itself
 * Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(FeedbackBus.layer)))
 * // → store-1 hard
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export class FeedbackPublisher extends Context.Service<FeedbackPublisher, {
  /** Hands one event on; returns without waiting for it to be delivered, and never fails. */
  readonly publish: (event: FeedbackEvent) => Effect.Effect<void>
}>()("market-data-pipeline/FeedbackPublisher") {
  /**
   * A `FeedbackPublisher` that only records what it is given; read the events
   * back through {@link FeedbackPublisherRecorder}. Each build records
   * afresh.
   *
   * @example
   * ```ts
   * import { Effect } from "effect"
   * import { FeedbackPublisher, FeedbackPublisherRecorder } from "market-data-pipeline"
   *
   * // the code under test: reports a full queue
   * const reportFull = Effect.flatMap(FeedbackPublisher, (publisher) =>
   *   publisher.publish({
   *     coordinatorId: "store-1", queueSize: 1000, capacity: 1000, level: "hard", source: "store", ts: 1700000000
   *   }))
   *
   * const test = Effect.gen(function*() {
   *   yield* reportFull
   *   const published = yield* (yield* FeedbackPublisherRecorder).published
   *   console.log(published.length, published[0]?.level)
   * })
   * Effect.runPromise(test.pipe(Effect.provide(FeedbackPublisher.layerTest)))
   * // → 1 hard
   * ```
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
