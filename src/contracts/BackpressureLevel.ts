/**
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * The store's backpressure severity: `ok` (normal), `soft` (approaching
 * capacity, throttle) or `hard` (at capacity, must throttle). Exactly these
 * lower-case strings on the wire, as `market_data_core.telemetry.BackpressureLevel`.
 *
 * @since 0.1.0
 * @category contracts
 */
export const BackpressureLevel: Schema.Literals<readonly ["ok", "soft", "hard"]> = Schema.Literals([
  "ok",
  "soft",
  "hard"
])

/**
 * @since 0.1.0
 * @category contracts
 */
export type BackpressureLevel = typeof BackpressureLevel.Type

/**
 * The numeric value metrics use for a level: ok 0, soft 1, hard 2.
 *
 * @since 0.1.0
 * @category contracts
 */
export const levelOrdinal = (level: BackpressureLevel): 0 | 1 | 2 => level === "ok" ? 0 : level === "soft" ? 1 : 2
