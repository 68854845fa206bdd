/**
 * A `FeedbackPublisher` that speaks Pulse: every event becomes an entry of
 * the feedback stream (`XADD <ns>:<ns>.telemetry.feedback MAXLEN ~ n * data
 * <body>`) whose body is byte for byte what a Python publisher writes, with
 * schema id `telemetry.FeedbackEvent`, so Python and TypeScript consumers
 * alike read it.
 *
 * Use it for a TypeScript store, a simulated store or a test harness that
 * must reach pipelines over Redis (`PulseConsumer` on the other side). Within
 * one process, publish on the `FeedbackBus` instead.
 *
 * Gotchas:
 * - `publish` never waits for Redis and never fails: it queues the event and
 *   a fiber of the layer writes it. The queue keeps only the latest unsent
 *   event per coordinator (an older one is superseded: a level holds until
 *   the next report), and drops a new coordinator's event while `maxQueued`
 *   coordinators wait. It is lossy by design; `flush` waits for the queue.
 * - While Redis is down, events wait in the queue (capped backoff); closing
 *   the scope gives what is queued `closeTimeout` to go out.
 * - A Python consumer only sees entries published after its group exists:
 *   the publisher creates group `pipeline` at `0` on start (`groups`).
 * - The envelope `ts` is the time of `publish`, not the event's `ts`.
 *
 * @since 0.2.0
 * @module
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redis from "effect/persistence/Redis"
import type * as Scope from "effect/Scope"
import type { FeedbackEvent } from "../contracts/FeedbackEvent.ts"
import { FeedbackPublisher } from "../contracts/FeedbackPublisher.ts"
import { describe, validated } from "../feedback/internal/options.ts"
import { checkOptions, make as makePublisher } from "./internal/publisher.ts"

/**
 * Options of {@link PulsePublisher.make} and {@link PulsePublisher.layer};
 * every field is optional.
 *
 * @since 0.2.0
 * @category models
 */
export interface PulsePublisherOptions {
  /** Bus namespace (`MD_NAMESPACE`): the stream key is `<ns>:<ns>.telemetry.feedback`. Default `"mdp"`. */
  readonly namespace?: string | undefined
  /** Schema track written in the envelope (`SCHEMA_TRACK`). Default `"v1"`. */
  readonly track?: "v1" | "v2" | undefined
  /** `XADD … MAXLEN ~ n`: about how many entries the stream keeps (`PULSE_MAXLEN`). Default 10,000. */
  readonly maxLen?: number | undefined
  /**
   * Consumer groups created at `0` when the publisher starts (an existing
   * group is left as it is), so their consumers read everything published
   * from now on even if they start later. Default `["pipeline"]`, the Python
   * pipeline's group; `[]` creates none.
   */
  readonly groups?: ReadonlyArray<string> | undefined
  /**
   * The envelope headers of an event. Default: `utilization`, the queue's
   * fill ratio with 6 decimals, as the Python store writes it.
   */
  readonly headers?: ((event: FeedbackEvent) => Readonly<Record<string, string>>) | undefined
  /**
   * Coordinators with an unsent event at once; an event of a further
   * coordinator is dropped (counted, logged) while the queue is full. Default 10,000.
   */
  readonly maxQueued?: number | undefined
  /** Entries written concurrently (pipelined) per round. Default 256. */
  readonly batchSize?: number | undefined
  /** Bound of one `XADD`; a slower one counts as an error and is retried. Default 5 seconds. */
  readonly timeout?: Duration.Input | undefined
  /** How long closing the scope waits for queued events to be written. Default 2 seconds. */
  readonly closeTimeout?: Duration.Input | undefined
}

/**
 * An option of {@link PulsePublisher.make} that cannot be used: names the
 * option, the value given and what was expected.
 *
 * @since 0.2.0
 * @category errors
 */
export class InvalidPulsePublisherOptions extends Data.TaggedError("InvalidPulsePublisherOptions")<
  {
    /** The `PulsePublisherOptions` field at fault, such as `"maxLen"`. */
    readonly option: string
    /** The value given for it. */
    readonly value: unknown
    /** What it must be, such as `"a positive integer"`. */
    readonly expected: string
  }
> {
  /** Names the option, what it must be and the value given. */
  override get message(): string {
    return describe("PulsePublisher", this)
  }
}

/**
 * Publishes feedback events on the Pulse stream, without ever making the
 * caller wait for Redis.
 *
 * Metrics, in the `Metric.MetricRegistry` of the context it is built in
 * (label `stream` is the constant `telemetry.feedback`, as in Python):
 * `pulse_publish_total{stream,track,outcome}` with outcome `success`,
 * `error` (one per failed attempt; the event is retried) or `superseded`
 * (replaced in the queue by a newer event of its coordinator) or `dropped`
 * (queue full), and the histogram `pulse_publish_latency_ms{stream,track}`
 * (Python's buckets 1 … 5000 ms) from `publish` to Redis' answer.
 *
 * @example
 * ```ts
 * import * as NodeRedis from "@effect/platform-node/NodeRedis"
 * import { Effect } from "effect"
 * import * as Redis from "effect/persistence/Redis"
 * import * as Result from "effect/Result"
 * import { decodeEntry, PulsePublisher } from "market-data-pipeline"
 *
 * const program = Effect.gen(function*() {
 *   const publisher = yield* PulsePublisher.make({ namespace: `example-${process.pid}`, groups: [] })
 *   yield* publisher.publish({
 *     coordinatorId: "bars-coord", queueSize: 800, capacity: 1000, level: "soft", source: "store", ts: 1700000002.25
 *   })
 *   // returns once written (bound it in real code: it waits for Redis)
 *   yield* publisher.flush
 *   const redis = yield* Redis.Redis
 *   const entries = yield* redis.send<Array<[string, Array<string>]>>("XRANGE", publisher.stream, "-", "+")
 *   yield* redis.send("DEL", publisher.stream)
 *   const decoded = decodeEntry(entries[0]![1][1]!)
 *   if (Result.isSuccess(decoded)) console.log(decoded.success.event.level, decoded.success.headers)
 * })
 *
 * Effect.runPromise(program.pipe(
 *   Effect.scoped,
 *   Effect.provide(NodeRedis.layer({ url: "redis://127.0.0.1:6379", disableOfflineQueue: true }))
 * ))
 * // → soft { utilization: '0.800000' }
 * ```
 *
 * @since 0.2.0
 * @category services
 */
export class PulsePublisher extends Context.Service<PulsePublisher, {
  /** Queues the event and returns at once. */
  readonly publish: (event: FeedbackEvent) => Effect.Effect<void>
  /**
   * Waits until every event published before it was written, superseded or
   * dropped (while Redis is unavailable this waits for it: bound it).
   */
  readonly flush: Effect.Effect<void>
  /** The Redis stream key written. */
  readonly stream: string
}>()("market-data-pipeline/PulsePublisher") {
  /**
   * Starts a publisher in the given scope; its metrics register in the
   * `Metric.MetricRegistry` of the context it is built in. Options that
   * cannot be used fail with `InvalidPulsePublisherOptions`; an unavailable
   * Redis does not fail it.
   *
   * @since 0.2.0
   * @category constructors
   */
  static readonly make: (
    options?: PulsePublisherOptions
  ) => Effect.Effect<PulsePublisher["Service"], InvalidPulsePublisherOptions, Redis.Redis | Scope.Scope> = validated(
    checkOptions,
    (problem) => new InvalidPulsePublisherOptions(problem),
    (options: PulsePublisherOptions | undefined) => makePublisher(options ?? {})
  )

  /**
   * Provides `PulsePublisher` and, publishing through it, `FeedbackPublisher`,
   * so code written against `FeedbackPublisher` reaches Redis unchanged.
   *
   * @example
   * ```ts
   * import * as NodeRedis from "@effect/platform-node/NodeRedis"
   * import { Effect } from "effect"
   * import * as Redis from "effect/persistence/Redis"
   * import { FeedbackPublisher, PulsePublisher, streamKey } from "market-data-pipeline"
   *
   * const namespace = `example-${process.pid}`
   * const program = Effect.gen(function*() {
   *   const feedback = yield* FeedbackPublisher
   *   yield* feedback.publish({
   *     coordinatorId: "bars-coord", queueSize: 800, capacity: 1000, level: "soft", source: "store", ts: 1700000002.25
   *   })
   * }).pipe(Effect.provide(PulsePublisher.layer({ namespace })))
   *
   * // closing the layer's scope wrote what was queued
   * const check = Effect.gen(function*() {
   *   const redis = yield* Redis.Redis
   *   console.log(yield* redis.send("XLEN", streamKey(namespace)))
   *   yield* redis.send("DEL", streamKey(namespace))
   * })
   * Effect.runPromise(program.pipe(
   *   Effect.andThen(check),
   *   Effect.provide(NodeRedis.layer({ url: "redis://127.0.0.1:6379", disableOfflineQueue: true }))
   * ))
   * // → 1
   * ```
   *
   * @since 0.2.0
   * @category layers
   */
  static readonly layer = (
    options: PulsePublisherOptions = {}
  ): Layer.Layer<PulsePublisher | FeedbackPublisher, InvalidPulsePublisherOptions, Redis.Redis> =>
    Layer.effectContext(Effect.map(
      PulsePublisher.make(options),
      (publisher) =>
        Context.make(PulsePublisher, publisher).pipe(
          Context.add(FeedbackPublisher, FeedbackPublisher.of({ publish: publisher.publish }))
        )
    ))
}
