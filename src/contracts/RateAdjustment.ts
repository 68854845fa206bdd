/**
 * The rate-adjustment contract of `market_data_core.telemetry`: what the
 * feedback loop tells a provider's rate control, as a scale of its base rate
 * and the level that caused it.
 *
 * Use it as what a `RateController` receives: the feedback handler derives
 * one from the worst level its coordinators report (through the
 * `FeedbackPolicy`: by default `ok` 1, `soft` 0.5, `hard` 0), and
 * `RateCoordinatorAdapter.layer` applies it. To change a rate yourself,
 * call `RateCoordinator.setBudgetScale` instead of building adjustments.
 *
 * Gotchas:
 * - `scale` is absolute, not relative to the current rate; 0 pauses the
 *   provider (its callers wait), 1 restores the base rate.
 * - `reason` is the level applied, which is the worst across coordinators,
 *   not necessarily the level of the latest event.
 * - `ts` is the time of the event that caused it (the store's clock), or the
 *   handler's clock for a level cleared or expired; Unix seconds.
 *
 * @since 0.1.0
 * @module
 */
import { BackpressureLevel } from "./BackpressureLevel.ts"
import * as Wire from "./internal/wire.ts"

const fields = {
  /** The provider whose rate changes, as registered with the `RateCoordinator` (`ibkr`). */
  provider: Wire.string("provider"),
  /** The new scale of its base rate, 0 (paused) to 1 (full rate), inclusive. */
  scale: Wire.float("scale", { minimum: 0, maximum: 1 }),
  /** The backpressure level that caused the change. */
  reason: Wire.literal("reason", BackpressureLevel),
  /** When it was decided, in Unix time (seconds, fractional). */
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
 * A decoded `RateAdjustment` document.
 *
 * @since 0.1.0
 * @category contracts
 */
export interface RateAdjustment extends Readonly<typeof RateAdjustment.Type> {}
