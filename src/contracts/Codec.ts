/**
 * Decoding and encoding of the contracts (`FeedbackEvent`, `RateAdjustment`,
 * `HealthStatus`, ...) in the Python side's wire format: snake_case JSON, as
 * pydantic 2 writes it, byte for byte; plus each contract's JSON Schema.
 *
 * Use it at every edge where a contract enters or leaves the process (HTTP
 * bodies, Redis entries, files): `decodeJson` / `decodeUnknown` give the
 * camelCase value or a `ContractError` naming every problem; `encodeJson`
 * writes what Python's `model_dump_json()` writes. Inside the process, pass
 * the decoded values around; use `Schema` from `effect` directly only for
 * your own types.
 *
 * Gotchas:
 * - Decoding is strict: no numeric strings, no `NaN`/`Infinity`, integers
 *   must be safe (at most 2^53 - 1, where Python has no bound), strings
 *   well-formed Unicode; unknown keys are ignored; missing keys with a
 *   default take it.
 * - `encodeJson` trusts its input: it does not validate. A non-finite float
 *   is written `null`, as pydantic writes it, and that document does not
 *   decode again.
 * - The decoders complete synchronously (they return an `Exit`), so
 *   `Effect.runSync` is safe on them.
 *
 * @since 0.1.0
 * @module
 */
import * as Data from "effect/Data"
import type * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as JsonSchema from "effect/JsonSchema"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import { codecOf, Invalid } from "./internal/wire.ts"

/**
 * One problem with a decoded document: where (`queue_size`,
 * `components[1].state`, or `(root)`) and what was expected there.
 *
 * @since 0.1.0
 * @category errors
 */
export interface ContractIssue {
  /** Where, in wire (snake_case) names: `queue_size`, `components[1].state`, or `(root)` for the whole document. */
  readonly path: string
  /** What was expected there, and what was found (`Expected number, got "1000"`). */
  readonly message: string
}

/**
 * A document that does not satisfy a contract. `message` lists every problem
 * as `path: what was expected`, separated by `; `, for the person who sent it.
 *
 * @since 0.1.0
 * @category errors
 */
export class ContractError extends Data.TaggedError("ContractError")<{
  /** The contract's name (`FeedbackEvent`), or `document` for a schema without an identifier. */
  readonly contract: string
  /** Every problem found (decoding reports all of them, not only the first). */
  readonly issues: ReadonlyArray<ContractIssue>
}> {
  /** `invalid <contract>: <path>: <problem>; ...`, every issue on one line. */
  override get message(): string {
    return `invalid ${this.contract}: ` + this.issues.map((issue) => `${issue.path}: ${issue.message}`).join("; ")
  }
}

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

const formatPath = (path: ReadonlyArray<PropertyKey>): string => {
  if (path.length === 0) return "(root)"
  let out = ""
  for (const key of path) {
    out += typeof key === "number" ? `[${key}]` : out === "" ? String(key) : `.${String(key)}`
  }
  return out
}

const contractName = (schema: Schema.Top): string => {
  const identifier = schema.ast.annotations?.identifier
  return typeof identifier === "string" ? identifier : "document"
}

const toContractError = (schema: Schema.Top, issue: SchemaIssue.Issue): ContractError =>
  new ContractError({
    contract: contractName(schema),
    issues: formatter(issue).issues.map((issue) => ({
      path: formatPath((issue.path ?? []).map((segment) => typeof segment === "object" ? segment.key : segment)),
      message: issue.message
    }))
  })

const parseOptions = { errors: "all", onExcessProperty: "ignore", reportInput: true } as const

const decodeWithSchema = <A>(schema: Schema.Codec<A, unknown>, input: unknown): Exit.Exit<A, ContractError> => {
  const exit = Schema.decodeUnknownExit(schema)(input, parseOptions)
  if (Exit.isSuccess(exit)) return Exit.succeed(exit.value)
  const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
  return failure === undefined
    ? exit as unknown as Exit.Exit<A, ContractError>
    : Exit.fail(toContractError(schema, (failure.error as Schema.SchemaError).issue))
}

/**
 * Decodes and validates an already-parsed value (wire keys, snake_case).
 * Unknown keys are ignored; types are strict (no numeric strings); integers
 * must be safe integers and numbers finite.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeUnknown = <A>(
  schema: Schema.Codec<A, unknown>
): (input: unknown) => Effect.Effect<A, ContractError> => {
  const codec = codecOf(schema)
  if (codec === undefined) return (input) => decodeWithSchema(schema, input)
  return (input) => {
    const value = codec.decode(input)
    return value === Invalid ? decodeWithSchema(schema, input) : Exit.succeed(value as A)
  }
}

/**
 * Parses JSON text and decodes it like {@link decodeUnknown}. Text that is
 * not JSON fails with a `ContractError` at `(root)`.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeJson = <A>(schema: Schema.Codec<A, unknown>): (text: string) => Effect.Effect<A, ContractError> => {
  const decode = decodeUnknown(schema)
  const fast = codecOf(schema)?.decode
  return (text) => {
    let input: unknown
    try {
      input = JSON.parse(text)
    } catch (error) {
      return Exit.fail(invalidJson(schema, error))
    }
    if (fast === undefined) return decode(input)
    // the common case in one call: the codec's verdict, the schema only to say what is wrong
    const value = fast(input)
    return value === Invalid ? decodeWithSchema(schema, input) : Exit.succeed(value as A)
  }
}

const invalidJson = (schema: Schema.Top, error: unknown): ContractError =>
  new ContractError({
    contract: contractName(schema),
    issues: [{ path: "(root)", message: `invalid JSON (${(error as Error).message})` }]
  })

/**
 * Encodes a value as the Python side's `model_dump_json()` does, byte for
 * byte: compact, fields in declaration order, floats always with a decimal
 * point or pydantic's exponent form, raw UTF-8.
 *
 * The value must satisfy the contract (decoded, or built to its type): it
 * is not validated. A non-finite float (`NaN`, `±Infinity`) is written
 * `null`, as pydantic's `model_dump_json()` writes it; like pydantic's, that
 * document then fails to decode.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeJson = <A>(schema: Schema.Codec<A, unknown>): (value: A) => string => {
  const codec = codecOf(schema)
  if (codec === undefined) {
    const encode = Schema.encodeSync(schema)
    return (value) => JSON.stringify(encode(value))
  }
  return (value) => codec.encode(value)
}

/**
 * The JSON Schema (draft 2020-12) of a contract's wire document, for
 * cross-language contract checks against the Python side. Like the Python
 * fixtures it carries `$schema_id` (`telemetry.<Name>`) and `$track` (`v1`).
 *
 * @since 0.1.0
 * @category json schema
 */
export const jsonSchema = (schema: Schema.Top): JsonSchema.JsonSchema => {
  const document = Schema.toJsonSchemaDocument(schema)
  const { $ref, ...rest } = document.schema
  const definitions: Record<string, JsonSchema.JsonSchema> = { ...document.definitions }
  let root: JsonSchema.JsonSchema = rest
  if (typeof $ref === "string" && $ref.startsWith("#/$defs/")) {
    const name = $ref.slice("#/$defs/".length)
    root = { ...definitions[name], ...rest }
    delete definitions[name]
  }
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    $schema_id: `telemetry.${contractName(schema)}`,
    $track: "v1",
    title: contractName(schema),
    ...root,
    ...(Object.keys(definitions).length > 0 ? { $defs: definitions } : {})
  }
}
