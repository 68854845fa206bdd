import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { FeedbackPublisher, PipelineMetrics } from "market-data-pipeline"
import { event, withRuntime } from "../feedback/helpers.ts"

describe("PipelineMetrics", () => {
  it.effect("label values are bounded: ids published in process are cut to 128 bytes, long ones stay distinct", () =>
    Effect.gen(function*() {
      const publisher = yield* FeedbackPublisher
      const metrics = yield* PipelineMetrics
      const long = (tail: string) => "店".repeat(20_000) + tail
      yield* publisher.publish(event(long("a"), "ok"))
      yield* publisher.publish(event(long("b"), "ok"))
      yield* publisher.publish(event("short-id", "ok"))
      const text = yield* metrics.prometheus
      const received = text.split("\n").filter((line) => line.startsWith("pipeline_feedback_events_received_total{"))
      assert.strictEqual(received.length, 3)
      const sources = received.map((line) => /source="([^"]*)"/.exec(line)![1]!)
      assert.include(sources, "short-id")
      const cut = sources.filter((source) => source !== "short-id")
      assert.strictEqual(new Set(cut).size, 2) // the hash of the whole id keeps them apart
      for (const source of cut) {
        assert.isAtMost(Buffer.byteLength(source, "utf8"), 128)
        assert.match(source, /^店+…#[0-9a-f]{12}$/)
      }
    }).pipe(withRuntime()))
})
