/**
 * The control-plane contracts of `market_data_core.telemetry.control`: the
 * actions an operator can ask a pipeline for (`pause`, `resume`, `reload`),
 * the result of one, and the audit record of who asked.
 *
 * Use them to exchange control documents with the Python services (decode
 * and encode them with `decodeJson` / `encodeJson`). This package defines
 * them for wire compatibility only: none of its components sends, serves or
 * acts on a control action. To pause or slow a provider from TypeScript, use
 * `RateCoordinator.setBudgetScale` (or publish a `hard` `FeedbackEvent`).
 *
 * Gotchas:
 * - Wire keys are those of the Python models; `action` and `status` decode
 *   only from the exact lower-case strings.
 * - `ControlResult.detail` may be absent on the wire (it decodes to `null`)
 *   and is always written, as `null` when there is none.
 * - `AuditEnvelope.ts` is Unix time in seconds, a float.
 *
 * @since 0.1.0
 * @module
 */
import * as Schema from "effect/Schema"
import * as Wire from "./internal/wire.ts"

/**
 * A control action: `"pause"`, `"resume"` or `"reload"` (lower case on the
 * wire).
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
 * A control action as a value: `"pause" | "resume" | "reload"`.
 *
 * @since 0.1.0
 * @category contracts
 */
export type ControlAction = typeof ControlAction.Type

const resultFields = {
  /** Whether the action succeeded: `"ok"` or `"error"`. */
  status: Wire.literal("status", Schema.Literals(["ok", "error"])),
  /** A human-readable explanation (what failed, typically), or `null`; optional on the wire. */
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
 * A decoded `ControlResult` document.
 *
 * @since 0.1.0
 * @category contracts
 */
export interface ControlResult extends Readonly<typeof ControlResult.Type> {}

const auditFields = {
  /** Who asked for the action (a user or service name, free-form). */
  actor: Wire.string("actor"),
  /** The role the actor acted in (free-form, e.g. `admin`). */
  role: Wire.string("role"),
  /** The action asked for. */
  action: Wire.literal("action", ControlAction),
  /** What came of it. */
  result: Wire.nested("result", ControlResult),
  /** When, in Unix time (seconds, fractional). */
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
 * A decoded `AuditEnvelope` document.
 *
 * @since 0.1.0
 * @category contracts
 */
export interface AuditEnvelope extends Readonly<typeof AuditEnvelope.Type> {}
