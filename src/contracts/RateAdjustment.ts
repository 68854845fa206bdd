/**
 * @since 0.1.0
 */
import { BackpressureLevel } from "./BackpressureLevel.ts"
import * as Wire from "./internal/wire.ts"

const fields = {
  provider: Wire.string("provider"),
  scale: Wire.float("scale", { minimum: 0, maximum: 1 }),
  reason: Wire.literal("reason", BackpressureLevel),
  ts: Wire.float("ts")
}

/**
 * A rate change for one provider (`market_data_core.telemetry.RateAdjustment`):
 * the provider's effective rate becomes its base rate × `scale`
 * (0 pauses, 1 is full rate). `reason` is the level that caused it.
 *
 * @since 0.1.0
 * @category contracts
 */
export const RateAdjustment: Wire.ContractSchema<typeof fields> = Wire.contract("RateAdjustment", fields)

/**
 * @since 0.1.0
 * @category contracts
 */
export interface RateAdjustment extends Readonly<typeof RateAdjustment.Type> {}
