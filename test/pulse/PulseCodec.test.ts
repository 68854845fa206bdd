import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Result, Schema } from "effect"
import { coordinatorIdIssue, encodeJson, FeedbackEvent } from "market-data-pipeline"
import { createHash } from "node:crypto"
import { pyFloatRepr, pyString } from "../../src/pulse/internal/pyJson.ts"
import {
  deadLetterKey,
  decodeEntry,
  encodeEntry,
  type EncodeOptions,
  FEEDBACK_SCHEMA_ID,
  type PulseFeedback,
  streamKey
} from "../../src/pulse/PulseCodec.ts"
import { pydanticFloats } from "../fixtures/index.ts"
import { mutate as mutateWith } from "../fixtures/mutate.ts"
import { pulseExamples, toEvent, type WireEvent } from "./helpers/examples.ts"

const accepted = (data: string): PulseFeedback => {
  const result = decodeEntry(data)
  if (Result.isFailure(result)) throw new Error(`expected the entry to decode, got: ${result.failure.reason}`)
  return result.success
}

const rejected = (data: string): string => {
  const result = decodeEntry(data)
  if (Result.isSuccess(result)) throw new Error(`expected a dead letter, decoded ${JSON.stringify(result.success)}`)
  assert.strictEqual(result.failure._tag, "PulseDecodeError")
  assert.strictEqual(result.failure.message, result.failure.reason)
  return result.failure.reason
}

const sha256 = (text: string): string => createHash("sha256").update(text, "utf8").digest("hex")

const base: WireEvent = { coordinator_id: "c", queue_size: 1, capacity: 2, level: "ok", source: "store", ts: 1 }

const body = (payload: unknown, meta: Record<string, unknown> = {}, envelope: Record<string, unknown> = {}): string =>
  JSON.stringify({
    ts: 1700000000.5,
    key: "c",
    meta: { schema_id: FEEDBACK_SCHEMA_ID, track: "v1", headers: {}, hash: null, ...meta },
    payload,
    ...envelope
  })

describe("keys", () => {
  it("the namespace appears twice, the DLQ is the stream key + .dlq", () => {
    assert.strictEqual(streamKey("mdp"), "mdp:mdp.telemetry.feedback")
    assert.strictEqual(deadLetterKey("mdp"), "mdp:mdp.telemetry.feedback.dlq")
    assert.strictEqual(streamKey("t-1"), "t-1:t-1.telemetry.feedback")
  })
})

describe("golden consume vectors", () => {
  for (const vector of pulseExamples.consume) {
    const expect = vector.expect
    if (expect.ok) {
      it(`${vector.name}: accepted as the event it carries`, () => {
        const decoded = accepted(vector.data)
        const outer = JSON.parse(vector.data)
        assert.deepStrictEqual(decoded.event, toEvent(expect.event))
        assert.strictEqual(decoded.envelopeTs, expect.envelope_ts)
        assert.deepStrictEqual(decoded.headers, expect.headers)
        assert.strictEqual(decoded.schemaId, outer.meta.schema_id)
        assert.strictEqual(decoded.track, outer.meta.track)
      })
    } else {
      it(`${vector.name}: dead-lettered${expect.fields ? ` naming ${expect.fields.join(", ")}` : ""}`, () => {
        const reason = rejected(vector.data)
        assert.isAbove(reason.length, 0)
        for (const field of expect.fields ?? []) assert.include(reason, `payload.${field}: `)
      })
    }
  }

  it("reasons say what is wrong", () => {
    const byName = new Map(pulseExamples.consume.map((vector) => [vector.name, vector.data]))
    assert.match(rejected(byName.get("not-json")!), /^\(root\): Invalid JSON \(.+\)$/)
    assert.strictEqual(
      rejected(byName.get("unknown-schema")!),
      "meta.schema_id: Unknown schema id \"telemetry.Nope\", expected telemetry.FeedbackEvent, " +
        "telemetry.backpressure.FeedbackEvent or events.envelope.EventEnvelope"
    )
    assert.strictEqual(
      rejected(byName.get("invalid-payload")!),
      "payload.queue_size: Expected a value greater than or equal to 0, got -1"
    )
  })
})

describe("golden publish vectors", () => {
  for (const vector of pulseExamples.publish) {
    it(`${vector.name}: the exact bytes, and they decode back`, () => {
      const event = toEvent(vector.event)
      const data = encodeEntry(event, { ts: vector.envelope_ts, headers: vector.headers })
      assert.strictEqual(data, vector.data)
      assert.strictEqual(JSON.parse(data).meta.hash, sha256(encodeJson(FeedbackEvent)(event)))
      const decoded = accepted(data)
      assert.deepStrictEqual(decoded.event, event)
      assert.deepStrictEqual(decoded.headers, vector.headers)
      assert.strictEqual(decoded.envelopeTs, vector.envelope_ts)
    })
  }

  // Produced with pydantic 2.13.4 and Python 3.11 from the §1.8 codec (json.dumps of
  // {ts, key, meta.model_dump(), json.loads(payload.model_dump_json())}, sha256 of the compact payload).
  const python: ReadonlyArray<{ name: string; event: FeedbackEvent; options: EncodeOptions; data: string }> = [
    {
      name: "exponents, key null, track v2",
      event: { coordinatorId: "c", queueSize: 3, capacity: 7, level: "hard", source: "store", ts: 1e-7 },
      options: { ts: 1e16, key: null, track: "v2" },
      data:
        "{\"ts\": 1e+16, \"key\": null, \"meta\": {\"schema_id\": \"telemetry.FeedbackEvent\", \"track\": \"v2\", \"headers\": {}, \"hash\": \"f542bf4b0cdae3e27e5d6e2ab1caebde66fdbc46856c46be8cccf4852c0acd6a\"}, \"payload\": {\"coordinator_id\": \"c\", \"queue_size\": 3, \"capacity\": 7, \"level\": \"hard\", \"source\": \"store\", \"ts\": 1e-07}}"
    },
    {
      name: "where repr switches to exponents, an explicit key",
      event: { coordinatorId: "edge", queueSize: 0, capacity: 9007199254740991, level: "ok", source: "s", ts: 1e-5 },
      options: { ts: 0.0001, key: "other", headers: { a: "1" } },
      data:
        "{\"ts\": 0.0001, \"key\": \"other\", \"meta\": {\"schema_id\": \"telemetry.FeedbackEvent\", \"track\": \"v1\", \"headers\": {\"a\": \"1\"}, \"hash\": \"cb4bf74bb99d0441b6592238aebffd3915195f9ca3f117f962fde04b836d79dc\"}, \"payload\": {\"coordinator_id\": \"edge\", \"queue_size\": 0, \"capacity\": 9007199254740991, \"level\": \"ok\", \"source\": \"s\", \"ts\": 1e-05}}"
    },
    {
      name: "escapes in ids, headers and source; -0.0",
      event: {
        coordinatorId: "q-é😀中",
        queueSize: 12,
        capacity: 13,
        level: "soft",
        source: "st\"o\\re\n\t\u007f/",
        ts: -0
      },
      options: { ts: 1700000000, key: null, headers: { reason: "hé\"\\\u0001", utilization: "0.923077", "ü": "🚀" } },
      data:
        "{\"ts\": 1700000000.0, \"key\": null, \"meta\": {\"schema_id\": \"telemetry.FeedbackEvent\", \"track\": \"v1\", \"headers\": {\"reason\": \"h\\u00e9\\\"\\\\\\u0001\", \"utilization\": \"0.923077\", \"\\u00fc\": \"\\ud83d\\ude80\"}, \"hash\": \"3d2fedcf284be497151572179975705d1ffee72b0ddc782d9f6ef04cfdfc07d7\"}, \"payload\": {\"coordinator_id\": \"q-\\u00e9\\ud83d\\ude00\\u4e2d\", \"queue_size\": 12, \"capacity\": 13, \"level\": \"soft\", \"source\": \"st\\\"o\\\\re\\n\\t\\u007f/\", \"ts\": -0.0}}"
    },
    {
      name: "large and negative floats",
      event: { coordinatorId: "neg", queueSize: 5, capacity: 6, level: "ok", source: "store", ts: -1.5e16 },
      options: { ts: 1.2345678901234567e+300, key: "k" },
      data:
        "{\"ts\": 1.2345678901234567e+300, \"key\": \"k\", \"meta\": {\"schema_id\": \"telemetry.FeedbackEvent\", \"track\": \"v1\", \"headers\": {}, \"hash\": \"687fc01324ad1e662ab261b83012488843c0764ca36d0ca725a7ca6dec755b7b\"}, \"payload\": {\"coordinator_id\": \"neg\", \"queue_size\": 5, \"capacity\": 6, \"level\": \"ok\", \"source\": \"store\", \"ts\": -1.5e+16}}"
    }
  ]
  for (const vector of python) {
    it(`as Python writes it: ${vector.name}`, () => {
      assert.strictEqual(encodeEntry(vector.event, vector.options), vector.data)
    })
  }

  it("the key defaults to the coordinator id; the track to v1", () => {
    const data = JSON.parse(encodeEntry(toEvent(base), { ts: 1 }))
    assert.strictEqual(data.key, "c")
    assert.strictEqual(data.meta.track, "v1")
    assert.deepStrictEqual(data.meta.headers, {})
    assert.deepStrictEqual(Object.keys(data), ["ts", "key", "meta", "payload"])
    assert.deepStrictEqual(Object.keys(data.meta), ["schema_id", "track", "headers", "hash"])
  })

  it("a non-finite envelope ts is a defect, not a body no reader accepts", () => {
    assert.throws(() => encodeEntry(toEvent(base), { ts: NaN }), RangeError)
    assert.throws(() => encodeEntry(toEvent(base), { ts: Infinity }), RangeError)
  })
})

describe("Python json.dumps pieces", () => {
  it(`float repr matches Python for all ${pydanticFloats.length} fixture doubles`, () => {
    // (the fixture's integer rows are `repr(int)`, not floats)
    const mismatches = pydanticFloats.filter(([repr]) => !/^-?\d+$/.test(repr) && pyFloatRepr(Number(repr)) !== repr)
    assert.deepStrictEqual(mismatches, [])
  })

  it("float repr switches to exponents where Python does", () => {
    const cases: Array<[number, string]> = [
      [0, "0.0"],
      [-0, "-0.0"],
      [1, "1.0"],
      [1700000000, "1700000000.0"],
      [1700000001.5, "1700000001.5"],
      [9999999999999998, "9999999999999998.0"],
      [1e16, "1e+16"],
      [-1.5e16, "-1.5e+16"],
      [1.2345e20, "1.2345e+20"],
      [1e21, "1e+21"],
      [1e100, "1e+100"],
      [0.0001, "0.0001"],
      [0.00012, "0.00012"],
      [9.999999999999999e-5, "9.999999999999999e-05"],
      [1e-5, "1e-05"],
      [-1.5e-5, "-1.5e-05"],
      [1e-7, "1e-07"],
      [1.234e-10, "1.234e-10"],
      [5e-324, "5e-324"],
      [1.7976931348623157e308, "1.7976931348623157e+308"]
    ]
    for (const [x, repr] of cases) assert.strictEqual(pyFloatRepr(x), repr, `${x}`)
  })

  it("strings are ensure_ascii with lowercase escapes and surrogate pairs", () => {
    assert.strictEqual(pyString("plain ~ text/"), "\"plain ~ text/\"")
    assert.strictEqual(pyString("q-é"), "\"q-\\u00e9\"")
    assert.strictEqual(pyString("😀"), "\"\\ud83d\\ude00\"")
    assert.strictEqual(pyString("\u00ff\u0100\uabcd"), "\"\\u00ff\\u0100\\uabcd\"")
    assert.strictEqual(pyString("\"\\\b\f\n\r\t\u0000\u001f\u007f"), "\"\\\"\\\\\\b\\f\\n\\r\\t\\u0000\\u001f\\u007f\"")
    assert.strictEqual(pyString("\ud800"), "\"\\ud800\"")
  })
})

describe("lax payload validation, as pydantic validates it", () => {
  // Verdicts of pydantic 2.13.4 for `FeedbackEvent.model_validate` with one field replaced.
  const verdicts: ReadonlyArray<readonly [field: string, value: unknown, ok: boolean, decoded?: unknown]> = [
    ["queue_size", "70", true, 70],
    ["queue_size", " 70 ", true, 70],
    ["queue_size", "\u00a070\n", true, 70],
    ["queue_size", "7_0", true, 70],
    ["queue_size", "1_000_000", true, 1000000],
    ["queue_size", "007", true, 7],
    ["queue_size", "70.0", true, 70],
    ["queue_size", "70.00", true, 70],
    ["queue_size", "70.", false],
    ["queue_size", "+70", true, 70],
    ["queue_size", "-0", true, 0],
    ["queue_size", true, true, 1],
    ["queue_size", false, true, 0],
    ["queue_size", 70.0, true, 70],
    ["queue_size", 1.5, false],
    ["queue_size", "1.5", false],
    ["queue_size", "abc", false],
    ["queue_size", null, false],
    ["queue_size", "", false],
    ["queue_size", "1e2", false],
    ["queue_size", "-1", false],
    ["queue_size", "_7", false],
    ["queue_size", "7_", false],
    ["queue_size", "7__0", false],
    ["queue_size", "0x10", false],
    ["queue_size", "\u0663", false],
    ["queue_size", "7 0", false],
    ["queue_size", [1], false],
    ["queue_size", {}, false],
    ["capacity", "0", false],
    ["capacity", false, false],
    ["capacity", true, true, 1],
    ["capacity", 100.0, true, 100],
    ["capacity", "100", true, 100],
    ["ts", "1700000000.5", true, 1700000000.5],
    ["ts", 1700000000, true, 1700000000.0],
    ["ts", true, true, 1.0],
    ["ts", false, true, 0.0],
    ["ts", " 1.5e3 ", true, 1500.0],
    ["ts", "1_000.5", true, 1000.5],
    ["ts", ".5", true, 0.5],
    ["ts", "5.", true, 5.0],
    ["ts", "-2E-3", true, -0.002],
    ["ts", "nope", false],
    ["ts", null, false],
    ["ts", "", false],
    ["ts", [1], false],
    ["ts", "1e5_0", true, 1e+50],
    ["level", "SOFT", false],
    ["level", "soft ", false],
    ["level", 1, false],
    ["level", null, false],
    ["coordinator_id", 5, false],
    ["coordinator_id", null, false],
    ["coordinator_id", "", true, ""],
    ["source", null, false],
    ["source", 1, false],
    ["source", "", true, ""],
    ["reason", "queue_recovered", true],
    ["utilization", 0.5, true]
  ]
  const names: Record<string, keyof FeedbackEvent> = {
    coordinator_id: "coordinatorId",
    queue_size: "queueSize",
    capacity: "capacity",
    level: "level",
    source: "source",
    ts: "ts"
  }
  for (const [field, value, ok, decoded] of verdicts) {
    it(`${field} = ${JSON.stringify(value)}: ${ok ? "accepted" : "dead-lettered"}`, () => {
      const data = body({ ...base, [field]: value })
      if (ok) {
        const event = accepted(data).event
        const name = names[field]
        if (name !== undefined) assert.strictEqual(event[name], decoded)
        assert.deepStrictEqual(Object.keys(event), ["coordinatorId", "queueSize", "capacity", "level", "source", "ts"])
      } else {
        assert.include(rejected(data), `payload.${field}: `)
      }
    })
  }

  it("source defaults to store; a missing required field is named", () => {
    const { source: _, ...withoutSource } = base
    assert.strictEqual(accepted(body(withoutSource)).event.source, "store")
    const { ts: __, ...withoutTs } = base
    assert.strictEqual(rejected(body(withoutTs)), "payload.ts: Missing key")
  })

  it("every bad field is named at once", () => {
    const reason = rejected(body({ coordinator_id: 1, queue_size: -1, capacity: 0, level: "x" }))
    for (const field of ["coordinator_id", "queue_size", "capacity", "level", "ts"]) {
      assert.include(reason, `payload.${field}: `)
    }
  })

  it("NaN and infinities, which Python takes, are refused: the contract's floats are finite", () => {
    for (const ts of ["nan", "inf", "-Infinity", "1e400"]) {
      assert.include(rejected(body({ ...base, ts })), "payload.ts: Expected a finite number")
    }
  })

  it("coordinator ids are bounded as at every ingest edge", () => {
    const long = "x".repeat(129)
    assert.strictEqual(rejected(body({ ...base, coordinator_id: long })), `payload.${coordinatorIdIssue(long)}`)
    assert.include(rejected(body({ ...base, coordinator_id: "a\u0007b" })), "payload.coordinator_id: ")
    assert.include(rejected(body({ ...base, coordinator_id: "a\ud800" })), "payload.coordinator_id: ")
    assert.strictEqual(accepted(body({ ...base, coordinator_id: "é".repeat(64) })).event.coordinatorId, "é".repeat(64))
  })
})

describe("envelope validation", () => {
  it("the hash is never a reason to reject", () => {
    for (const hash of ["0".repeat(64), "not a hash", null, 5, { a: 1 }]) {
      assert.strictEqual(accepted(body(base, { hash })).event.coordinatorId, "c")
    }
    const { hash: _, ...meta } = JSON.parse(body(base)).meta
    assert.strictEqual(accepted(JSON.stringify({ ts: 1, meta, payload: base })).event.queueSize, 1)
  })

  it("meta defaults as in EventMeta: track v1, no headers; the key may be null or absent", () => {
    const decoded = accepted(
      JSON.stringify({ ts: "1700000000.5", meta: { schema_id: FEEDBACK_SCHEMA_ID }, payload: base })
    )
    assert.strictEqual(decoded.track, "v1")
    assert.deepStrictEqual(decoded.headers, {})
    assert.strictEqual(decoded.envelopeTs, 1700000000.5)
    assert.strictEqual(accepted(body(base, { track: "v2" }, { key: null })).track, "v2")
  })

  it("bad envelopes are dead-lettered naming what is wrong", () => {
    const cases: Array<[string, string]> = [
      ["[1, 2]", "(root): Expected an envelope object, got an array"],
      ["\"text\"", "(root): Expected an envelope object, got \"text\""],
      ["null", "(root): Expected an envelope object, got null"],
      [body(base, {}, { ts: "soon" }), "ts: Expected a finite number, got \"soon\""],
      [body(base, {}, { ts: undefined }), "ts: Missing key"],
      [body(base, {}, { key: 5 }), "key: Expected a string or null, got 5"],
      [body(base, {}, { meta: undefined }), "meta: Missing key"],
      [body(base, {}, { meta: "m" }), "meta: Expected an object, got \"m\""],
      [body(base, { schema_id: undefined }), "meta.schema_id: Missing key"],
      [body(base, { schema_id: 7 }), "meta.schema_id: Expected a string, got 7"],
      [body(base, { track: "v3" }), "meta.track: Expected \"v1\" | \"v2\", got \"v3\""],
      [body(base, { headers: [] }), "meta.headers: Expected an object of strings, got an array"],
      [body(base, { headers: { reason: 1 } }), "meta.headers[\"reason\"]: Expected a well-formed string, got 1"],
      [body(undefined), "payload: Missing key"],
      [body(null), "payload: Expected object, got null"],
      [
        body(base, { schema_id: "telemetry.RateAdjustment" }),
        "meta.schema_id: Unknown schema id \"telemetry.RateAdjustment\", expected telemetry.FeedbackEvent, " +
        "telemetry.backpressure.FeedbackEvent or events.envelope.EventEnvelope"
      ]
    ]
    for (const [data, reason] of cases) assert.strictEqual(rejected(data), reason, data)
    assert.strictEqual(
      rejected(body(base, { track: 1, schema_id: 2 }, { ts: null })),
      "ts: Expected a finite number, got null; meta.schema_id: Expected a string, got 2; " +
        "meta.track: Expected \"v1\" | \"v2\", got 1"
    )
  })

  it("reasons are bounded, whatever the input", () => {
    const reason = rejected(body({ ...base, level: "x".repeat(100_000), source: 5, capacity: "y".repeat(5000) }))
    assert.isAtMost(reason.length, 1024)
    assert.include(reason, "payload.level: ")
  })
})

describe("the store's double-wrapped envelope", () => {
  const inner = (payload: unknown, meta: Record<string, unknown> = {}, envelope: Record<string, unknown> = {}) => ({
    id: "",
    key: "c",
    ts: 1700000000.25,
    meta: { schema_id: FEEDBACK_SCHEMA_ID, track: "v1", headers: {}, hash: null, ...meta },
    payload,
    ...envelope
  })
  const wrapped = (value: unknown, headers: Record<string, string> = {}) =>
    body(value, { schema_id: "events.envelope.EventEnvelope", headers })

  it("inner headers over outer ones; lag from the outer ts; the outer schema id", () => {
    const decoded = accepted(
      wrapped(inner(base, { headers: { reason: "high_watermark", utilization: "0.800000" } }), {
        reason: "outer",
        region: "eu"
      })
    )
    assert.deepStrictEqual(decoded.headers, { reason: "high_watermark", utilization: "0.800000", region: "eu" })
    assert.strictEqual(decoded.envelopeTs, 1700000000.5)
    assert.strictEqual(decoded.schemaId, "events.envelope.EventEnvelope")
    assert.deepStrictEqual(decoded.event, toEvent(base))
  })

  it("the inner envelope is validated too, and paths say where", () => {
    assert.strictEqual(rejected(wrapped("x")), "payload: Expected an envelope object, got \"x\"")
    assert.strictEqual(rejected(wrapped(inner(base, {}, { ts: undefined }))), "payload.ts: Missing key")
    assert.strictEqual(
      rejected(wrapped(inner(base, { track: "v9" }))),
      "payload.meta.track: Expected \"v1\" | \"v2\", got \"v9\""
    )
    assert.strictEqual(
      rejected(wrapped(inner({ ...base, queue_size: -1 }))),
      "payload.payload.queue_size: Expected a value greater than or equal to 0, got -1"
    )
    assert.strictEqual(
      rejected(wrapped(inner(base, { schema_id: "events.envelope.EventEnvelope" }))),
      "payload.meta.schema_id: Unknown schema id \"events.envelope.EventEnvelope\", expected " +
        "telemetry.FeedbackEvent or telemetry.backpressure.FeedbackEvent inside an events.envelope.EventEnvelope"
    )
    assert.strictEqual(accepted(wrapped(inner({ ...base, queue_size: "9" }))).event.queueSize, 9)
  })

  it("a __proto__ header is data, not a prototype", () => {
    const data = "{\"ts\": 1, \"meta\": {\"schema_id\": \"telemetry.FeedbackEvent\", \"headers\": " +
      "{\"__proto__\": \"x\", \"a\": \"b\"}}, \"payload\": " + JSON.stringify(base) + "}"
    const headers = accepted(data).headers
    assert.deepStrictEqual(Object.keys(headers), ["__proto__", "a"])
    assert.strictEqual(Object.getPrototypeOf(headers), Object.prototype)
    assert.strictEqual(Object.hasOwn(headers, "__proto__") && headers["__proto__"], "x")
  })
})

// ---------------------------------------------------------------------------
// Properties

const WellFormed = Schema.String.check(Schema.makeFilter((s: string) => s.isWellFormed()))

const options = Arbitrary.all({
  ts: Arbitrary.schema(Schema.Finite),
  track: Arbitrary.schema(Schema.Literals(["v1", "v2"])),
  headers: Arbitrary.schema(Schema.Record(WellFormed, WellFormed)),
  key: Arbitrary.schema(Schema.NullOr(Schema.String))
})

describe("round trip of generated events", () => {
  it.prop(
    "decodeEntry(encodeEntry(e)) gives back e, its envelope ts, track and headers",
    { event: Schema.toType(FeedbackEvent), options },
    ({ event, options }) => {
      const data = encodeEntry(event, options)
      const result = decodeEntry(data)
      const issue = coordinatorIdIssue(event.coordinatorId)
      if (issue !== undefined) {
        // what an ingest edge refuses is refused here too, and nothing else is
        assert.isTrue(Result.isFailure(result))
        if (Result.isFailure(result)) assert.strictEqual(result.failure.reason, `payload.${issue}`)
        return
      }
      if (Result.isFailure(result)) throw new Error(result.failure.reason)
      assert.deepStrictEqual(result.success.event, event)
      assert.strictEqual(result.success.envelopeTs, options.ts)
      assert.strictEqual(result.success.track, options.track)
      assert.strictEqual(result.success.schemaId, FEEDBACK_SCHEMA_ID)
      assert.deepStrictEqual(result.success.headers, options.headers)
      // the hash covers the compact pydantic payload
      assert.strictEqual(JSON.parse(data).meta.hash, sha256(encodeJson(FeedbackEvent)(event)))
      // and re-encoding the decoded entry writes the same bytes
      assert.strictEqual(encodeEntry(result.success.event, { ...options, headers: result.success.headers }), data)
    },
    { arbitrary: { runs: 500 } }
  )
})

const junk: ReadonlyArray<unknown> = [
  undefined,
  null,
  true,
  0,
  -1,
  1.5,
  2 ** 53,
  1e300,
  "",
  "5",
  " 7 ",
  "1e5",
  "inf",
  "ok",
  "a\ud800",
  "x".repeat(300),
  [],
  [1],
  {},
  { schema_id: "telemetry.FeedbackEvent" },
  { schema_id: "events.envelope.EventEnvelope" },
  { coordinator_id: "c", queue_size: 1, capacity: 2, level: "ok", ts: 1 }
]

const mutate = mutateWith(junk)

// Always a Result: a valid event with a bounded id, or a bounded reason.
const assertWellBehaved = (data: string): void => {
  const result = decodeEntry(data)
  assert.isTrue(Result.isResult(result))
  if (Result.isSuccess(result)) {
    assert.isTrue(Schema.is(Schema.toType(FeedbackEvent))(result.success.event))
    assert.isUndefined(coordinatorIdIssue(result.success.event.coordinatorId))
    assert.isTrue(Number.isFinite(result.success.envelopeTs))
  } else {
    assert.strictEqual(result.failure._tag, "PulseDecodeError")
    assert.isAbove(result.failure.reason.length, 0)
    assert.isAtMost(result.failure.reason.length, 1024)
  }
}

const Index = (maximum: number) => Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum })))

describe("garbage never throws", () => {
  it.prop("random text", { text: Schema.String }, ({ text }) => {
    assertWellBehaved(text)
    assertWellBehaved(`{"ts": 1, "meta": ${text}}`)
  }, { arbitrary: { runs: 500 } })

  it.prop(
    "bodies with a value replaced or a key dropped, in both envelope shapes",
    {
      event: Schema.toType(FeedbackEvent),
      options,
      wrap: Schema.Boolean,
      path: Arbitrary.array(Index(9), { maxLength: 5 }),
      pick: Index(1000)
    },
    ({ event, options, path, pick, wrap }) => {
      let document = JSON.parse(encodeEntry(event, options))
      if (wrap) {
        document = { ...document, meta: { ...document.meta, schema_id: "events.envelope.EventEnvelope" } }
        document.payload = { id: "", ...JSON.parse(encodeEntry(event, options)) }
      }
      assertWellBehaved(JSON.stringify(mutate(document, path, pick)))
    },
    { arbitrary: { runs: 1000 } }
  )

  it.prop(
    "bodies with text cut, spliced or overwritten",
    { event: Schema.toType(FeedbackEvent), options, at: Index(2000), length: Index(40), insert: Schema.String },
    ({ at, event, insert, length, options }) => {
      const data = encodeEntry(event, options)
      const i = at % (data.length + 1)
      assertWellBehaved(data.slice(0, i))
      assertWellBehaved(data.slice(0, i) + insert + data.slice(i + length))
    },
    { arbitrary: { runs: 1000 } }
  )

  it("pathological inputs", () => {
    const deep = "[".repeat(100_000) + "]".repeat(100_000)
    const envelope = "{\"ts\": 1, \"meta\": {\"schema_id\": \"telemetry.FeedbackEvent\", \"headers\": "
    for (
      const data of [
        "",
        "{}",
        "[".repeat(100_000),
        deep,
        envelope + "{}}, \"payload\": {\"coordinator_id\": \"c\", \"level\": " + deep + "}}",
        envelope + "{\"a\": " + deep + "}}, \"payload\": {}}",
        envelope + "{}}, \"payload\": " + deep + "}",
        "{\"__proto__\": {\"ts\": 1}, \"constructor\": 1}",
        body({ ...base, constructor: 1, __proto__: null }),
        "\"" + "\\u0000".repeat(10_000) + "\""
      ]
    ) assertWellBehaved(data)
  })
})
