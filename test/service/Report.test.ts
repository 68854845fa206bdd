import { assert, describe, it } from "@effect/vitest"
import type { BackpressureLevel } from "market-data-pipeline"
import { chartSvg, formatStatus, formatSummary, stallIntervals, timelineCsv } from "../../src/service/Report.ts"
import type { Sample, Summary } from "../../src/service/Simulation.ts"

const sample = (overrides: Partial<Sample> = {}): Sample => ({
  t: 28.1,
  rate: 100,
  baseRate: 200,
  scale: 0.5,
  level: "soft",
  queueDepth: 608,
  queueCapacity: 1000,
  produced: 3526,
  written: 2909,
  dropped: 0,
  rejected: 0,
  stalled: false,
  ...overrides
})

const summary = (overrides: Partial<Summary> = {}): Summary => ({
  durationSec: 28.2,
  produced: 3526,
  written: 2909,
  queued: 617,
  dropped: 0,
  rejected: 0,
  blockedSec: 0,
  secondsInLevel: { ok: 9.1, soft: 16.5, hard: 2.6 },
  secondsInStoreLevel: { ok: 9.0, soft: 16.4, hard: 2.8 },
  maxQueueDepth: 800,
  feedback: true,
  store: {
    capacity: 1000,
    highWatermark: 800,
    lowWatermark: 500,
    overflow: "drop_oldest",
    sinkRate: 120,
    stallEverySec: 15,
    stallForSec: 3
  },
  ...overrides
})

describe("formatStatus", () => {
  const levels: ReadonlyArray<BackpressureLevel> = ["ok", "soft", "hard"]
  const cases: ReadonlyArray<Sample> = levels.flatMap((level) => [
    sample({ level }),
    sample({ level, stalled: true, dropped: 12 }),
    // a long run with large numbers
    sample({
      level,
      t: 86_399.9,
      rate: 1_234_567.5,
      baseRate: 2_469_135,
      queueDepth: 9_999_999,
      queueCapacity: 10_000_000,
      written: 123_456_789_012,
      dropped: 98_765_432_109,
      rejected: 7_654_321,
      stalled: true
    }),
    sample({ level, queueCapacity: 0, queueDepth: 0 }) // no simulated store
  ])

  it("never exceeds the width, leaving the last column free, and keeps time, rate, level and queue", () => {
    for (const columns of [40, 80, 120, 200]) {
      for (const s of cases) {
        const line = formatStatus(s, 987_654_321, columns)
        assert.isAtMost(line.length, columns - 1, `${columns}: ${line}`)
        assert.notInclude(line, "\n")
        if (columns >= 80) {
          assert.include(line, `t=${s.t.toFixed(1)}s`)
          assert.include(line, s.level)
          assert.match(line, s.queueCapacity > 0 ? /queue \d+\/\d+/ : /queue -/)
        }
      }
    }
  })

  it("at 80 columns: the demo's line, short labels and the drops, the feedback count gone", () => {
    assert.strictEqual(
      formatStatus(sample(), 3730, 80),
      "t=28.1s rate 100.0/s x0.50 soft queue 608/1000 written 2909 dropped 0 fb 3730"
    )
    assert.strictEqual(
      formatStatus(sample({ stalled: true }), 3730, 80),
      "t=28.1s rate 100.0/s x0.50 soft queue 608/1000 stall written 2909 dropped 0"
    )
  })

  it("at 40 columns: the essentials in their tiny form", () => {
    assert.strictEqual(formatStatus(sample(), 3730, 40), "t=28.1s 100.0/s soft q 608/1000")
  })

  it("with room, or without a width (not a terminal), the full line", () => {
    const full = "t=28.1s rate 100.0/s scale 0.50 level soft queue 608/1000 (61%) sink stalled written 2909 " +
      "dropped 0 feedback events 3730"
    assert.strictEqual(formatStatus(sample({ stalled: true }), 3730), full)
    assert.strictEqual(formatStatus(sample({ stalled: true }), 3730, 200), full)
    assert.include(formatStatus(sample({ rejected: 3 }), 1), "rejected 3")
  })

  it("the level keeps its width, so the fields after it do not jump", () => {
    const at = (level: BackpressureLevel) => formatStatus(sample({ level }), 1, 80).indexOf("queue")
    assert.strictEqual(at("ok"), at("soft"))
    assert.strictEqual(at("hard"), at("soft"))
  })
})

describe("formatSummary", () => {
  it("fits 80 columns, even with large numbers", () => {
    const store = summary().store!
    for (const overflow of ["block", "drop_oldest", "error"] as const) {
      const big = summary({
        produced: 123_456_789,
        written: 23_456_789,
        queued: 1_000_000,
        dropped: 99_000_000,
        rejected: 99_000_000,
        blockedSec: 86_400,
        maxQueueDepth: 1_000_000,
        store: { ...store, overflow, capacity: 1_000_000 }
      })
      for (const line of formatSummary(big)) assert.isAtMost(line.length, 79, line)
    }
  })

  it("accounts for every item and names the overflow strategy and the feedback", () => {
    const lines = formatSummary(summary())
    assert.deepStrictEqual(lines, [
      "summary",
      "  duration        28.2 s",
      "  feedback        on (the store's watermarks scale the provider)",
      "  items produced  3526",
      "  items written   2909",
      "  still queued    617 (= produced - written - dropped)",
      "  overflow        drop_oldest: a full queue evicts its oldest item",
      "  items dropped   0",
      "  time in level   ok 9.1 s, soft 16.5 s, hard 2.6 s",
      "  max queue depth 800 of 1000"
    ])
  })

  it("without feedback, the drops, and the levels the store reported that nobody heeded", () => {
    const text = formatSummary(
      summary({
        feedback: false,
        produced: 7000,
        written: 3000,
        queued: 1000,
        dropped: 3000,
        secondsInLevel: { ok: 28.2, soft: 0, hard: 0 },
        secondsInStoreLevel: { ok: 10.7, soft: 0.1, hard: 17.4 }
      })
    ).join("\n")
    assert.include(text, "feedback        off (the provider ignores the store)")
    assert.include(text, "overflow        drop_oldest: a full queue evicts its oldest item\n  items dropped   3000\n")
    assert.include(text, "store level     ok 10.7 s, soft 0.1 s, hard 17.4 s (unheeded)")
    assert.notInclude(text, "time in level")
  })

  it("error: the rejections, in the identity too; block: the time the provider waited", () => {
    const store = summary().store!
    const error = formatSummary(summary({ rejected: 42, store: { ...store, overflow: "error" } })).join("\n")
    assert.include(error, "(= produced - written - dropped - rejected)")
    assert.include(error, "items rejected  42")
    const block = formatSummary(summary({ blockedSec: 12.34, store: { ...store, overflow: "block" } })).join("\n")
    assert.include(block, "overflow        block: a put on a full queue waits\n  items dropped   0\n")
    assert.include(block, "provider waited 12.3 s on the full queue")
    assert.notInclude(block, "rejected")
  })

  it("without a store: no queue lines, nothing written, feedback left out when unknown", () => {
    const text = formatSummary(summary({ store: undefined, secondsInStoreLevel: undefined, feedback: undefined }))
      .join("\n")
    assert.include(text, "items written   none: no simulated store (the items go nowhere)")
    assert.notInclude(text, "queue")
    assert.notInclude(text, "dropped")
    assert.notInclude(text, "feedback")
    const fed = formatSummary(summary({ store: undefined, secondsInStoreLevel: undefined })).join("\n")
    assert.include(fed, "feedback        on (feedback over HTTP or Pulse scales the provider)")
  })
})

/** 30 s at 100 ms: the sink stalls in [12, 15) and [27, 30); soft then hard around each stall. */
const run = (dropsPerSample = 0): ReadonlyArray<Sample> =>
  Array.from({ length: 301 }, (_, i) => {
    const t = i / 10
    const cycle = i % 150 // tenths of a second into the 15 s cycle
    const stalled = cycle >= 120
    const level: BackpressureLevel = stalled ? "soft" : i >= 150 && cycle < 25 ? "hard" : "ok"
    return sample({
      t,
      level,
      rate: level === "ok" ? 200 : level === "soft" ? 100 : 0,
      scale: level === "ok" ? 1 : level === "soft" ? 0.5 : 0,
      queueDepth: Math.min(1000, i * 4),
      stalled,
      dropped: i * dropsPerSample
    })
  })

/** Checks that every tag is closed in order; returns the tags opened. */
const wellFormed = (svg: string): ReadonlyArray<string> => {
  const stack: Array<string> = []
  const opened: Array<string> = []
  for (const [, close, name, , selfClosing] of svg.matchAll(/<(\/?)([a-zA-Z]+)((?:\s+[\w:-]+="[^"<>]*")*)\s*(\/?)>/g)) {
    if (close === "/") assert.strictEqual(stack.pop(), name, "closing tag")
    else {
      opened.push(name!)
      if (selfClosing !== "/") stack.push(name!)
    }
  }
  assert.deepStrictEqual(stack, [], "unclosed tags")
  // nothing that looks like a tag was left out by the pattern
  assert.strictEqual((svg.match(/</g) ?? []).length, opened.length + (svg.match(/<\//g) ?? []).length)
  return opened
}

const attr = (element: string, name: string): number => Number(element.match(new RegExp(` ${name}="([^"]+)"`))![1])

describe("chartSvg", () => {
  it("is well-formed SVG with the rate and queue panels on one time axis", () => {
    const svg = chartSvg(run(), summary())
    assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/)
    const tags = wellFormed(svg)
    assert.include(tags, "pattern")
    assert.include(svg, "<g class=\"panel rate\">")
    assert.include(svg, "<g class=\"panel queue\">")
    assert.include(svg, "class=\"series rate\"")
    assert.include(svg, "class=\"series base-rate\"")
    assert.include(svg, "class=\"series queue-depth\"")
    assert.include(svg, ">time (s)</text>")
    assert.include(svg, ">market-data-pipeline: backpressure feedback loop</text>")
    assert.include(svg, "feedback on · overflow drop_oldest · sink 120/s, stalls 3 s every 15 s")
    // level bands: runs of ok, soft, hard, ok, soft, in both panels
    assert.lengthOf(svg.match(/<rect class="band /g)!, 2 * 5)
    assert.lengthOf(svg.match(/<rect class="band hard"/g)!, 2)
  })

  it("draws the capacity and the watermarks at their height on the queue axis", () => {
    const svg = chartSvg(run(), summary())
    const ticks = [...svg.matchAll(/<line class="tick queue"[^>]*>/g)].map((m) => ({
      value: attr(m[0], "data-value"),
      y: attr(m[0], "y1")
    }))
    assert.isAtLeast(ticks.length, 3)
    const zero = ticks.find((t) => t.value === 0)!
    const other = ticks[ticks.length - 1]!
    const yOf = (v: number) => zero.y + (other.y - zero.y) * v / other.value
    for (const [name, value] of [["capacity", 1000], ["high", 800], ["low", 500]] as const) {
      const line = svg.match(new RegExp(`<line class="threshold ${name}"[^>]*>`))![0]
      assert.strictEqual(attr(line, "data-value"), value)
      assert.approximately(attr(line, "y1"), yOf(value), 0.2, name)
      assert.strictEqual(attr(line, "y1"), attr(line, "y2"))
    }
    assert.include(svg, ">capacity 1000</text>")
    assert.include(svg, ">high watermark 800 (hard)</text>")
    assert.include(svg, ">low watermark 500 (ok)</text>")
  })

  it("marks each of the sink's stalls once, over its time", () => {
    const samples = run()
    const stalls = stallIntervals(samples)
    assert.deepStrictEqual(stalls, [{ from: 12, to: 15 }, { from: 27, to: 30 }])
    const svg = chartSvg(samples, summary())
    const marks = [...svg.matchAll(/<rect class="stall"[^>]*>/g)].map((m) => m[0])
    assert.lengthOf(marks, 2)
    assert.deepStrictEqual(marks.map((m) => [attr(m, "data-from"), attr(m, "data-to")]), [[12, 15], [27, 30]])
    // the second ends at the right edge of the plot, where the last time tick is
    const lastTick = [...svg.matchAll(/<line class="tick time"[^>]*>/g)].map((m) => attr(m[0], "x1")).at(-1)!
    assert.approximately(attr(marks[1]!, "x") + attr(marks[1]!, "width"), lastTick, 0.2)
  })

  it("plots the drop rate when the store dropped items, and only then", () => {
    assert.notInclude(chartSvg(run(), summary()), "lost-rate")
    const svg = chartSvg(run(2), summary({ feedback: false, dropped: 600 }))
    wellFormed(svg)
    assert.include(svg, "class=\"series lost-rate\"")
    assert.include(svg, ">dropped 20/s</text>") // 2 per 100 ms
    assert.include(svg, "feedback off")
  })

  it("without a store or without samples, still a valid chart that says so", () => {
    const noStore = chartSvg(run(), summary({ store: undefined }))
    wellFormed(noStore)
    assert.include(noStore, "no simulated store")
    assert.notInclude(noStore, "threshold")
    const empty = chartSvg([], summary())
    wellFormed(empty)
    assert.include(empty, "not enough samples")
  })
})

describe("timelineCsv", () => {
  it("one row per sample, the earlier columns first, then base rate, drops and stalls", () => {
    const csv = timelineCsv([sample({ t: 0.1 }), sample({ t: 0.2, stalled: true, dropped: 3 })])
    assert.deepStrictEqual(csv.split("\n"), [
      "t_seconds,rate_per_second,scale,level,queue_depth,queue_capacity,produced,written," +
      "base_rate_per_second,dropped,rejected,sink_stalled",
      "0.100,100,0.5,soft,608,1000,3526,2909,200,0,0,0",
      "0.200,100,0.5,soft,608,1000,3526,2909,200,3,0,1",
      ""
    ])
  })
})
