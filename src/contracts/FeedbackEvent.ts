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
