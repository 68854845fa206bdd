import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Effect, Exit, Schema } from "effect"
import { decodeUnknown } from "market-data-pipeline"
import { codecOf, Invalid } from "../../src/contracts/internal/wire.ts"
import { mutate as mutateWith } from "../fixtures/mutate.ts"
import { contracts } from "./all.ts"

// The compiled wire codec must accept exactly what the Schema accepts, and decode to the same value.

const junk: ReadonlyArray<unknown> = [
  undefined,
  null,
  true,
  0,
  -1,
  1.5,
  2 ** 53,
  -0,
  1e300,
  Infinity,
  NaN,
  "",
  "5",
  "ok",
  "OK",
  "healthy",
  "liveness",
  "pause",
  "error",
  "a\ud800",
  [],
  [1],
  {},
  { values: { a: 1 } },
  { values: {} },
  { status: "ok" },
  { name: "x", state: "healthy" }
]

const mutate = mutateWith(junk)

/** A valid value of `schema`, and where and how to mutate its encoded document. */
const mutations = (schema: Schema.Codec<unknown, unknown>) =>
  Arbitrary.all({
    value: Arbitrary.schema(Schema.toType(schema)),
    path: Arbitrary.array(Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 9 }))), {
      maxLength: 4
    }),
    pick: Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 1000 })))
  })

describe("compiled wire codec agrees with the Schema", () => {
  for (const [name, schema] of Object.entries(contracts)) {
    const codec = codecOf(schema)!
    const encode = Schema.encodeSync(schema)
    const decodeWithSchema = Schema.decodeUnknownExit(schema)
    const arbitrary = mutations(schema)
    it.prop(`${name}: same verdict and value on mutated documents`, { input: arbitrary }, ({ input }) => {
      const document = mutate(encode(input.value), input.path, input.pick)
      const fast = codec.decode(document)
      const slow = decodeWithSchema(document)
      if (Exit.isSuccess(slow)) {
        assert.notStrictEqual(fast, Invalid, `schema accepted, codec rejected ${JSON.stringify(document)}`)
        assert.deepStrictEqual(fast, slow.value)
      } else {
        assert.strictEqual(fast, Invalid, `schema rejected, codec accepted ${JSON.stringify(document)}`)
        // and the public decoder then reports the schema's issues
        assert.strictEqual(Effect.runSync(Effect.flip(decodeUnknown(schema)(document)))._tag, "ContractError")
      }
    }, { arbitrary: { runs: 500 } })
  }
})

// A hand-written decoder (a hot contract's) must answer exactly as the one compiled from its fields.

const edgeCases: ReadonlyArray<unknown> = [
  { coordinator_id: "a", queue_size: -0, capacity: 1, level: "ok", ts: 0 },
  { coordinator_id: "a", queue_size: 0, capacity: 1, level: "ok", ts: 0, source: undefined },
  { coordinator_id: "a", queue_size: 0, capacity: 1, level: "ok", ts: 0, source: null },
  { coordinator_id: "a", queue_size: 0, capacity: 0, level: "ok", ts: 0 },
  { coordinator_id: "a", queue_size: 0, capacity: 2 ** 53, level: "ok", ts: 0 },
  { coordinator_id: "a", queue_size: 0, capacity: 1, level: "OK", ts: 0 },
  { coordinator_id: "a", queue_size: 0, capacity: 1, level: "ok", ts: -Infinity },
  { coordinator_id: "a\udc00", queue_size: 0, capacity: 1, level: "ok", ts: 0 },
  { coordinator_id: "a", queue_size: 0, capacity: 1, level: "ok", ts: 0, source: "b\ud800" },
  { coordinator_id: "a", queue_size: 0, capacity: 1, level: "ok" },
  JSON.parse("{\"__proto__\":{\"coordinator_id\":\"p\"},\"queue_size\":0,\"capacity\":1,\"level\":\"ok\",\"ts\":0}"),
  Object.assign(Object.create({ coordinator_id: "inherited" }), { queue_size: 0, capacity: 1, level: "ok", ts: 0 }),
  ["coordinator_id"]
]

describe("hand-written decoders agree with the compiled ones", () => {
  for (const [name, schema] of Object.entries(contracts)) {
    const codec = codecOf(schema)!
    const compiled = codec.compiled
    if (compiled === undefined) continue
    const encode = Schema.encodeSync(schema)
    const arbitrary = mutations(schema)
    it.prop(`${name}: same verdict and value on mutated documents`, { input: arbitrary }, ({ input }) => {
      const document = mutate(encode(input.value), input.path, input.pick)
      assert.deepStrictEqual(codec.decode(document), compiled(document))
    }, { arbitrary: { runs: 1000 } })
    it(`${name}: same verdict and value on edge cases and junk`, () => {
      for (const document of [...edgeCases, ...junk]) {
        const fast = codec.decode(document)
        const slow = compiled(document)
        assert.deepStrictEqual(fast, slow, JSON.stringify(document))
        if (fast !== Invalid) assert.isTrue(Object.is((fast as any).queueSize, (slow as any).queueSize))
      }
    })
  }
})
