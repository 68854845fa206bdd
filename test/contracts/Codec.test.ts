import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Schema } from "effect"
import {
  ContractError,
  decodeJson,
  decodeUnknown,
  encodeJson,
  FeedbackEvent,
  HealthStatus,
  jsonSchema,
  MetricPoint,
  MetricSeries,
  Probe,
  RateAdjustment
} from "market-data-pipeline"
import { formatFloat } from "../../src/contracts/internal/pyFloat.ts"
import { pydanticDocuments, pydanticFloats, wireExamples } from "../fixtures/index.ts"
import { contracts } from "./all.ts"

const roundTrip = (type: string, input: string) =>
  decodeJson(contracts[type]!)(input).pipe(Effect.map(encodeJson(contracts[type]!)))

const failureOf = <A>(effect: Effect.Effect<A, ContractError>): ContractError => {
  const exit = Effect.runSyncExit(effect)
  if (Exit.isSuccess(exit)) throw new Error(`expected a ContractError, decoded ${JSON.stringify(exit.value)}`)
  return Effect.runSync(Effect.flip(effect))
}

describe("wire examples produced by the Python services", () => {
  for (const [i, vector] of wireExamples.entries()) {
    if (vector.canonical !== undefined) {
      it.effect(`#${i} ${vector.type} decodes and re-encodes to the canonical bytes`, () =>
        Effect.gen(function*() {
          assert.strictEqual(yield* roundTrip(vector.type, vector.input), vector.canonical)
          assert.strictEqual(yield* roundTrip(vector.type, vector.canonical!), vector.canonical)
        }))
    } else {
      it(`#${i} ${vector.type} is rejected naming ${vector.invalid!.join(", ")}`, () => {
        const error = failureOf(decodeJson(contracts[vector.type]!)(vector.input))
        assert.strictEqual(error._tag, "ContractError")
        assert.deepStrictEqual(error.issues.map((issue) => issue.path), vector.invalid)
        for (const field of vector.invalid!) assert.include(error.message, `${field}: `)
      })
    }
  }
})

describe("pydantic float layout", () => {
  it(`matches pydantic for all ${pydanticFloats.length} fixture doubles`, () => {
    const mismatches = pydanticFloats.filter(([repr, json]) => formatFloat(Number(repr)) !== json)
    assert.deepStrictEqual(mismatches, [])
  })

  it("switches to exponent notation exactly where pydantic does", () => {
    const cases: Array<[number, string]> = [
      [0, "0.0"],
      [-0, "-0.0"],
      [1, "1.0"],
      [1700000000, "1700000000.0"],
      [9999999999999998, "9999999999999998.0"],
      [1e16, "1e+16"],
      [-1.5e16, "-1.5e+16"],
      [1.5e19, "1.5e+19"],
      [-1.2345e20, "-1.2345e+20"],
      [1e21, "1e+21"],
      [1e-5, "0.00001"],
      [-1.5e-5, "-0.000015"],
      [1e-6, "1e-6"],
      [-1.234e-6, "-1.234e-6"],
      [1e-7, "1e-7"],
      [5e-324, "5e-324"],
      [1.7976931348623157e308, "1.7976931348623157e+308"]
    ]
    for (const [x, json] of cases) assert.strictEqual(formatFloat(x), json, `${x}`)
  })

  it("applies to every float field of every contract", () => {
    const encode = encodeJson(MetricPoint)
    assert.strictEqual(
      encode({ name: "n", value: 1e16, labels: { values: {} }, ts: -0 }),
      "{\"name\":\"n\",\"value\":1e+16,\"labels\":{\"values\":{}},\"ts\":-0.0}"
    )
    assert.strictEqual(
      encodeJson(RateAdjustment)({ provider: "p", scale: 1e-6, reason: "soft", ts: 1 }),
      "{\"provider\":\"p\",\"scale\":1e-6,\"reason\":\"soft\",\"ts\":1.0}"
    )
  })

  it.effect("writes a non-finite float as pydantic does, null, which does not decode again", () =>
    Effect.gen(function*() {
      for (const ts of [Number.NaN, Infinity, -Infinity]) {
        const text = encodeJson(FeedbackEvent)({
          coordinatorId: "c",
          queueSize: 1,
          capacity: 2,
          level: "ok",
          source: "store",
          ts
        })
        assert.strictEqual(
          text,
          "{\"coordinator_id\":\"c\",\"queue_size\":1,\"capacity\":2,\"level\":\"ok\",\"source\":\"store\",\"ts\":null}"
        )
        assert.strictEqual(JSON.parse(text).ts, null)
        const error = yield* Effect.flip(decodeJson(FeedbackEvent)(text))
        assert.strictEqual(error._tag, "ContractError")
      }
      assert.strictEqual(
        encodeJson(MetricPoint)({ name: "n", value: Infinity, labels: { values: {} }, ts: 1 }),
        "{\"name\":\"n\",\"value\":null,\"labels\":{\"values\":{}},\"ts\":1.0}"
      )
    }))
})

describe("random documents re-encoded by pydantic", () => {
  // JavaScript objects list integer-like keys ("9") first; pydantic keeps input order.
  // Documents with such keys in a dict are compared as JSON values instead of bytes.
  const integerKeyed = (text: string) => /[{,]"(0|[1-9]\d*)":/.test(text)
  const exact = pydanticDocuments.filter((doc) => !integerKeyed(doc.canonical))
  const reordered = pydanticDocuments.filter((doc) => integerKeyed(doc.canonical))

  it(`${exact.length} of ${pydanticDocuments.length} decode and re-encode byte-identically`, () => {
    assert.isAbove(exact.length, 1400)
    const mismatches = exact.flatMap((doc) => {
      const exit = Effect.runSyncExit(roundTrip(doc.type, doc.input))
      return Exit.isSuccess(exit) && exit.value === doc.canonical ? [] : [{ ...doc, got: exit }]
    })
    assert.deepStrictEqual(mismatches, [])
  })

  it(`the ${reordered.length} with integer-like dict keys re-encode to the same JSON value`, () => {
    for (const doc of reordered) {
      const text = Effect.runSync(roundTrip(doc.type, doc.input))
      assert.deepStrictEqual(JSON.parse(text), JSON.parse(doc.canonical))
    }
  })
})

describe("decoding rules", () => {
  const valid = { coordinator_id: "c", queue_size: 1, capacity: 2, level: "ok", ts: 1.5 }
  const reject = (patch: Record<string, unknown>, field: string, expected: string) => {
    const error = failureOf(decodeUnknown(FeedbackEvent)({ ...valid, ...patch }))
    const issue = error.issues.find((issue) => issue.path === field)
    assert.isDefined(issue, error.message)
    assert.include(issue!.message, expected)
  }

  it("ignores unknown keys (the store's reason, the broadcast's utilization)", () => {
    const event = Effect.runSync(decodeUnknown(FeedbackEvent)({ ...valid, reason: "x", utilization: 0.5 }))
    assert.deepStrictEqual(event, {
      coordinatorId: "c",
      queueSize: 1,
      capacity: 2,
      level: "ok",
      source: "store",
      ts: 1.5
    })
  })

  it("is strict on types: no numeric strings, no booleans for numbers", () => {
    reject({ queue_size: "5" }, "queue_size", "Expected number")
    reject({ capacity: true }, "capacity", "Expected number")
    reject({ ts: "1700000000" }, "ts", "Expected number")
    reject({ coordinator_id: 5 }, "coordinator_id", "Expected string")
    reject({ source: null }, "source", "Expected string")
  })

  it("requires safe integers and finite numbers", () => {
    reject({ queue_size: 2 ** 53 }, "queue_size", "integer")
    reject({ capacity: 1.5 }, "capacity", "integer")
    reject({ ts: Infinity }, "ts", "finite")
    reject({ ts: NaN }, "ts", "finite")
    const error = failureOf(
      decodeJson(FeedbackEvent)(
        "{\"coordinator_id\":\"c\",\"queue_size\":1,\"capacity\":1,\"level\":\"ok\",\"ts\":1e400}"
      )
    )
    assert.deepStrictEqual(error.issues.map((issue) => issue.path), ["ts"])
  })

  it("accepts an integral float for an int field, as pydantic does", () => {
    const event = Effect.runSync(
      decodeJson(FeedbackEvent)(
        "{\"coordinator_id\":\"c\",\"queue_size\":5.0,\"capacity\":1,\"level\":\"ok\",\"ts\":1}"
      )
    )
    assert.strictEqual(event.queueSize, 5)
  })

  it("rejects strings Python cannot read (lone surrogates)", () => {
    reject({ coordinator_id: "a\ud800" }, "coordinator_id", "surrogate")
  })

  it("lists every problem with its path in one message", () => {
    const error = failureOf(
      decodeJson(HealthStatus)(
        "{\"service\":\"s\",\"state\":\"ok\",\"components\":[{\"name\":\"db\",\"state\":\"healthy\"},{\"name\":1,\"state\":\"up\",\"details\":{\"k\":2}}],\"version\":\"1\"}"
      )
    )
    assert.deepStrictEqual(error.issues.map((issue) => issue.path), [
      "state",
      "components[1].name",
      "components[1].state",
      "components[1].details.k",
      "ts"
    ])
    assert.strictEqual(
      error.message,
      "invalid HealthStatus: state: Expected \"healthy\" | \"degraded\" | \"unhealthy\", got \"ok\"; " +
        "components[1].name: Expected string, got 1; " +
        "components[1].state: Expected \"healthy\" | \"degraded\" | \"unhealthy\", got \"up\"; " +
        "components[1].details.k: Expected string, got 2; ts: Missing key"
    )
  })

  it("reports text that is not JSON, or not an object, at the root", () => {
    assert.deepStrictEqual(failureOf(decodeJson(FeedbackEvent)("{\"a\":")).issues.map((i) => i.path), ["(root)"])
    assert.include(failureOf(decodeJson(FeedbackEvent)("not json")).message, "invalid JSON")
    assert.include(failureOf(decodeJson(FeedbackEvent)("[1,2]")).message, "(root): Expected object")
    assert.include(failureOf(decodeJson(FeedbackEvent)("null")).message, "(root)")
  })

  it("fills defaults: source, details, components, labels, points, message, detail", () => {
    const probe = Effect.runSync(decodeJson(Probe)("{\"probe_type\":\"liveness\",\"passed\":true}"))
    assert.deepStrictEqual(probe, { probeType: "liveness", passed: true, message: null })
    assert.strictEqual(encodeJson(Probe)(probe), "{\"probe_type\":\"liveness\",\"passed\":true,\"message\":null}")
    const series = Effect.runSync(
      decodeJson(MetricSeries)("{\"name\":\"s\",\"points\":[{\"name\":\"p\",\"value\":1,\"ts\":2}]}")
    )
    assert.strictEqual(
      encodeJson(MetricSeries)(series),
      "{\"name\":\"s\",\"points\":[{\"name\":\"p\",\"value\":1.0,\"labels\":{\"values\":{}},\"ts\":2.0}]}"
    )
  })

  it("writes non-ASCII as raw UTF-8 and escapes control characters like pydantic", () => {
    const event = Effect.runSync(decodeUnknown(FeedbackEvent)({ ...valid, coordinator_id: "é中😀\n\u0001\"\\/" }))
    assert.include(encodeJson(FeedbackEvent)(event), "\"coordinator_id\":\"é中😀\\n\\u0001\\\"\\\\/\"")
  })
})

describe("JSON Schema", () => {
  it("FeedbackEvent: required fields and source default match the Python side", () => {
    const schema = jsonSchema(FeedbackEvent) as any
    assert.deepStrictEqual(schema.required, ["coordinator_id", "queue_size", "capacity", "level", "ts"])
    assert.deepStrictEqual(schema.properties.source, { type: "string", default: "store" })
    assert.strictEqual(schema.properties.queue_size.type, "integer")
    assert.strictEqual(schema.properties.queue_size.minimum, 0)
    assert.strictEqual(schema.properties.capacity.exclusiveMinimum, 0)
    assert.deepStrictEqual(schema.properties.level.enum, ["ok", "soft", "hard"])
    assert.strictEqual(schema.properties.ts.type, "number")
    assert.strictEqual(schema.$schema_id, "telemetry.FeedbackEvent")
    assert.strictEqual(schema.$track, "v1")
  })

  it("RateAdjustment bounds scale to [0, 1]", () => {
    const schema = jsonSchema(RateAdjustment) as any
    assert.deepStrictEqual(schema.required, ["provider", "scale", "reason", "ts"])
    assert.strictEqual(schema.properties.scale.minimum, 0)
    assert.strictEqual(schema.properties.scale.maximum, 1)
  })
})

describe("round trip of generated values", () => {
  for (const [name, schema] of Object.entries(contracts)) {
    it.prop(`${name}: decodeJson(encodeJson(x)) equals x`, { x: Schema.toType(schema) }, ({ x }) => {
      const text = encodeJson(schema)(x)
      const decoded = Effect.runSync(decodeJson(schema)(text))
      assert.deepStrictEqual(decoded, x)
      assert.strictEqual(encodeJson(schema)(decoded), text)
    }, { arbitrary: { runs: 300 } })
  }
})
