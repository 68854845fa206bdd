/**
 * The bytes of Pulse, the Python services' event bus on Redis Streams, for
 * feedback: the stream and dead-letter keys, the decoding of an entry's
 * `data` field into a `FeedbackEvent`, and the body a Python publisher would
 * write for one, byte for byte (`json.dumps` defaults: `", "`/`": "`
 * separators, `\uXXXX` escapes, `repr` floats).
 *
 * Use it to inspect a stream, write golden entries in tests or bridge
 * another transport; to move events, use `PulseConsumer` / `PulsePublisher`.
 *
 * Gotchas:
 * - Three body shapes exist in the wild and all decode: the intended
 *   envelope (`telemetry.FeedbackEvent`), the core's direct publish
 *   (`telemetry.backpressure.FeedbackEvent`) and the store's double wrap
 *   (`events.envelope.EventEnvelope`, whose inner headers carry `reason` and
 *   `utilization`). Encoding always writes the first.
 * - Payloads are validated as pydantic's lax mode does (numeric strings in
 *   number fields, unknown keys ignored, `source` defaulting to `"store"`),
 *   but integers beyond 2^53 and non-finite floats are refused.
 * - The envelope's `hash` is never checked (Python never computes a
 *   matching one); a header named `"7"` is written before the others.
 *
 * @since 0.2.0
 * @module
 */
import * as Data from "effect/Data"
import * as Result from "effect/Result"
import type { FeedbackEvent } from "../contracts/FeedbackEvent.ts"
import * as internal from "./internal/entry.ts"

/**
 * The schema id a publisher writes, the one the Python consumer resolves to
 * `FeedbackEvent`.
 *
 * @since 0.2.0
 * @category constants
 */
export const FEEDBACK_SCHEMA_ID: "telemetry.FeedbackEvent" = internal.FEEDBACK_SCHEMA_ID

/**
 * The Redis key of the feedback stream, `<ns>:<ns>.telemetry.feedback`: the
 * bus prefixes its namespace to a logical stream name that already carries
 * it, so the namespace really appears twice (`mdp:mdp.telemetry.feedback`).
 *
 * @since 0.2.0
 * @category keys
 */
export const streamKey = (namespace: string): string => `${namespace}:${namespace}.telemetry.feedback`

/**
 * The Redis key of the feedback dead-letter stream, `<stream key>.dlq`. Its
 * entries have the Python layout: fields `original_id`, `reason` (a
 * {@link PulseDecodeError}'s `reason`) and `data` (the original text).
 *
 * @since 0.2.0
 * @category keys
 */
export const deadLetterKey = (namespace: string): string => `${streamKey(namespace)}.dlq`

/**
 * What one stream entry carries: the validated event, and the envelope
 * details the consumer needs for its metrics.
 *
 * @since 0.2.0
 * @category models
 */
export interface PulseFeedback {
  /** The payload, validated as the Python consumer validates it, with a bounded coordinator id. */
  readonly event: FeedbackEvent
  /** Epoch seconds of the (outer) envelope: the publish time `pulse_lag_ms` is measured from. */
  readonly envelopeTs: number
  /** The outer schema id as received (`events.envelope.EventEnvelope` for the store's double wrap). */
  readonly schemaId: string
  /** The outer envelope's schema track. */
  readonly track: "v1" | "v2"
  /** The envelope headers; for a double wrap, the inner ones (the store's `reason`, `utilization`) over the outer. */
  readonly headers: Readonly<Record<string, string>>
}

/**
 * An entry that cannot be decoded: it belongs in the dead-letter stream.
 * `reason` is the text to write in the DLQ entry's `reason` field, one
 * `path: what was expected, got what` per problem (`payload.queue_size:
 * Expected a value greater than or equal to 0, got -1`), at most 1024
 * characters; `message` is the same text.
 *
 * @since 0.2.0
 * @category errors
 */
export class PulseDecodeError extends Data.TaggedError("PulseDecodeError")<{
  /** Every problem found, `path: expected, got`, at most 1024 characters: the DLQ entry's `reason`. */
  readonly reason: string
}> {
  /** The `reason`, unchanged. */
  override get message(): string {
    return this.reason
  }
}

/**
 * Decodes the `data` field of a feedback stream entry, in any of the three
 * shapes (`telemetry.FeedbackEvent`, `telemetry.backpressure.FeedbackEvent`,
 * the store's double-wrapped `events.envelope.EventEnvelope`). Anything else —
 * not JSON, a bad envelope or meta, an unknown schema id, an invalid payload,
 * a coordinator id an ingest edge refuses — is a {@link PulseDecodeError}.
 * Never throws.
 *
 * @since 0.2.0
 * @category decoding
 */
export const decodeEntry = (data: string): Result.Result<PulseFeedback, PulseDecodeError> => {
  const decoded = internal.decode(data)
  return typeof decoded === "string"
    ? Result.fail(new PulseDecodeError({ reason: decoded }))
    : Result.succeed(decoded)
}

/**
 * Options of {@link encodeEntry}.
 *
 * @since 0.2.0
 * @category models
 */
export interface EncodeOptions {
  /** The envelope's publish time, epoch seconds (finite). */
  readonly ts: number
  /** The schema track, `SCHEMA_TRACK`; default `"v1"`. */
  readonly track?: "v1" | "v2"
  /** Envelope headers, such as the store's `reason` and `utilization` (6 decimals); default none. */
  readonly headers?: Readonly<Record<string, string>>
  /** The envelope key; default the event's coordinator id, `null` for none. */
  readonly key?: string | null
}

/**
 * The `data` body a Python publisher writes for this event, byte for byte:
 * `json.dumps` default separators, `ensure_ascii` escapes (lowercase
 * `\uXXXX`, surrogate pairs as pairs), Python float `repr` (`1e-07`,
 * `1e+16`, integral floats with `.0`), keys in the order `ts`, `key`,
 * `meta{schema_id, track, headers, hash}`, `payload`; schema id
 * {@link FEEDBACK_SCHEMA_ID}; `hash` the SHA-256 hex of the payload's compact
 * pydantic JSON (raw UTF-8).
 *
 * The event must satisfy the contract (decoded, or built to its type); a
 * non-finite `ts` (event or envelope) throws a `RangeError`.
 *
 * @example
 * ```ts
 * import * as Result from "effect/Result"
 * import { decodeEntry, encodeEntry } from "market-data-pipeline"
 *
 * const data = encodeEntry(
 *   { coordinatorId: "bars-coord", queueSize: 800, capacity: 1000, level: "soft", source: "store", ts: 1700000002.25 },
 *   { ts: 1700000002.75, headers: { reason: "high_watermark" } }
 * )
 * console.log(data.slice(0, 90))
 * const decoded = decodeEntry(data)
 * if (Result.isSuccess(decoded)) console.log(decoded.success.event.level, decoded.success.schemaId)
 * console.log(Result.isFailure(decodeEntry("{}")))
 * // → {"ts": 1700000002.75, "key": "bars-coord", "meta": {"schema_id": "telemetry.FeedbackEvent"
 * // → soft telemetry.FeedbackEvent
 * // → true
 * ```
 *
 * @since 0.2.0
 * @category encoding
 */
export const encodeEntry: (event: FeedbackEvent, options: EncodeOptions) => string = internal.encode
