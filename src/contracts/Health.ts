/**
 * Health contracts (`market_data_core.telemetry.health`).
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import * as Wire from "./internal/wire.ts"

/**
 * `"healthy" | "degraded" | "unhealthy"`.
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
 * @since 0.1.0
 * @category contracts
 */
export type HealthState = typeof HealthState.Type

const componentFields = {
  name: Wire.string("name"),
  state: Wire.literal("state", HealthState),
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
 * @since 0.1.0
 * @category contracts
 */
export interface HealthComponent extends Readonly<typeof HealthComponent.Type> {}

const statusFields = {
  service: Wire.string("service"),
  state: Wire.literal("state", HealthState),
  components: Wire.array("components", HealthComponent),
  version: Wire.string("version"),
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
 * @since 0.1.0
 * @category contracts
 */
export interface HealthStatus extends Readonly<typeof HealthStatus.Type> {}

const probeFields = {
  probeType: Wire.literal("probe_type", Schema.Literals(["liveness", "readiness"])),
  passed: Wire.boolean("passed"),
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
 * @since 0.1.0
 * @category contracts
 */
export interface Probe extends Readonly<typeof Probe.Type> {}
