/**
 * Decode+validate and encode of a FeedbackEvent, side by side with Effect
 * Schema's generic codec and the bare JSON floor.
 */
import { Exit, Schema } from "effect"
import { decodeJson, encodeJson, FeedbackEvent } from "market-data-pipeline"
import { measure, ratioTarget, record, runSync, show } from "./harness.ts"

const text =
  "{\"coordinator_id\":\"store_01\",\"queue_size\":800,\"capacity\":1000,\"level\":\"soft\",\"ts\":1700000000.25}"

export const run = (): void => {
  const event = runSync(decodeJson(FeedbackEvent)(text))
  const decode = decodeJson(FeedbackEvent)
  const encode = encodeJson(FeedbackEvent)
  const schemaDecode = Schema.decodeUnknownExit(Schema.fromJsonString(FeedbackEvent))
  const schemaEncode = Schema.encodeExit(Schema.fromJsonString(FeedbackEvent))

  const decodeCases = [
    {
      name: "decodeJson(FeedbackEvent)",
      run: (n: number) => {
        let last: unknown
        for (let i = 0; i < n; i++) last = decode(text)
        if (!Exit.isExit(last) || !Exit.isSuccess(last)) throw new Error("decode failed")
        return last
      }
    },
    {
      name: "Effect Schema fromJsonString decode",
      run: (n: number) => {
        let last: unknown
        for (let i = 0; i < n; i++) last = schemaDecode(text)
        return last
      }
    },
    {
      name: "JSON.parse alone (floor, no validation)",
      run: (n: number) => {
        let last: unknown
        for (let i = 0; i < n; i++) last = JSON.parse(text)
        return last
      }
    }
  ]
  const encodeCases = [
    {
      name: "encodeJson(FeedbackEvent)",
      run: (n: number) => {
        let last = ""
        for (let i = 0; i < n; i++) last = encode(event)
        return last
      }
    },
    {
      name: "Effect Schema fromJsonString encode",
      run: (n: number) => {
        let last: unknown
        for (let i = 0; i < n; i++) last = schemaEncode(event)
        return last
      }
    },
    {
      name: "JSON.stringify alone (floor, not pydantic-exact)",
      run: (n: number) => {
        let last = ""
        for (let i = 0; i < n; i++) last = JSON.stringify(event)
        return last
      }
    }
  ]
  const [ours, effectDecode, parse] = decodeCases.map((c) => measure(c).opsPerSecond)
  const [oursEncode, effectEncode, stringify] = encodeCases.map((c) => measure(c).opsPerSecond)
  const title = "Contracts: FeedbackEvent JSON text, decode + validate and encode"
  record(title, "decodeJson(FeedbackEvent): decode + validate", ours!, "ops/s", {
    alternatives: [
      { name: "JSON.parse alone (no validation)", kind: "floor", value: parse!, target: ratioTarget("≥", 0.7) },
      { name: "Effect Schema fromJsonString decode", kind: "peer", value: effectDecode! },
      { name: "Python 3.11 pydantic 2 decode", kind: "quoted", value: 671_000 }
    ]
  })
  record(title, "encodeJson(FeedbackEvent): pydantic-exact text", oursEncode!, "ops/s", {
    alternatives: [
      { name: "JSON.stringify alone (not pydantic-exact)", kind: "floor", value: stringify! },
      { name: "Effect Schema fromJsonString encode", kind: "peer", value: effectEncode! },
      { name: "Python 3.11 pydantic 2 encode", kind: "quoted", value: 769_000 }
    ]
  })
  show(title)
}
