/**
 * Decode+validate and encode of a FeedbackEvent, side by side with Effect
 * Schema's generic codec and the bare JSON floor.
 */
import { Exit, Schema } from "effect"
import { decodeJson, encodeJson, FeedbackEvent } from "market-data-pipeline"
import { formatRate, measure, runSync, table } from "./harness.ts"

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
  const python = { decode: 670_000, encode: 770_000 }
  const decodeResults = decodeCases.map((c) => measure(c))
  const encodeResults = encodeCases.map((c) => measure(c))
  table("Contracts: FeedbackEvent JSON (Python pydantic 2: 670k decodes/s, 770k encodes/s)", [
    ["case", "rate", "vs Python"],
    ...decodeResults.map((r) =>
      [r.name, formatRate(r.opsPerSecond), `${(r.opsPerSecond / python.decode).toFixed(2)}x`] as const
    ),
    ...encodeResults.map((r) =>
      [r.name, formatRate(r.opsPerSecond), `${(r.opsPerSecond / python.encode).toFixed(2)}x`] as const
    )
  ])
}
