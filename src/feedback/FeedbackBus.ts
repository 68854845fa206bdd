/**
 * The in-process feedback bus: fans every `FeedbackEvent` out to each of its
 * subscribers and consumers, on an Effect `PubSub`, keeping the latest event
 * of each coordinator so that a slow subscriber never misses a final level.
 *
 * Use it to connect what receives feedback (the HTTP edge, `PulseConsumer`, a
 * test) to what acts on it (`FeedbackHandler`); its layers also provide
 * `FeedbackPublisher`, publishing on the bus. It is one process's bus: to
 * carry events between processes use `PulsePublisher` (Redis Streams) or the
 * HTTP edge, which publish onto a bus on the receiving side.
 *
 * Gotchas:
 * - Lossy on purpose: a subscriber more than `bufferSize` events behind loses
 *   the oldest (`pipeline_feedback_events_dropped_total`); what it then gets
 *   first is, in publish order, each coordinator's latest event among those lost.
 * - Only `maxCoordinators` coordinators are cached; past that (when none is at
 *   `ok`), a new coordinator's events are delivered live but can be lost to a
 *   lagging subscriber.
 * - `publish` never waits and never fails; a failing consumer is counted, logged
 *   at most once per 10 s, and keeps receiving.
 * - A subscriber sees only events published after it subscribed, until its
 *   scope closes. Two layers are two separate buses.
 *
 * @since 0.1.0
 * @module
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { FeedbackEvent } from "../contracts/FeedbackEvent.ts"
import { FeedbackPublisher } from "../contracts/FeedbackPublisher.ts"
import { checkOptions, make as makeBus } from "./internal/bus.ts"
import { describe, validated } from "./internal/options.ts"

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
  /**
   * Coordinators whose latest event is cached for slow subscribers (and
   * which get a `pipeline_feedback_events_received_total{source,level}`
   * series). When full, a new coordinator takes the place of the longest
   * idle one at `ok` (its series are removed); when none is at `ok`, the new
   * coordinator's events are delivered but not cached, counted in
   * `pipeline_feedback_events_uncached_total`.
   * Default 256.
   */
  readonly maxCoordinators?: number
}

/**
 * Options of {@link FeedbackBus}'s `consume`.
 *
 * @since 0.2.0
 * @category models
 */
export interface FeedbackConsumeOptions {
  /**
   * `"queued"` (default): the handler runs in a fiber of its own, fed by a
   * subscription; an event reaches it after a scheduler hop.
   *
   * `"inline"`: for a handler that does not wait (its steps are synchronous,
   * as the `FeedbackHandler`'s are with an in-memory coordinator). `publish`
   * runs it at once, in a fiber started synchronously, so the event is
   * handled before `publish` returns. The publisher still never waits for
   * it: a run that has to wait continues in its fiber, and the events
   * published meanwhile queue (up to `bufferSize`, with the same
   * latest-per-coordinator guarantee as a queued subscriber) and are handled
   * in order when it completes. A handler that publishes on the bus sees its
   * own events after the current one, in order.
   */
  readonly delivery?: "queued" | "inline"
}

/**
 * An option of {@link FeedbackBus.layerWith} that cannot be used: names the
 * option, the value given and what was expected.
 *
 * @since 0.2.0
 * @category errors
 */
export class InvalidBusOptions extends Data.TaggedError("InvalidBusOptions")<{
  /** The option's name, e.g. `bufferSize`. */
  readonly option: string
  /** The value given, as given (of any type). */
  readonly value: unknown
  /** What the option takes, e.g. `a positive integer`. */
  readonly expected: string
}> {
  /**
   * One line: `FeedbackBus option bufferSize must be a positive integer, got 0`.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return describe("FeedbackBus", this)
  }
}

/**
 * Fans feedback events out to every subscriber, in process, on an Effect
 * `PubSub`. `publish` never waits for a subscriber and never fails. A
 * subscriber that falls more than `bufferSize` events behind loses the
 * oldest ones (counted in `pipeline_feedback_events_dropped_total`), but
 * the latest event of every `coordinator_id` is always delivered to it, so a
 * final `ok` or `hard` is never lost (of up to `maxCoordinators`
 * coordinators: the cache of latest events is bounded, see
 * {@link FeedbackBusOptions}).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { FeedbackBus } from "market-data-pipeline"
 *
 * const program = Effect.gen(function*() {
 *   const bus = yield* FeedbackBus
 *   const subscription = yield* bus.subscribe
 *   yield* bus.publish({
 *     coordinatorId: "store-1", queueSize: 950, capacity: 1000, level: "hard", source: "store", ts: 1700000000
 *   })
 *   const event = yield* subscription.take
 *   console.log(`${event.coordinatorId}: ${event.level}`)
 * })
 * Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(FeedbackBus.layer)))
 * // → store-1: hard
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export class FeedbackBus extends Context.Service<FeedbackBus, {
  /**
   * Hands the event to every subscriber and consumer and caches it as its
   * coordinator's latest; never waits for them and never fails.
   */
  readonly publish: (event: FeedbackEvent) => Effect.Effect<void>
  /**
   * Drops a coordinator from the latest-event cache (with its received
   * series), as when an operator clears it or its level expires; true if it
   * was cached.
   */
  readonly forget: (coordinatorId: string) => Effect.Effect<boolean>
  /** Subscribes now; the subscription ends with the scope. */
  readonly subscribe: Effect.Effect<FeedbackSubscription, never, Scope.Scope>
  /**
   * Runs `handler` on every event until the scope closes: by default in a
   * fiber of the scope, fed from a subscription; inline, inside `publish`
   * (see {@link FeedbackConsumeOptions}). A failing or
   * defective handler is counted (`pipeline_feedback_subscriber_errors_total`)
   * and keeps receiving; its failures are logged at most once per 10 s (the
   * first at once, then one line saying how many were not logged). Events
   * reach it in publish order.
   */
  readonly consume: <E>(
    name: string,
    handler: (event: FeedbackEvent) => Effect.Effect<void, E>,
    options?: FeedbackConsumeOptions
  ) => Effect.Effect<void, never, Scope.Scope>
}>()("market-data-pipeline/FeedbackBus") {
  /**
   * Builds a bus in the given scope; its metrics register in the
   * `Metric.MetricRegistry` of the context it is built in. Options that
   * cannot be used fail with `InvalidBusOptions`.
   *
   * @since 0.1.0
   * @category constructors
   */
  static readonly make: (
    options?: FeedbackBusOptions
  ) => Effect.Effect<FeedbackBus["Service"], InvalidBusOptions, Scope.Scope> = validated(
    checkOptions,
    (problem) => new InvalidBusOptions(problem),
    makeBus
  )

  /**
   * A bus with options; provides `FeedbackBus` and, publishing on it,
   * `FeedbackPublisher`. Two layers are two independent buses. Options that
   * cannot be used fail with `InvalidBusOptions`.
   *
   * @example
   * ```ts
   * import { Effect } from "effect"
   * import { FeedbackBus } from "market-data-pipeline"
   *
   * const program = Effect.gen(function*() {
   *   const bus = yield* FeedbackBus
   *   // inline: the handler has run by the time `publish` returns
   *   yield* bus.consume("printer", (event) => Effect.sync(() => console.log(`handled ${event.level}`)), {
   *     delivery: "inline"
   *   })
   *   yield* bus.publish({
   *     coordinatorId: "store-1", queueSize: 800, capacity: 1000, level: "soft", source: "store", ts: 1700000000
   *   })
   *   console.log("published")
   * })
   * const bus = FeedbackBus.layerWith({ bufferSize: 64, maxCoordinators: 16 })
   * Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(bus)))
   * // → handled soft
   * // → published
   * ```
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly layerWith = (
    options: FeedbackBusOptions
  ): Layer.Layer<FeedbackBus | FeedbackPublisher, InvalidBusOptions> =>
    Layer.effectContext(Effect.map(
      FeedbackBus.make(options),
      (bus) =>
        Context.make(FeedbackBus, bus).pipe(
          Context.add(FeedbackPublisher, FeedbackPublisher.of({ publish: bus.publish }))
        )
    ))

  /**
   * The bus with default options (which are valid, so it cannot fail);
   * provides `FeedbackBus` and `FeedbackPublisher`.
   *
   * @example
   * ```ts
   * import { Effect } from "effect"
   * import { FeedbackBus, FeedbackPublisher } from "market-data-pipeline"
   *
   * const program = Effect.gen(function*() {
   *   const events = yield* (yield* FeedbackBus).subscribe
   *   // what publishes through FeedbackPublisher (an HTTP edge, a test) feeds the same bus
   *   const publisher = yield* FeedbackPublisher
   *   yield* publisher.publish({
   *     coordinatorId: "store-1", queueSize: 10, capacity: 1000, level: "ok", source: "store", ts: 1700000000
   *   })
   *   console.log((yield* events.take).level)
   * })
   * Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(FeedbackBus.layer)))
   * // → ok
   * ```
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly layer: Layer.Layer<FeedbackBus | FeedbackPublisher> = Layer.orDie(FeedbackBus.layerWith({}))
}
