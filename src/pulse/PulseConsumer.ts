/**
 * Reads the Pulse feedback stream (the Python store's Redis stream
 * `<ns>:<ns>.telemetry.feedback`) through a consumer group and hands each
 * decoded event on, at least once: with `PulseConsumer.layer`, to the
 * in-process `FeedbackBus` through `FeedbackPublisher`.
 *
 * Use it when the store publishes its feedback to Redis (the Python
 * deployment, or `PulsePublisher` in another process); when store and
 * pipeline share a process, publish on the `FeedbackBus` directly.
 *
 * Gotchas:
 * - An entry is acknowledged (`XACK`) only after its handler succeeded; a
 *   crashed consumer's pending entries are claimed (`XAUTOCLAIM`) by any
 *   consumer of the group after `claimIdle`. Undecodable entries, and those
 *   delivered more than `maxDeliveries` times, go to `<stream key>.dlq` and
 *   are acknowledged: never a crash, never an endless retry.
 * - Every group gets every entry: two pipelines use two groups, instances of
 *   one pipeline share one. It is created at `"0"`, so entries published
 *   before it existed are read too (Python's `$` loses them).
 * - Python's pipeline never acknowledges in group `pipeline`: give a
 *   TypeScript consumer its own group, or it inherits that pending list.
 * - Redis being down never fails the layer: it retries with a capped backoff.
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
import { FeedbackPublisher } from "../contracts/FeedbackPublisher.ts"
import { describe, validated } from "../feedback/internal/options.ts"
import { checkOptions, make as makeConsumer } from "./internal/consumer.ts"
import type { PulseFeedback } from "./PulseCodec.ts"

/**
 * Options of {@link PulseConsumer.make} and {@link PulseConsumer.layer};
 * every field is optional. The Python environment name, or the one the
 * design notes propose, is given with each default.
 *
 * @since 0.2.0
 * @category models
 */
export interface PulseConsumerOptions {
  /** Bus namespace (`MD_NAMESPACE`): the stream key is `<ns>:<ns>.telemetry.feedback`. Default `"mdp"`. */
  readonly namespace?: string | undefined
  /** Consumer group (`PULSE_GROUP`). Default `"pipeline"`. */
  readonly group?: string | undefined
  /**
   * This instance's name in the group (`PULSE_CONSUMER`). Keep it stable per
   * instance: a restarted instance then re-reads its own pending entries at
   * once instead of waiting `claimIdle` for them to be claimed. Default
   * `<hostname>-<pid>`.
   */
  readonly consumer?: string | undefined
  /**
   * Where a group created by this consumer starts (`PULSE_GROUP_START`):
   * `"0"` (default) reads everything the stream holds, so nothing published
   * before the group existed is lost; `"$"` (Python's choice) only what comes
   * after. An existing group keeps its position.
   */
  readonly groupStart?: string | undefined
  /** Entries per read at most (`PULSE_COUNT`). Default 512 (Python reads 32): a read returns what is there, so a large batch costs no latency and carries a backlog at over 100k/s. */
  readonly count?: number | undefined
  /** How long one blocking read waits for new entries (`PULSE_BLOCK_MS`). Default 2 seconds. */
  readonly block?: Duration.Input | undefined
  /** Pending longer than this, an entry may be claimed (`PULSE_CLAIM_IDLE_MS`). Default 30 seconds. */
  readonly claimIdle?: Duration.Input | undefined
  /** How often to look for entries to claim (`PULSE_CLAIM_EVERY_MS`). Default 5 seconds. */
  readonly claimInterval?: Duration.Input | undefined
  /**
   * Deliveries after which an entry that still fails goes to the dead-letter
   * stream (`PULSE_MAX_DELIVERIES`; Python's unused `dlq_max_retries`). Default 3.
   */
  readonly maxDeliveries?: number | undefined
  /** Entry ids remembered as handled, so a redelivered one is not applied twice. Default 10,000. */
  readonly dedupWindow?: number | undefined
  /** `MAXLEN ~` of the dead-letter stream, as Python trims it. Default 1000. */
  readonly deadLetterMaxLen?: number | undefined
}

/**
 * What a consumer has done since it started.
 *
 * @since 0.2.0
 * @category models
 */
export interface PulseConsumerStats {
  /** Entries handed to the handler successfully. */
  readonly handled: number
  /** Handler failures (the entry stays pending, to be retried). */
  readonly errors: number
  /** Entries not applied because they were handled before, or superseded by a newer entry of their coordinator. */
  readonly duplicates: number
  /** Entries written to the dead-letter stream. */
  readonly deadLettered: number
  /** Entries acknowledged. */
  readonly acked: number
  /** Times the blocking read's connection was lost and opened again. */
  readonly reconnects: number
  /** Whether the read loop holds a connection and has read its own pending entries. */
  readonly connected: boolean
}

/**
 * What the consumer does with each decoded entry (with its stream id). A
 * failure leaves the entry pending: it is delivered again, until
 * `maxDeliveries`.
 *
 * @since 0.2.0
 * @category models
 */
export type PulseHandler = (feedback: PulseFeedback, id: string) => Effect.Effect<void, unknown>

/**
 * An option of {@link PulseConsumer.make} that cannot be used: names the
 * option, the value given and what was expected.
 *
 * @since 0.2.0
 * @category errors
 */
export class InvalidPulseConsumerOptions extends Data.TaggedError("InvalidPulseConsumerOptions")<
  {
    /** The `PulseConsumerOptions` field at fault, such as `"count"`. */
    readonly option: string
    /** The value given for it. */
    readonly value: unknown
    /** What it must be, such as `"a positive integer"`. */
    readonly expected: string
  }
> {
  /** Names the option, what it must be and the value given. */
  override get message(): string {
    return describe("PulseConsumer", this)
  }
}

/**
 * A running Pulse consumer, until the scope it was built in closes (its
 * fibers stop; entries read but not yet acknowledged stay pending, for this
 * consumer's next start or another consumer's claim).
 *
 * Metrics, in the `Metric.MetricRegistry` of the context it is built in
 * (label `stream` is the constant `telemetry.feedback`, as in Python):
 * `pulse_consume_total{stream,track,outcome}` (one count per delivery:
 * `success`, `error` (handler failure or undecodable entry, track
 * `unknown`) or `duplicate`), `pulse_lag_ms{stream}` (now minus the
 * envelope `ts` of the last event read), `pulse_dlq_messages_total{stream,reason}`
 * (`decode` or `max_deliveries`), `pulse_acks_total{stream}` and
 * `pulse_pending_messages{stream}` (the group's pending entries, refreshed
 * every `claimInterval`).
 *
 * @example
 * ```ts
 * import * as NodeRedis from "@effect/platform-node/NodeRedis"
 * import { Deferred, Effect } from "effect"
 * import * as Redis from "effect/persistence/Redis"
 * import { encodeEntry, type FeedbackEvent, PulseConsumer, type PulseFeedback, streamKey } from "market-data-pipeline"
 *
 * const namespace = `example-${process.pid}`
 * const program = Effect.gen(function*() {
 *   const redis = yield* Redis.Redis
 *   // what the Python store writes
 *   const event: FeedbackEvent = {
 *     coordinatorId: "bars-coord", queueSize: 950, capacity: 1000, level: "hard", source: "store", ts: 1
 *   }
 *   yield* redis.send("XADD", streamKey(namespace), "*", "data", encodeEntry(event, { ts: 1 }))
 *   const received = yield* Deferred.make<PulseFeedback>()
 *   yield* PulseConsumer.make({ namespace, block: "100 millis" }, (feedback) => Deferred.succeed(received, feedback))
 *   const { event: heard, headers } = yield* Deferred.await(received)
 *   console.log(heard.coordinatorId, heard.level, headers)
 * })
 *
 * // the consumer stops with its scope; then the example's stream (and group) goes
 * const cleanup = Effect.orDie(Effect.flatMap(Redis.Redis, (redis) => redis.send("DEL", streamKey(namespace))))
 * Effect.runPromise(program.pipe(
 *   Effect.scoped,
 *   Effect.ensuring(cleanup),
 *   Effect.provide(NodeRedis.layer({ url: "redis://127.0.0.1:6379", disableOfflineQueue: true }))
 * ))
 * // → bars-coord hard {}
 * ```
 *
 * @since 0.2.0
 * @category services
 */
export class PulseConsumer extends Context.Service<PulseConsumer, {
  /** The Redis stream key read, `<ns>:<ns>.telemetry.feedback`. */
  readonly stream: string
  /** The consumer group it reads in (option `group`, default `pipeline`). */
  readonly group: string
  /** Its name in the group (option `consumer`, default `<hostname>-<pid>`). */
  readonly consumer: string
  /** Counts since it started, and whether it is reading now. */
  readonly stats: Effect.Effect<PulseConsumerStats>
}>()("market-data-pipeline/PulseConsumer") {
  /**
   * Starts a consumer in the given scope that hands every decoded entry to
   * `handler`, in stream order (one entry at a time, so per coordinator in
   * order; an entry older than the last one applied for its coordinator, such
   * as a late redelivery, is acknowledged without being applied). Options
   * that cannot be used fail with `InvalidPulseConsumerOptions`; an
   * unavailable Redis does not fail it: the consumer retries with a capped
   * backoff.
   *
   * @since 0.2.0
   * @category constructors
   */
  static readonly make: (
    options: PulseConsumerOptions,
    handler: PulseHandler
  ) => Effect.Effect<PulseConsumer["Service"], InvalidPulseConsumerOptions, Redis.Redis | Scope.Scope> = (
    options,
    handler
  ) =>
    validated(
      checkOptions,
      (problem) => new InvalidPulseConsumerOptions(problem),
      (options: PulseConsumerOptions) => makeConsumer(options, handler)
    )(options)

  /**
   * A consumer that publishes every event it reads through the
   * `FeedbackPublisher` in context (the in-process `FeedbackBus`, whose
   * `publish` never fails), so the feedback handler applies what the store
   * wrote to Redis.
   *
   * @example
   * ```ts
   * import * as NodeRedis from "@effect/platform-node/NodeRedis"
   * import { Deferred, Effect, Layer } from "effect"
   * import * as Redis from "effect/persistence/Redis"
   * import { encodeEntry, FeedbackBus, type FeedbackEvent, PulseConsumer, streamKey } from "market-data-pipeline"
   *
   * const namespace = `example-${process.pid}`
   * // feedback from the store's Redis lands on the in-process bus
   * const pulse = PulseConsumer.layer({ namespace, consumer: "pipeline-1", block: "100 millis" }).pipe(
   *   Layer.provideMerge(FeedbackBus.layer)
   * )
   * const program = Effect.gen(function*() {
   *   const heard = yield* Deferred.make<FeedbackEvent>()
   *   yield* (yield* FeedbackBus).consume("example", (event) => Deferred.succeed(heard, event))
   *   const event: FeedbackEvent = {
   *     coordinatorId: "bars-coord", queueSize: 0, capacity: 1000, level: "ok", source: "store", ts: 1
   *   }
   *   yield* (yield* Redis.Redis).send("XADD", streamKey(namespace), "*", "data", encodeEntry(event, { ts: 1 }))
   *   console.log((yield* Deferred.await(heard)).level)
   * })
   *
   * const cleanup = Effect.orDie(Effect.flatMap(Redis.Redis, (redis) => redis.send("DEL", streamKey(namespace))))
   * Effect.runPromise(program.pipe(
   *   Effect.scoped,
   *   Effect.provide(pulse),
   *   Effect.ensuring(cleanup),
   *   Effect.provide(NodeRedis.layer({ url: "redis://127.0.0.1:6379", disableOfflineQueue: true }))
   * ))
   * // → ok
   * ```
   *
   * @since 0.2.0
   * @category layers
   */
  static readonly layer = (
    options: PulseConsumerOptions = {}
  ): Layer.Layer<PulseConsumer, InvalidPulseConsumerOptions, Redis.Redis | FeedbackPublisher> =>
    Layer.effect(
      PulseConsumer,
      Effect.flatMap(
        Effect.service(FeedbackPublisher),
        (publisher) => PulseConsumer.make(options, (feedback) => publisher.publish(feedback.event))
      )
    )
}
