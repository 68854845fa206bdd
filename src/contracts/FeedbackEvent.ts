/**
 * @since 0.1.0
 */
import { BackpressureLevel } from "./BackpressureLevel.ts"
import * as Wire from "./internal/wire.ts"

const fields = {
  coordinatorId: Wire.string("coordinator_id"),
  queueSize: Wire.int("queue_size", { minimum: 0 }),
  capacity: Wire.int("capacity", { exclusiveMinimum: 0 }),
  level: Wire.literal("level", BackpressureLevel),
  source: Wire.string("source", { default: "store" }),
  ts: Wire.float("ts")
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
export const FeedbackEvent: Wire.ContractSchema<typeof fields> = Wire.contract("FeedbackEvent", fields)

/**
 * @since 0.1.0
 * @category contracts
 */
export interface FeedbackEvent extends Readonly<typeof FeedbackEvent.Type> {}

/**
 * The longest `coordinator_id` an ingest edge accepts, in UTF-8 bytes. The
 * Python side allows any string; the store uses short names, and every id
 * becomes a label value, so the edges bound it.
 *
 * @since 0.1.0
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
 * @since 0.1.0
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
