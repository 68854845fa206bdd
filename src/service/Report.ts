/**
 * What the service writes at exit: the summary, the timeline CSV and the
 * SVG chart.
 *
 * @since 0.1.0
 */
import * as vega from "vega"
import * as vegaLite from "vega-lite"
import type { Sample, Summary } from "./Simulation.ts"

/**
 * The summary as lines of text.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatSummary = (summary: Summary): ReadonlyArray<string> => {
  const { secondsInLevel: s } = summary
  return [
    "summary",
    `  duration        ${summary.durationSec.toFixed(1)} s`,
    `  items produced  ${summary.produced}`,
    `  items written   ${summary.written}`,
    `  time in level   ok ${s.ok.toFixed(1)} s, soft ${s.soft.toFixed(1)} s, hard ${s.hard.toFixed(1)} s`,
    `  max queue depth ${summary.maxQueueDepth}`,
    `  items dropped   ${summary.dropped}`
  ]
}

/**
 * One status line.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatStatus = (sample: Sample, events: number): string => {
  const queue = sample.queueCapacity > 0
    ? `queue ${sample.queueDepth}/${sample.queueCapacity} (${
      (100 * sample.queueDepth / sample.queueCapacity).toFixed(0)
    }%)`
    : "queue -"
  return `t=${sample.t.toFixed(1)}s rate ${sample.rate.toFixed(1)}/s scale ${sample.scale.toFixed(2)} level ${
    sample.level.padEnd(4)
  } ${queue} written ${sample.written} feedback events ${events}`
}

/**
 * The samples as CSV (one row per sample).
 *
 * @since 0.1.0
 * @category formatting
 */
export const timelineCsv = (samples: ReadonlyArray<Sample>): string =>
  "t_seconds,rate_per_second,scale,level,queue_depth,queue_capacity,produced,written\n" +
  samples.map((s) =>
    [s.t.toFixed(3), s.rate, s.scale, s.level, s.queueDepth, s.queueCapacity, s.produced, s.written].join(",")
  ).join("\n") + "\n"

/**
 * An SVG chart of queue depth, provider rate and level over time, rendered
 * headlessly by Vega-Lite.
 *
 * @since 0.1.0
 * @category formatting
 */
export const chartSvg = async (samples: ReadonlyArray<Sample>): Promise<string> => {
  const lines = samples.flatMap((s) => [
    { t: s.t, series: "queue depth (items)", value: s.queueDepth },
    { t: s.t, series: "provider rate (items/s)", value: s.rate }
  ])
  const bands = samples.slice(0, -1).map((s, i) => ({ t: s.t, t2: samples[i + 1]!.t, level: s.level }))
  const x = { field: "t", type: "quantitative", title: "time (s)" } as const
  const spec: vegaLite.TopLevelSpec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: "market-data-pipeline: backpressure feedback loop",
    width: 800,
    height: 300,
    layer: [
      {
        data: { values: bands },
        mark: { type: "rect", opacity: 0.25 },
        encoding: {
          x,
          x2: { field: "t2" },
          color: {
            field: "level",
            type: "nominal",
            title: "level (band)",
            scale: { domain: ["ok", "soft", "hard"], range: ["#2ca02c", "#ff7f0e", "#d62728"] }
          }
        }
      },
      {
        data: { values: lines },
        mark: { type: "line", color: "#1f3b73" },
        encoding: {
          x,
          y: { field: "value", type: "quantitative", title: "items, items/s" },
          strokeDash: { field: "series", type: "nominal", title: "series", legend: { labelLimit: 300 } }
        }
      }
    ],
    resolve: { scale: { color: "independent" } }
  }
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: "none" })
  try {
    return await view.toSVG()
  } finally {
    view.finalize()
  }
}
