/**
 * Decoding and encoding of the `data` field of a Pulse stream entry.
 *
 * Decoding answers either the feedback or the dead-letter reason (a string),
 * and is written for the consumer's hot path: one `JSON.parse`, hand-written
 * envelope checks, and the FeedbackEvent's compiled wire codec. The Effect
 * Schema only runs for a payload the codec rejects, to say why.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import { createHash } from "node:crypto"
import { decodeUnknown, encodeJson } from "../../contracts/Codec.ts"
import { coordinatorIdIssue, FeedbackEvent } from "../../contracts/FeedbackEvent.ts"
import { codecOf, Invalid } from "../../contracts/internal/wire.ts"
import type { EncodeOptions, PulseFeedback } from "../PulseCodec.ts"
import { pyFloatRepr, pyString } from "./pyJson.ts"

/** @internal */
export const FEEDBACK_SCHEMA_ID = "telemetry.FeedbackEvent"
/** The module-derived id a core `bus.publish(stream, FeedbackEvent)` writes. @internal */
export const CORE_FEEDBACK_SCHEMA_ID = "telemetry.backpressure.FeedbackEvent"
/** The store's double wrap: the payload is a whole inner envelope. @internal */
export const ENVELOPE_SCHEMA_ID = "events.envelope.EventEnvelope"

/** Longest dead-letter reason; the entry's own text travels in the DLQ's `data` field. @internal */
export const MAX_REASON_LENGTH = 1024

const codec = codecOf(FeedbackEvent)!
const decodeWithSchema = decodeUnknown(FeedbackEvent)
const encodeCompact = encodeJson(FeedbackEvent)

const EMPTY: Readonly<Record<string, string>> = Object.freeze({})

type Json = Record<string, unknown>

const isObject = (u: unknown): u is Json => typeof u === "object" && u !== null && !Array.isArray(u)

const own = (o: Json, key: string): unknown => Object.hasOwn(o, key) ? o[key] : undefined

// A short, bounded rendering of an offending value for a reason text.
const show = (u: unknown): string => {
  switch (typeof u) {
    case "string":
      return JSON.stringify(u.length > 64 ? u.slice(0, 64) + "…" : u)
    case "number":
    case "boolean":
      return String(u)
    case "undefined":
      return "nothing"
    default:
      return u === null ? "null" : Array.isArray(u) ? "an array" : "an object"
  }
}

// ---------------------------------------------------------------------------
// Lax coercion, as pydantic 2 validates `int` and `float` fields in lax mode

// pydantic `str_as_int`: surrounding whitespace, a sign, `_` between digits and a `.0…` tail are allowed
// (`" +1_000.00 "` is 1000; `"70."`, `"1e2"`, `"7__0"` are not ints)
const intText = /^[+-]?\d+(?:_\d+)*(?:\.0+)?$/
// Rust `f64::from_str` (pydantic `str_as_float`): `.5`, `5.`, `1e3`, and `_` between digits
const floatText = /^[+-]?(?:\d+(?:_\d+)*(?:\.(?:\d+(?:_\d+)*)?)?|\.\d+(?:_\d+)*)(?:[eE][+-]?\d+(?:_\d+)*)?$/
const nonFinite = /^([+-]?)(?:(inf|infinity)|nan)$/i

/** `True`/`False` and numeric strings to a number; anything else unchanged. @internal */
export const laxInt = (u: unknown): unknown => {
  if (typeof u === "boolean") return u ? 1 : 0
  if (typeof u !== "string") return u
  const text = u.trim()
  if (!intText.test(text)) return u
  const dot = text.indexOf(".")
  const n = Number((dot === -1 ? text : text.slice(0, dot)).replaceAll("_", ""))
  return n === 0 ? 0 : n
}

/** `True`/`False` and float strings (`"1.5"`, `"1e3"`, `"inf"`) to a number; anything else unchanged. @internal */
export const laxFloat = (u: unknown): unknown => {
  if (typeof u === "boolean") return u ? 1 : 0
  if (typeof u !== "string") return u
  const text = u.trim()
  if (floatText.test(text)) return Number(text.replaceAll("_", ""))
  const special = nonFinite.exec(text)
  if (special === null) return u
  return special[2] === undefined ? NaN : special[1] === "-" ? -Infinity : Infinity
}

// A copy of the payload with lax inputs coerced, or the payload itself when nothing changes.
const coerce = (payload: unknown): unknown => {
  if (!isObject(payload)) return payload
  const queueSize = laxInt(own(payload, "queue_size"))
  const capacity = laxInt(own(payload, "capacity"))
  const ts = laxFloat(own(payload, "ts"))
  if (queueSize === payload.queue_size && capacity === payload.capacity && ts === payload.ts) return payload
  const copy: Json = { ...payload }
  if (queueSize !== undefined) copy.queue_size = queueSize
  if (capacity !== undefined) copy.capacity = capacity
  if (ts !== undefined) copy.ts = ts
  return copy
}

// ---------------------------------------------------------------------------
// Decoding

interface Envelope {
  readonly ts: number
  readonly schemaId: string
  readonly track: "v1" | "v2"
  readonly headers: Readonly<Record<string, string>>
  readonly payload: unknown
}

const decodeHeaders = (u: unknown, at: string, issues: Array<string>): Readonly<Record<string, string>> => {
  if (u === undefined) return EMPTY
  if (!isObject(u)) {
    issues.push(`${at}: Expected an object of strings, got ${show(u)}`)
    return EMPTY
  }
  let out: Record<string, string> | undefined
  for (const name in u) {
    if (!Object.hasOwn(u, name)) continue
    const value = u[name]
    if (!name.isWellFormed()) {
      issues.push(`${at}: Expected well-formed Unicode keys, got ${show(name)}`)
      return EMPTY
    }
    if (typeof value !== "string" || !value.isWellFormed()) {
      issues.push(`${at}[${JSON.stringify(name)}]: Expected a well-formed string, got ${show(value)}`)
      return EMPTY
    }
    out ??= {}
    // a data key like any other on the wire; plain assignment would set the prototype
    if (name === "__proto__") {
      Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true })
    } else {
      out[name] = value
    }
  }
  return out ?? EMPTY
}

// `EventEnvelope` / `EventMeta` as Python validates them; `id` is the stream entry id, `hash` is never checked.
const decodeEnvelope = (u: unknown, at: string): Envelope | string => {
  if (!isObject(u)) return `${at === "" ? "(root)" : at.slice(0, -1)}: Expected an envelope object, got ${show(u)}`
  const issues: Array<string> = []
  const rawTs = own(u, "ts")
  const ts = laxFloat(rawTs)
  if (rawTs === undefined) issues.push(`${at}ts: Missing key`)
  else if (typeof ts !== "number" || !Number.isFinite(ts)) {
    issues.push(`${at}ts: Expected a finite number, got ${show(rawTs)}`)
  }
  const key = own(u, "key")
  if (key !== undefined && key !== null && typeof key !== "string") {
    issues.push(`${at}key: Expected a string or null, got ${show(key)}`)
  }
  const meta = own(u, "meta")
  let schemaId = ""
  let track: "v1" | "v2" = "v1"
  let headers = EMPTY
  if (meta === undefined) issues.push(`${at}meta: Missing key`)
  else if (!isObject(meta)) issues.push(`${at}meta: Expected an object, got ${show(meta)}`)
  else {
    const id = own(meta, "schema_id")
    if (id === undefined) issues.push(`${at}meta.schema_id: Missing key`)
    else if (typeof id !== "string") issues.push(`${at}meta.schema_id: Expected a string, got ${show(id)}`)
    else schemaId = id
    const t = own(meta, "track")
    if (t === "v1" || t === "v2") track = t
    else if (t !== undefined) issues.push(`${at}meta.track: Expected "v1" | "v2", got ${show(t)}`)
    headers = decodeHeaders(own(meta, "headers"), `${at}meta.headers`, issues)
  }
  const payload = own(u, "payload")
  if (payload === undefined) issues.push(`${at}payload: Missing key`)
  if (issues.length > 0) return issues.join("; ")
  return { ts: ts as number, schemaId, track, headers, payload }
}

const bounded = (text: string, length: number): string => text.length <= length ? text : text.slice(0, length - 1) + "…"

const payloadIssues = (input: unknown, at: string): FeedbackEvent | string => {
  const result = Effect.runSync(Effect.result(decodeWithSchema(input)))
  // the schema is the authority: should it accept what the codec refused, so do we
  if (Result.isSuccess(result)) return result.success
  return result.failure.issues
    .map((issue) => bounded(`${issue.path === "(root)" ? at.slice(0, -1) : at + issue.path}: ${issue.message}`, 160))
    .join("; ")
}

const decodeEvent = (payload: unknown, at: string): FeedbackEvent | string => {
  let value = codec.decode(payload) as FeedbackEvent | typeof Invalid
  if (value === Invalid) {
    const coerced = coerce(payload)
    value = coerced === payload ? Invalid : codec.decode(coerced) as FeedbackEvent | typeof Invalid
    if (value === Invalid) {
      const checked = payloadIssues(coerced, at)
      if (typeof checked === "string") return checked
      value = checked
    }
  }
  const issue = coordinatorIdIssue(value.coordinatorId)
  return issue === undefined ? value : at + issue
}

const isFeedback = (schemaId: string): boolean =>
  schemaId === FEEDBACK_SCHEMA_ID || schemaId === CORE_FEEDBACK_SCHEMA_ID

const unknownSchema = (schemaId: string, at: string, nested: boolean): string =>
  `${at}meta.schema_id: Unknown schema id ${show(schemaId)}, expected ` + (nested
    ? `${FEEDBACK_SCHEMA_ID} or ${CORE_FEEDBACK_SCHEMA_ID} inside an ${ENVELOPE_SCHEMA_ID}`
    : `${FEEDBACK_SCHEMA_ID}, ${CORE_FEEDBACK_SCHEMA_ID} or ${ENVELOPE_SCHEMA_ID}`)

const decodeUnchecked = (data: unknown): PulseFeedback | string => {
  if (typeof data !== "string") return `data: Expected a string, got ${show(data)}`
  let body: unknown
  try {
    body = JSON.parse(data)
  } catch (error) {
    return `(root): Invalid JSON (${(error as Error).message})`
  }
  const outer = decodeEnvelope(body, "")
  if (typeof outer === "string") return outer
  let inner = outer
  let at = "payload."
  if (outer.schemaId === ENVELOPE_SCHEMA_ID) {
    const unwrapped = decodeEnvelope(outer.payload, at)
    if (typeof unwrapped === "string") return unwrapped
    if (!isFeedback(unwrapped.schemaId)) return unknownSchema(unwrapped.schemaId, at, true)
    inner = unwrapped
    at = "payload.payload."
  } else if (!isFeedback(outer.schemaId)) {
    return unknownSchema(outer.schemaId, "", false)
  }
  const event = decodeEvent(inner.payload, at)
  if (typeof event === "string") return event
  return {
    event,
    envelopeTs: outer.ts,
    schemaId: outer.schemaId,
    track: outer.track,
    headers: inner === outer || inner.headers === EMPTY
      ? outer.headers
      : outer.headers === EMPTY
      ? inner.headers
      : { ...outer.headers, ...inner.headers }
  }
}

/**
 * The feedback an entry's `data` carries, or why it goes to the dead-letter
 * stream. Never throws.
 *
 * @internal
 */
export const decode = (data: string): PulseFeedback | string => {
  try {
    const out = decodeUnchecked(data)
    return typeof out === "string" ? bounded(out, MAX_REASON_LENGTH) : out
  } catch (error) {
    // e.g. a stack overflow while describing a pathologically nested value
    return bounded(
      `(root): Undecodable entry (${error instanceof Error ? error.message : String(error)})`,
      MAX_REASON_LENGTH
    )
  }
}

// ---------------------------------------------------------------------------
// Encoding

const encodeHeaders = (headers: Readonly<Record<string, string>>): string => {
  let out = "{"
  for (const name in headers) {
    if (!Object.hasOwn(headers, name)) continue
    out += (out === "{" ? "" : ", ") + pyString(name) + ": " + pyString(headers[name]!)
  }
  return out + "}"
}

/**
 * The body a Python `JsonCodec.encode` + `json.dumps` writes for this event.
 *
 * @internal
 */
export const encode = (event: FeedbackEvent, options: EncodeOptions): string => {
  const hash = createHash("sha256").update(encodeCompact(event), "utf8").digest("hex")
  const key = options.key === undefined ? event.coordinatorId : options.key
  return "{\"ts\": " + pyFloatRepr(options.ts) +
    ", \"key\": " + (key === null ? "null" : pyString(key)) +
    ", \"meta\": {\"schema_id\": \"" + FEEDBACK_SCHEMA_ID + "\", \"track\": " + pyString(options.track ?? "v1") +
    ", \"headers\": " + (options.headers === undefined ? "{}" : encodeHeaders(options.headers)) +
    ", \"hash\": \"" + hash + "\"}" +
    ", \"payload\": {\"coordinator_id\": " + pyString(event.coordinatorId) +
    ", \"queue_size\": " + event.queueSize +
    ", \"capacity\": " + event.capacity +
    ", \"level\": " + pyString(event.level) +
    ", \"source\": " + pyString(event.source) +
    ", \"ts\": " + pyFloatRepr(event.ts) + "}}"
}
