/**
 * Decoding and encoding contracts on the Python wire format.
 *
 * @since 0.1.0
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
  readonly path: string
  readonly message: string
}

/**
 * A document that does not satisfy a contract. `message` lists every problem
 * as `path: what was expected`, one per line, for the person who sent it.
 *
 * @since 0.1.0
 * @category errors
 */
export class ContractError extends Data.TaggedError("ContractError")<{
  readonly contract: string
  readonly issues: ReadonlyArray<ContractIssue>
}> {
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
 * The value must satisfy the contract (decoded, or built to its type);
 * non-finite floats cannot be encoded and throw.
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
