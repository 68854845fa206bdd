/**
 * Control-plane contracts (`market_data_core.telemetry.control`).
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import * as Wire from "./internal/wire.ts"

/**
 * `"pause" | "resume" | "reload"`.
 *
 * @since 0.1.0
 * @category contracts
 */
export const ControlAction: Schema.Literals<readonly ["pause", "resume", "reload"]> = Schema.Literals([
  "pause",
  "resume",
  "reload"
])

/**
 * @since 0.1.0
 * @category contracts
 */
export type ControlAction = typeof ControlAction.Type

const resultFields = {
  status: Wire.literal("status", Schema.Literals(["ok", "error"])),
  detail: Wire.nullableString("detail")
}

/**
 * The outcome of a control action; `detail` defaults to `null`.
 *
 * @since 0.1.0
 * @category contracts
 */
export const ControlResult: Wire.ContractSchema<typeof resultFields> = Wire.contract("ControlResult", resultFields)

/**
 * @since 0.1.0
 * @category contracts
 */
export interface ControlResult extends Readonly<typeof ControlResult.Type> {}

const auditFields = {
  actor: Wire.string("actor"),
  role: Wire.string("role"),
  action: Wire.literal("action", ControlAction),
  result: Wire.nested("result", ControlResult),
  ts: Wire.float("ts")
}

/**
 * An audit record of who performed which control action, with what result.
 *
 * @since 0.1.0
 * @category contracts
 */
export const AuditEnvelope: Wire.ContractSchema<typeof auditFields> = Wire.contract("AuditEnvelope", auditFields)

/**
 * @since 0.1.0
 * @category contracts
 */
export interface AuditEnvelope extends Readonly<typeof AuditEnvelope.Type> {}
