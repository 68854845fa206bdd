/**
 * The health contracts of `market_data_core.telemetry.health`: a service's
 * overall state, the state of each of its components, and probe results.
 *
 * Use `HealthStatus` to read or produce the document a service serves on
 * `/healthz`: `UnifiedRuntime.health` builds this pipeline's (components
 * `rate_coordinator` and `feedback`), and the HTTP API serves it, encoded
 * with `encodeJson`. `HealthComponent` and `Probe` are the parts and the
 * liveness/readiness answers of the same family; this package does not
 * serve probes itself.
 *
 * Gotchas:
 * - States are ordered `healthy` < `degraded` < `unhealthy`; a status's
 *   `state` is meant to be the worst of its components' (this package's is).
 * - `details` is a flat string-to-string map: numbers and booleans travel as
 *   strings. On re-encoding, keys that look like integers (`"2"`) come first,
 *   in numeric order (JavaScript's key order), where Python keeps the
 *   received order.
 * - `ts` is Unix time in seconds, a float.
 *
 * @since 0.1.0
 * @module
 */
import * as Schema from "effect/Schema"
import * as Wire from "./internal/wire.ts"

/**
 * A health state: `"healthy"`, `"degraded"` (working, impaired: throttled,
 * paused, half-open) or `"unhealthy"` (not working).
 *
 * @since 0.1.0
 * @category contracts
 */
export const HealthState: Schema.Literals<readonly ["healthy", "degraded", "unhealthy"]> = Schema.Literals([
  "healthy",
  "degraded",
  "unhealthy"
])

/**
 * A health state as a value: `"healthy" | "degraded" | "unhealthy"`.
 *
 * @since 0.1.0
 * @category contracts
 */
export type HealthState = typeof HealthState.Type

const componentFields = {
  /** The component's name, unique within its service (`rate_coordinator`). */
  name: Wire.string("name"),
  /** The component's state. */
  state: Wire.literal("state", HealthState),
  /** Free-form facts about it, string to string (`reason`, `level`, ...); optional on the wire, `{}` by default. */
  details: Wire.stringDict("details")
}

/**
 * The health of one component of a service; `details` defaults to `{}`.
 *
 * @since 0.1.0
 * @category contracts
 */
export const HealthComponent: Wire.ContractSchema<typeof componentFields> = Wire.contract(
  "HealthComponent",
  componentFields
)

/**
 * A decoded `HealthComponent` document.
 *
 * @since 0.1.0
 * @category contracts
 */
export interface HealthComponent extends Readonly<typeof HealthComponent.Type> {}

const statusFields = {
  /** The service's name (`market-data-pipeline` for this package's). */
  service: Wire.string("service"),
  /** The service's overall state. */
  state: Wire.literal("state", HealthState),
  /** The state of each component; optional on the wire, `[]` by default. */
  components: Wire.array("components", HealthComponent),
  /** The service's version (this package's `version` for its own). */
  version: Wire.string("version"),
  /** When the status was taken, in Unix time (seconds, fractional). */
  ts: Wire.float("ts")
}

/**
 * A service's health document, as served on `/healthz`; `components`
 * defaults to `[]`.
 *
 * @since 0.1.0
 * @category contracts
 */
export const HealthStatus: Wire.ContractSchema<typeof statusFields> = Wire.contract("HealthStatus", statusFields)

/**
 * A decoded `HealthStatus` document.
 *
 * @since 0.1.0
 * @category contracts
 */
export interface HealthStatus extends Readonly<typeof HealthStatus.Type> {}

const probeFields = {
  /** Which probe: `"liveness"` or `"readiness"` (wire key `probe_type`). */
  probeType: Wire.literal("probe_type", Schema.Literals(["liveness", "readiness"])),
  /** Whether the probe passed. */
  passed: Wire.boolean("passed"),
  /** Why it failed (or any note), or `null`; optional on the wire. */
  message: Wire.nullableString("message")
}

/**
 * The result of a liveness or readiness probe; `message` defaults to `null`.
 *
 * @since 0.1.0
 * @category contracts
 */
export const Probe: Wire.ContractSchema<typeof probeFields> = Wire.contract("Probe", probeFields)

/**
 * A decoded `Probe` document.
 *
 * @since 0.1.0
 * @category contracts
 */
export interface Probe extends Readonly<typeof Probe.Type> {}
