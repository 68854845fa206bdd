/**
 * The figures of the "Two 40 s runs" table of docs/service.md, in virtual time: the
 * service's demo loop (the runtime with its default provider settings, the
 * simulated store of `run`, the sink at 120/s stalling 3 s every 15 s) runs
 * for 40 s under `TestClock`, with and without feedback, and the table's rows
 * must be exactly what it produces. A real run (`npm start -- --duration
 * 40`) lands within a few percent of these (timers fire late on a real
 * clock); the page says so.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import { FeedbackPublisher, UnifiedRuntime } from "market-data-pipeline"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import * as SimulatedStore from "../../src/service/SimulatedStore.ts"
import * as Simulation from "../../src/service/Simulation.ts"

const root = new URL("../../", import.meta.url).pathname
const readme = readFileSync(join(root, "docs/service.md"), "utf8")
/** The page's text with its line breaks as spaces, for phrases that may wrap. */
const prose = readme.replace(/\s+/g, " ")

/** The demo as `market-data-pipeline run --duration 40` runs it, in virtual time. */
const demo = (feedback: boolean) =>
  Effect.gen(function*() {
    const publisher = yield* FeedbackPublisher
    const runtime = yield* UnifiedRuntime
    const store = yield* SimulatedStore.make({
      coordinatorId: "simulated-store",
      capacity: 1000,
      overflow: "drop_oldest",
      publish: publisher.publish
    })
    const sim = yield* Simulation.start({
      provider: runtime.provider,
      sinkRate: 120,
      feedback: runtime.feedbackEnabled
    }, store)
    for (let i = 0; i < 400; i++) yield* TestClock.adjust("100 millis")
    yield* sim.stop
    return { summary: yield* sim.summary, samples: sim.samples() }
  }).pipe(
    Effect.provide(Layer.fresh(UnifiedRuntime.layer)),
    // the defaults only (as `npm start`): no provider rate or burst given
    Effect.provideService(
      ConfigProvider.ConfigProvider,
      ConfigProvider.fromEnv({ env: { MDP_FB_ENABLE_FEEDBACK: String(feedback) } })
    )
  )

const figures = (summary: Simulation.Summary) =>
  [summary.produced, summary.written, summary.queued, summary.dropped, summary.maxQueueDepth].map((n) =>
    n.toLocaleString("en-US")
  )

/** The README table's row whose first cell is `label`: its numbers, as written. */
const row = (label: string): Array<string> => {
  const line = readme.split("\n").find((l) => l.startsWith(`| ${label} |`))
  assert.isDefined(line, `no row "${label}" in docs/service.md's table`)
  return line!.split("|").slice(2, -1).map((cell) => cell.trim())
}

describe("the demo figures of docs/service.md", () => {
  it.effect("feedback on: the table's row is the loop's 40 s in virtual time", () =>
    Effect.gen(function*() {
      const { summary } = yield* demo(true)
      assert.deepStrictEqual(row("feedback on"), figures(summary))
    }), { timeout: 60_000 })

  it.effect(
    "--no-feedback: the table's row, when the queue fills, and the drop rates the page states",
    () =>
      Effect.gen(function*() {
        const { samples, summary } = yield* demo(false)
        assert.deepStrictEqual(row("`--no-feedback`"), figures(summary))
        // "the queue is full after about 12 s"
        const full = samples.find((s) => s.queueDepth === 1000)!
        assert.include(prose, `the queue is full after about ${Math.round(full.t)} s`)
        // "80 items/s between stalls (200 in, 120 out), all 200/s during them"
        const at = (t: number) => samples.find((s) => Math.abs(s.t - t) < 1e-6)!
        const between = (at(26).dropped - at(16).dropped) / 10 // no stall from 15 to 27 s
        const during = (at(30).dropped - at(27).dropped) / 3 // the stall from 27 to 30 s
        assert.approximately(between, 80, 1)
        assert.approximately(during, 200, 1)
        assert.include(prose, "80 items/s between stalls (200 in, 120 out), all 200/s during them")
      }),
    { timeout: 60_000 }
  )
})
