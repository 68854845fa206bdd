/**
 * The feedback-event contract of `market_data_core.telemetry`: a store
 * coordinator's report of its write queue (depth, capacity, backpressure
 * level), the input of the whole feedback loop; and the bound the ingest
 * edges put on coordinator ids.
 *
 * Use `FeedbackEvent` with `decodeJson` / `decodeUnknown` wherever events
 * arrive from outside (HTTP, Redis), and hand the decoded value to a
 * `FeedbackPublisher`. Check `coordinatorIdIssue` too when the id comes from
 * an untrusted client: the contract itself accepts any string.
 *
 * Gotchas:
 * - `level` is the store's verdict; nothing here recomputes it from
 *   `queueSize` / `capacity` (which may disagree with it).
 * - `ts` is Unix time in seconds (a float), on the store's clock.
 * - `source` defaults to `"store"` when the key is absent; an explicit `null`
 *   is invalid. Unknown keys (the store's `reason`) are dropped, so they do
 *   not survive a decode/encode round trip.
 * - Each `coordinator_id` becomes a metric label value and a table entry:
 *   bound it with {@link coordinatorIdIssue} at your own edges.
 *
 * @since 0.1.0
 * @module
 */
import { BackpressureLevel } from "./BackpressureLevel.ts"
import * as Wire from "./internal/wire.ts"

const fields = {
  /** The reporting coordinator's id (wire key `coordinator_id`); one level is kept per id. */
  coordinatorId: Wire.string("coordinator_id"),
  /** Items in the store's write queue when it reported (wire key `queue_size`), an integer ≥ 0. */
  queueSize: Wire.int("queue_size", { minimum: 0 }),
  /** The queue's capacity in items, an integer > 0. */
  capacity: Wire.int("capacity", { exclusiveMinimum: 0 }),
  /** The store's backpressure level, the field the feedback loop acts on. */
  level: Wire.literal("level", BackpressureLevel),
  /** What kind of component sent it; optional on the wire, `"store"` by default. */
  source: Wire.string("source", { default: "store" }),
  /** When it was reported, in Unix time (seconds, fractional), on the store's clock. */
  ts: Wire.float("ts")
}

// The hot path's decoder (every event the pipeline receives passes it): the
// fields' rules written out, in their order. It must answer exactly as the
// decoder compiled from `fields` does (test/contracts pins the two together).
const decodeFeedbackEvent = (u: unknown): unknown => {
  if (typeof u !== "object" || u === null || Array.isArray(u)) return Wire.Invalid
  const input = u as Record<string, unknown>
  const coordinatorId = input.coordinator_id
  if (typeof coordinatorId !== "string" || !coordinatorId.isWellFormed()) return Wire.Invalid
  const queueSize = input.queue_size
  if (typeof queueSize !== "number" || !Number.isSafeInteger(queueSize) || queueSize < 0) return Wire.Invalid
  const capacity = input.capacity
  if (typeof capacity !== "number" || !Number.isSafeInteger(capacity) || capacity <= 0) return Wire.Invalid
  const level = input.level
  if (level !== "ok" && level !== "soft" && level !== "hard") return Wire.Invalid
  let source = input.source
  if (source === undefined) {
    if (Object.hasOwn(input, "source")) return Wire.Invalid
    source = "store"
  } else if (typeof source !== "string" || !source.isWellFormed()) {
    return Wire.Invalid
  }
  const ts = input.ts
  if (typeof ts !== "number" || !Number.isFinite(ts)) return Wire.Invalid
  return { coordinatorId, queueSize, capacity, level, source, ts }
}

/**
 * Backpressure feedback from a store coordinator to the pipeline
 * (`market_data_core.telemetry.FeedbackEvent`). `ts` is Unix epoch seconds;
 * `source` defaults to `"store"`. Unknown keys such as the store's `reason`
 * are ignored when decoding.
 *
 * Wire: `{"coordinator_id","queue_size","capacity","level","source","ts"}`.
 *
 * @since 0.1.0
 * @category contracts
 */
export const FeedbackEvent: Wire.ContractSchema<typeof fields> = Wire.contract("FeedbackEvent", fields, {
  decode: decodeFeedbackEvent
})

/**
 * A decoded `FeedbackEvent` document.
 *
 * @since 0.1.0
 * @category contracts
 */
export interface FeedbackEvent extends Readonly<typeof FeedbackEvent.Type> {}

/**
 * The longest `coordinator_id` an ingest edge accepts, in UTF-8 bytes. The
 * Python side allows any string; the store uses short names, and every id
 * becomes a label value, so the edges bound it.
 *
 * @since 0.2.0
 * @category constants
 */
export const MAX_COORDINATOR_ID_BYTES = 128

// C0 controls, DEL and C1 controls
const control = /[\u0000-\u001f\u007f-\u009f]/

/**
 * What is wrong with a `coordinator_id` for an ingest edge (HTTP, Redis
 * Streams), or `undefined` when it is acceptable: at most
 * {@link MAX_COORDINATOR_ID_BYTES} bytes of UTF-8 and no control characters;
 * any other Unicode is fine.
 *
 * @since 0.2.0
 * @category validation
 */
export const coordinatorIdIssue = (id: string): string | undefined => {
  const bytes = Buffer.byteLength(id, "utf8")
  if (bytes > MAX_COORDINATOR_ID_BYTES) {
    return `coordinator_id: must be at most ${MAX_COORDINATOR_ID_BYTES} bytes of UTF-8, got ${bytes}`
  }
  const found = control.exec(id)
  if (found !== null) {
    const code = found[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")
    return `coordinator_id: must not contain control characters, found U+${code} at index ${found.index}`
  }
  return undefined
}
