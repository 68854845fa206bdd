/**
 * One description per contract field, from which both the Effect `Schema` (the
 * authority: error messages, JSON Schema, arbitraries) and a compiled wire
 * codec (the hot path: validation and pydantic-exact encoding without walking
 * the schema) are derived. The codec only ever answers "valid, here is the
 * value" or "invalid"; on invalid, the schema decodes again to say why.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as SchemaGetter from "effect/SchemaGetter"
import { formatFloat } from "./pyFloat.ts"

/** @internal */
export const Invalid: unique symbol = Symbol.for("market-data-pipeline/wire/Invalid")

/** @internal */
export interface Codec {
  /** Returns the decoded (type-side) value, or `Invalid`. Never throws. */
  readonly decode: (input: unknown) => unknown
  /**
   * The decoder compiled from the fields, when `decode` is a hand-written one
   * (which must answer exactly as this one does; the tests compare them).
   */
  readonly compiled?: (input: unknown) => unknown
  /** Writes the value as pydantic's `model_dump_json()` does. */
  readonly encode: (value: any) => string
}

/** @internal */
export interface Field<S extends Schema.Constraint> {
  readonly wire: string
  readonly schema: S
  readonly codec: Codec
  /** The value a missing key decodes to; `undefined` when the key is required. */
  readonly missing: (() => unknown) | undefined
}

/** @internal */
export const codecAnnotation = "market-data-pipeline/wireCodec"

/** @internal */
export const codecOf = (schema: Schema.Top): Codec | undefined =>
  schema.ast.annotations?.[codecAnnotation] as Codec | undefined

const isWellFormed = Schema.makeFilter<string>(
  (s) => s.isWellFormed() || "a well-formed Unicode string (no lone surrogate)",
  // JSON Schema has no keyword for it; stating none keeps this check's annotations (defaults) in the output.
  { expected: "a well-formed Unicode string", toJsonSchema: () => ({}) }
)

const WireString = Schema.String.check(isWellFormed)

const decodeString = (u: unknown): unknown => typeof u === "string" && u.isWellFormed() ? u : Invalid

const encodeString = (s: string): string => JSON.stringify(s)

const stringCodec: Codec = { decode: decodeString, encode: encodeString }

const required = <S extends Schema.Constraint>(wire: string, schema: S, codec: Codec): Field<S> => ({
  wire,
  schema,
  codec,
  missing: undefined
})

// Like `Schema.withDecodingDefaultKey`, with the default also stated on the
// encoded side, where JSON Schema generation reads it.
const withDefault = <S extends Schema.Constraint>(
  wire: string,
  schema: S,
  codec: Codec,
  value: () => S["Encoded"] & S["Type"]
): Field<Schema.withDecodingDefaultKey<S>> => ({
  wire,
  schema: Schema.optionalKey(Schema.toEncoded(schema).annotate({ default: value() })).pipe(
    Schema.decodeTo(schema, {
      decode: SchemaGetter.withDefault(Effect.sync(value)),
      encode: SchemaGetter.passthrough()
    })
  ) as any,
  codec,
  missing: value
})

/** A string field; `default` makes the key optional on the wire. @internal */
export const string: {
  (wire: string): Field<typeof WireString>
  (wire: string, options: { readonly default: string }): Field<Schema.withDecodingDefaultKey<typeof WireString>>
} = (wire: string, options?: { readonly default: string }): any =>
  options === undefined
    ? required(wire, WireString, stringCodec)
    : withDefault(wire, WireString, stringCodec, () => options.default)

const NullableString = Schema.NullOr(WireString)

/** A `str | None = None` field. @internal */
export const nullableString = (wire: string): Field<Schema.withDecodingDefaultKey<typeof NullableString>> =>
  withDefault(wire, NullableString, {
    decode: (u) => u === null ? null : decodeString(u),
    encode: (s: string | null) => s === null ? "null" : encodeString(s)
  }, () => null)

/** @internal */
export interface IntBounds {
  readonly minimum?: number
  readonly exclusiveMinimum?: number
}

/** An integer field (a JavaScript safe integer). @internal */
export const int = (wire: string, bounds: IntBounds = {}): Field<Schema.Int> => {
  const { exclusiveMinimum, minimum } = bounds
  let schema = Schema.Int
  if (minimum !== undefined) schema = schema.check(Schema.isGreaterThanOrEqualTo(minimum))
  if (exclusiveMinimum !== undefined) schema = schema.check(Schema.isGreaterThan(exclusiveMinimum))
  const low = minimum ?? -Infinity
  const above = exclusiveMinimum ?? -Infinity
  return required(wire, schema, {
    decode: (u) => typeof u === "number" && Number.isSafeInteger(u) && u >= low && u > above ? u : Invalid,
    encode: (n: number) => "" + n
  })
}

/** @internal */
export interface FloatBounds {
  readonly minimum: number
  readonly maximum: number
}

/** A float field: finite, written with pydantic's float layout. @internal */
export const float = (wire: string, bounds?: FloatBounds): Field<Schema.Finite> => {
  const schema = bounds === undefined ? Schema.Finite : Schema.Finite.check(Schema.isBetween(bounds))
  const low = bounds?.minimum ?? -Infinity
  const high = bounds?.maximum ?? Infinity
  return required(wire, schema, {
    decode: (u) => typeof u === "number" && u >= low && u <= high && Number.isFinite(u) ? u : Invalid,
    encode: formatFloat
  })
}

/** A boolean field. @internal */
export const boolean = (wire: string): Field<Schema.Boolean> =>
  required(wire, Schema.Boolean, {
    decode: (u) => typeof u === "boolean" ? u : Invalid,
    encode: (b: boolean) => b ? "true" : "false"
  })

/** A field holding one of a fixed set of strings (a Python `Literal` or `str` enum). @internal */
export const literal = <const L extends ReadonlyArray<string>>(
  wire: string,
  schema: Schema.Literals<L>
): Field<Schema.Literals<L>> => {
  const allowed = new Set<unknown>(schema.literals)
  return required(wire, schema, {
    decode: (u) => allowed.has(u) ? u : Invalid,
    encode: encodeString
  })
}

const StringDict = Schema.Record(WireString, WireString)

const dictCodec: Codec = {
  decode: (u) => {
    if (typeof u !== "object" || u === null || Array.isArray(u)) return Invalid
    const out: Record<string, string> = {}
    for (const key in u) {
      if (!Object.hasOwn(u, key)) continue
      const value = (u as Record<string, unknown>)[key]
      if (!key.isWellFormed() || decodeString(value) === Invalid) return Invalid
      if (key === "__proto__") {
        // A data key like any other on the wire; plain assignment would set the prototype.
        Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true })
      } else {
        out[key] = value as string
      }
    }
    return out
  },
  encode: (dict: Readonly<Record<string, string>>) => {
    let out = "{"
    let first = true
    for (const key in dict) {
      out += (first ? "" : ",") + encodeString(key) + ":" + encodeString(dict[key]!)
      first = false
    }
    return out + "}"
  }
}

/** A `dict[str, str] = {}` field. @internal */
export const stringDict = (wire: string): Field<Schema.withDecodingDefaultKey<typeof StringDict>> =>
  withDefault(wire, StringDict, dictCodec, () => ({}))

/** A field holding another contract; `default` makes the key optional. @internal */
export const nested: {
  <S extends Schema.Top>(wire: string, contract: S): Field<S>
  <S extends Schema.Top>(
    wire: string,
    contract: S,
    options: { readonly default: () => S["Encoded"] & S["Type"] }
  ): Field<Schema.withDecodingDefaultKey<S>>
} = (wire: string, contract: Schema.Top, options?: { readonly default: () => unknown }): any => {
  const codec = codecOf(contract)!
  return options === undefined
    ? required(wire, contract, codec)
    : withDefault(wire, contract, codec, options.default)
}

/** A `list[Contract] = []` field. @internal */
export const array = <S extends Schema.Top>(
  wire: string,
  contract: S
): Field<Schema.withDecodingDefaultKey<Schema.$Array<S>>> => {
  const item = codecOf(contract)!
  return withDefault(wire, Schema.Array(contract), {
    decode: (u) => {
      if (!Array.isArray(u)) return Invalid
      const out = new Array(u.length)
      for (let i = 0; i < u.length; i++) {
        const value = item.decode(u[i])
        if (value === Invalid) return Invalid
        out[i] = value
      }
      return out
    },
    encode: (items: ReadonlyArray<unknown>) => {
      let out = "["
      for (let i = 0; i < items.length; i++) out += (i === 0 ? "" : ",") + item.encode(items[i])
      return out + "]"
    }
  }, () => [])
}

/** @internal */
export type Fields = { readonly [name: string]: Field<Schema.Constraint> }

/** @internal */
export type SchemaFields<F extends Fields> = { readonly [K in keyof F]: F[K]["schema"] }

/**
 * A contract: a codec schema whose type side has the TypeScript (camelCase)
 * names and whose encoded side is the Python wire document.
 *
 * @internal
 */
export type ContractSchema<F extends Fields> = Schema.Codec<Schema.Struct.Type<SchemaFields<F>>, unknown>

/**
 * A contract from its fields. `options.decode` replaces the decoder compiled
 * from the fields with a hand-written one, for a contract on a hot path
 * (`FeedbackEvent`): straight-line code with fixed property names and a
 * fixed result shape, where the compiled decoder loops over the fields
 * through keyed loads and stores. It must accept exactly the same inputs and
 * decode them to the same values (kept as `Codec.compiled`, for the tests).
 *
 * @internal
 */
export const contract = <const F extends Fields>(
  identifier: string,
  fields: F,
  options?: { readonly decode?: (input: unknown) => unknown }
): ContractSchema<F> => {
  const names = Object.keys(fields)
  const specs = names.map((name, i) => {
    const field = fields[name]!
    return {
      name,
      wire: field.wire,
      prefix: (i === 0 ? "{" : ",") + JSON.stringify(field.wire) + ":",
      decode: field.codec.decode,
      encode: field.codec.encode,
      missing: field.missing
    }
  })
  const compiled = (u: unknown): unknown => {
    if (typeof u !== "object" || u === null || Array.isArray(u)) return Invalid
    const input = u as Record<string, unknown>
    const out: Record<string, unknown> = {}
    for (const spec of specs) {
      const raw = input[spec.wire]
      if (raw === undefined) {
        if (spec.missing === undefined || Object.hasOwn(input, spec.wire)) return Invalid
        out[spec.name] = spec.missing()
        continue
      }
      const value = spec.decode(raw)
      if (value === Invalid) return Invalid
      out[spec.name] = value
    }
    return out
  }
  const codec: Codec = {
    decode: options?.decode ?? compiled,
    ...(options?.decode === undefined ? {} : { compiled }),
    encode: (value: Record<string, unknown>) => {
      let out = ""
      for (const spec of specs) out += spec.prefix + spec.encode(value[spec.name])
      return out + "}"
    }
  }
  const schemaFields: Record<string, Schema.Constraint> = {}
  const wireKeys: Record<string, string> = {}
  for (const name of names) {
    schemaFields[name] = fields[name]!.schema
    wireKeys[name] = fields[name]!.wire
  }
  return Schema.Struct(schemaFields).pipe(
    Schema.encodeKeys(wireKeys),
    Schema.annotate({ identifier, [codecAnnotation]: codec })
  ) as any
}
