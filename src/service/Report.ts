/**
 * What the service shows: the status line while it runs, and at exit the
 * summary, the timeline CSV and the SVG chart.
 *
 * Everything here is a pure function of the simulation's samples and
 * summary. The chart is SVG written by hand (no charting library), so the
 * package installs nothing for it.
 *
 * @since 0.1.0
 */
import type { BackpressureLevel } from "../contracts/BackpressureLevel.ts"
import type { Sample, Summary } from "./Simulation.ts"

const label = (name: string): string => `  ${name.padEnd(16)}`

const overflowMeaning = {
  block: "a put on a full queue waits",
  drop_oldest: "a full queue evicts its oldest item",
  error: "a put on a full queue is refused"
} as const

/**
 * The summary as lines of text. With a store, the lines account for every
 * item: `produced = written + still queued + dropped (+ rejected)`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatSummary = (summary: Summary): ReadonlyArray<string> => {
  const { store } = summary
  const lines = [
    "summary",
    `${label("duration")}${summary.durationSec.toFixed(1)} s`
  ]
  if (summary.feedback !== undefined) {
    lines.push(
      `${label("feedback")}${
        !summary.feedback
          ? `off (the provider ignores ${store === undefined ? "all feedback" : "the store"})`
          : store === undefined
          ? "on (feedback over HTTP or Pulse scales the provider)"
          : "on (the store's watermarks scale the provider)"
      }`
    )
  }
  lines.push(`${label("items produced")}${summary.produced}`)
  if (store === undefined) {
    lines.push(`${label("items written")}none: no simulated store (the items go nowhere)`)
  } else {
    const rejected = store.overflow === "error" || summary.rejected > 0 ? " - rejected" : ""
    lines.push(
      `${label("items written")}${summary.written}`,
      `${label("still queued")}${summary.queued} (= produced - written - dropped${rejected})`,
      `${label("overflow")}${store.overflow}: ${overflowMeaning[store.overflow]}`,
      `${label("items dropped")}${summary.dropped}`
    )
    if (store.overflow === "block" && summary.blockedSec > 0) {
      lines.push(`${label("provider waited")}${summary.blockedSec.toFixed(1)} s on the full queue`)
    }
    if (rejected !== "") lines.push(`${label("items rejected")}${summary.rejected}`)
  }
  const inLevels = (s: Readonly<Record<BackpressureLevel, number>>) =>
    `ok ${s.ok.toFixed(1)} s, soft ${s.soft.toFixed(1)} s, hard ${s.hard.toFixed(1)} s`
  // open loop: the provider stays at ok whatever the store says, so show what the store said
  if (summary.feedback === false && summary.secondsInStoreLevel !== undefined) {
    lines.push(`${label("store level")}${inLevels(summary.secondsInStoreLevel)} (unheeded)`)
  } else {
    lines.push(`${label("time in level")}${inLevels(summary.secondsInLevel)}`)
  }
  if (store !== undefined) lines.push(`${label("max queue depth")}${summary.maxQueueDepth} of ${store.capacity}`)
  return lines
}

/** One field of the status line: its long and short forms, and how much it matters (0 = always shown). */
interface Field {
  readonly long: string
  readonly short: string
  readonly tiny?: string
  readonly rank: number
}

const statusFields = (sample: Sample, events: number): ReadonlyArray<Field> => {
  const store = sample.queueCapacity > 0
  const level = sample.level.padEnd(4)
  const fields: Array<Field | undefined> = [
    { long: `t=${sample.t.toFixed(1)}s`, short: `t=${sample.t.toFixed(1)}s`, rank: 0 },
    {
      long: `rate ${sample.rate.toFixed(1)}/s`,
      short: `rate ${sample.rate.toFixed(1)}/s`,
      tiny: `${sample.rate.toFixed(1)}/s`,
      rank: 0
    },
    { long: `scale ${sample.scale.toFixed(2)}`, short: `x${sample.scale.toFixed(2)}`, rank: 3 },
    { long: `level ${level}`, short: level, rank: 0 },
    store
      ? {
        long: `queue ${sample.queueDepth}/${sample.queueCapacity} (${
          (100 * sample.queueDepth / sample.queueCapacity).toFixed(0)
        }%)`,
        short: `queue ${sample.queueDepth}/${sample.queueCapacity}`,
        tiny: `q ${sample.queueDepth}/${sample.queueCapacity}`,
        rank: 0
      }
      : { long: "queue -", short: "queue -", tiny: "q -", rank: 0 },
    sample.stalled ? { long: "sink stalled", short: "stall", rank: 4 } : undefined,
    { long: `written ${sample.written}`, short: `written ${sample.written}`, rank: 2 },
    store ? { long: `dropped ${sample.dropped}`, short: `dropped ${sample.dropped}`, rank: 1 } : undefined,
    sample.rejected > 0
      ? { long: `rejected ${sample.rejected}`, short: `rejected ${sample.rejected}`, rank: 1 }
      : undefined,
    { long: `feedback events ${events}`, short: `fb ${events}`, rank: 5 }
  ]
  return fields.filter((f) => f !== undefined)
}

/**
 * One status line: the loop now and the feedback events received so far.
 *
 * Without `columns` (output that is not a terminal), the full line. With
 * the terminal's width, a line of at most `columns - 1` characters (the last
 * column stays free, so the cursor never wraps and a redraw with `\r` stays
 * on one screen line): short labels first, then the less important fields
 * go (the feedback count, the stall mark, the scale, the items written),
 * and as a last resort the line is cut.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatStatus = (sample: Sample, events: number, columns?: number): string => {
  const fields = statusFields(sample, events)
  const line = (form: (f: Field) => string, maxRank: number) =>
    fields.filter((f) => f.rank <= maxRank).map(form).join(" ")
  const full = line((f) => f.long, Infinity)
  if (columns === undefined || !Number.isFinite(columns)) return full
  const limit = Math.max(1, Math.floor(columns) - 1)
  const candidates = [
    full,
    ...[5, 4, 3, 2, 1, 0].map((rank) => line((f) => f.short, rank)),
    line((f) => f.tiny ?? f.short, 0)
  ]
  return candidates.find((c) => c.length <= limit) ?? candidates[candidates.length - 1]!.slice(0, limit)
}

/**
 * The samples as CSV (one row per sample). The first eight columns are
 * those of earlier versions; `sink_stalled` is 1 during the sink's stalls.
 *
 * @since 0.1.0
 * @category formatting
 */
export const timelineCsv = (samples: ReadonlyArray<Sample>): string =>
  "t_seconds,rate_per_second,scale,level,queue_depth,queue_capacity,produced,written," +
  "base_rate_per_second,dropped,rejected,sink_stalled\n" +
  samples.map((s) =>
    [
      s.t.toFixed(3),
      s.rate,
      s.scale,
      s.level,
      s.queueDepth,
      s.queueCapacity,
      s.produced,
      s.written,
      s.baseRate,
      s.dropped,
      s.rejected,
      s.stalled ? 1 : 0
    ].join(",")
  ).join("\n") + "\n"

// ---------------------------------------------------------------------------
// the chart

const levelColor: Record<BackpressureLevel, string> = { ok: "#2ca02c", soft: "#ff7f0e", hard: "#d62728" }
const levelOpacity: Record<BackpressureLevel, number> = { ok: 0.08, soft: 0.18, hard: 0.2 }
const rateColor = "#1f4e9c"
const queueColor = "#0b6e69"
const capacityColor = "#7a0010"

const width = 960
const left = 78
const right = 190
const plotWidth = width - left - right
interface Area {
  readonly top: number
  readonly height: number
}

const ratePanel = { top: 92, height: 150 }
const queuePanel = { top: 276, height: 220 }
const axisBottom = queuePanel.top + queuePanel.height
const height = axisBottom + 112

const lostColor = "#c2185b"

/** Items/s lost (dropped or rejected) at each sample, over the second before it. */
const lossRates = (samples: ReadonlyArray<Sample>): ReadonlyArray<number> => {
  let j = 0
  return samples.map((s, i) => {
    while (j < i && s.t - samples[j + 1]!.t >= 1) j++
    const from = samples[j]!
    const dt = s.t - from.t
    return dt > 0 ? (s.dropped + s.rejected - from.dropped - from.rejected) / dt : 0
  })
}

const px = (n: number): string => String(Math.round(n * 10) / 10)

const escape = (text: string): string =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

const text = (x: number, y: number, content: string, attributes = ""): string =>
  `<text x="${px(x)}" y="${px(y)}"${attributes === "" ? "" : ` ${attributes}`}>${escape(content)}</text>`

/** About `count` round ticks (1, 2, 5 × 10^k) from 0 to at least `max`. */
const ticks = (max: number, count: number): ReadonlyArray<number> => {
  if (!(max > 0)) return [0, 1]
  const raw = max / count
  const magnitude = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw)!
  const out: Array<number> = []
  for (let v = 0; v < max + step * 1e-9; v += step) out.push(Math.round(v / step) * step)
  if (out[out.length - 1]! < max) out.push(out[out.length - 1]! + step)
  return out
}

const formatTick = (v: number): string => Number.isInteger(v) ? String(v) : String(Math.round(v * 100) / 100)

/** Consecutive samples sharing `key`, each as [from, to) in seconds (the last run ends at the last sample). */
const runs = <K>(samples: ReadonlyArray<Sample>, key: (s: Sample) => K) => {
  const out: Array<{ readonly key: K; readonly from: number; readonly to: number }> = []
  let start = 0
  for (let i = 1; i <= samples.length; i++) {
    if (i === samples.length || key(samples[i]!) !== key(samples[start]!)) {
      const to = i < samples.length ? samples[i]!.t : samples[samples.length - 1]!.t
      out.push({ key: key(samples[start]!), from: samples[start]!.t, to })
      start = i
    }
  }
  return out
}

/**
 * The stalls of the sink in the samples: each run of stalled samples, from
 * its first sample to the next sample after it.
 *
 * @since 0.1.0
 * @category formatting
 */
export const stallIntervals = (
  samples: ReadonlyArray<Sample>
): ReadonlyArray<{ readonly from: number; readonly to: number }> =>
  runs(samples, (s) => s.stalled).filter((r) => r.key).map(({ from, to }) => ({ from, to }))

/**
 * An SVG chart of the run, two panels on one time axis: the provider's rate
 * (with its base rate) and the store's queue depth (with its capacity and
 * watermarks). The level in force is the background of both panels (green
 * ok, orange soft, red hard) and the sink's stalls are hatched across them.
 *
 * @since 0.1.0
 * @category formatting
 */
export const chartSvg = (samples: ReadonlyArray<Sample>, summary: Summary): string => {
  const { store } = summary
  const out: Array<string> = []
  const t0 = samples[0]?.t ?? 0
  const t1 = Math.max(samples[samples.length - 1]?.t ?? 1, t0 + 0.1)
  const x = (t: number) => left + (t - t0) / (t1 - t0) * plotWidth
  // items/s dropped or refused, over the last second, when the store lost any
  const lostWord = summary.rejected > 0 ? "rejected" : "dropped"
  const losses = summary.dropped + summary.rejected > 0 ? lossRates(samples) : []
  const rateTicks = ticks(Math.max(1, ...samples.map((s) => Math.max(s.rate, s.baseRate)), ...losses) * 1.05, 5)
  const rateMax = rateTicks[rateTicks.length - 1]!
  const yRate = (v: number) => ratePanel.top + ratePanel.height * (1 - v / rateMax)
  const capacity = store?.capacity ?? Math.max(1, ...samples.map((s) => s.queueDepth))
  const queueMax = capacity * 1.1
  const queueTicks = ticks(queueMax, 5).filter((v) => v <= queueMax)
  const yQueue = (v: number) => queuePanel.top + queuePanel.height * (1 - v / queueMax)

  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `font-family="Helvetica, Arial, sans-serif" font-size="12" fill="#222">`,
    "<defs>",
    `<pattern id="stall-hatch" patternUnits="userSpaceOnUse" width="7" height="7" patternTransform="rotate(45)">` +
      `<rect width="7" height="7" fill="#666" fill-opacity="0.06"/>` +
      `<line x1="0" y1="0" x2="0" y2="7" stroke="#555" stroke-width="2.2" stroke-opacity="0.45"/></pattern>`,
    "</defs>",
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    text(left, 26, "market-data-pipeline: backpressure feedback loop", "font-size=\"17\" font-weight=\"bold\"")
  )
  const setup = [
    summary.feedback === undefined ? undefined : `feedback ${summary.feedback ? "on" : "off"}`,
    store === undefined ? "no simulated store" : `overflow ${store.overflow}`,
    store === undefined
      ? undefined
      : `sink ${store.sinkRate}/s, stalls ${store.stallForSec} s every ${store.stallEverySec} s`
  ].filter((s) => s !== undefined).join(" · ")
  const totals = `${summary.durationSec.toFixed(1)} s: produced ${summary.produced}, written ${summary.written}` +
    (store === undefined
      ? ""
      : `, still queued ${summary.queued}, dropped ${summary.dropped}` +
        (summary.rejected > 0 ? `, rejected ${summary.rejected}` : "") +
        `, max depth ${summary.maxQueueDepth}/${store.capacity}`)
  out.push(text(left, 46, setup, "fill=\"#444\""), text(left, 63, totals, "fill=\"#444\""))

  if (samples.length < 2) {
    out.push(text(left, ratePanel.top + 40, "not enough samples to draw", "class=\"empty\""), "</svg>")
    return out.join("\n") + "\n"
  }

  // a panel's level bands and value grid; closePanel draws its axes and title
  const panel = (name: string, area: Area, values: ReadonlyArray<number>, y: (v: number) => number) => {
    out.push(`<g class="panel ${name}">`)
    for (const band of runs(samples, (s) => s.level).filter((r) => r.to > r.from)) {
      out.push(
        `<rect class="band ${band.key}" x="${px(x(band.from))}" y="${area.top}" width="${
          px(x(band.to) - x(band.from))
        }" height="${area.height}" fill="${levelColor[band.key]}" fill-opacity="${levelOpacity[band.key]}"/>`
      )
    }
    for (const v of values) {
      out.push(
        `<line class="tick ${name}" data-value="${v}" x1="${left - 5}" y1="${px(y(v))}" x2="${left + plotWidth}" y2="${
          px(y(v))
        }" stroke="#000" stroke-opacity="0.12"/>`,
        text(left - 8, y(v) + 4, formatTick(v), "text-anchor=\"end\"")
      )
    }
  }
  const closePanel = (area: Area, title: string) => {
    const bottom = area.top + area.height
    const middle = area.top + area.height / 2
    out.push(
      `<line x1="${left}" y1="${area.top}" x2="${left}" y2="${bottom}" stroke="#333"/>`,
      `<line x1="${left}" y1="${bottom}" x2="${left + plotWidth}" y2="${bottom}" stroke="#333"/>`,
      text(18, middle, title, `text-anchor="middle" transform="rotate(-90 18 ${px(middle)})"`),
      "</g>"
    )
  }

  // x grid, shared
  const timeTicks = ticks(t1 - t0, 8).map((v) => v + t0).filter((t) => t <= t1 + 1e-9)

  // panel 1: the rate
  panel("rate", ratePanel, rateTicks, yRate)
  const step = (value: (s: Sample) => number, y: (v: number) => number) =>
    samples.map((s, i) => i === 0 ? `M${px(x(s.t))} ${px(y(value(s)))}` : `H${px(x(s.t))} V${px(y(value(s)))}`).join(
      " "
    )
  out.push(
    `<path class="series base-rate" d="${
      step((s) => s.baseRate, yRate)
    }" fill="none" stroke="#777" stroke-width="1.5" stroke-dasharray="6 4"/>`,
    `<path class="series rate" d="${step((s) => s.rate, yRate)}" fill="none" stroke="${rateColor}" stroke-width="2"/>`
  )
  const last = samples[samples.length - 1]!
  out.push(
    text(left + plotWidth + 8, yRate(last.baseRate) + 4, `base rate ${formatTick(last.baseRate)}/s`, "fill=\"#555\"")
  )
  if (losses.length > 0) {
    const lost = losses.map((v, i) => `${i === 0 ? "M" : "L"}${px(x(samples[i]!.t))} ${px(yRate(v))}`).join(" ")
    out.push(
      `<path class="series lost-rate" d="${lost}" fill="none" stroke="${lostColor}" stroke-width="1.6"/>`,
      text(
        left + plotWidth + 8,
        Math.min(yRate(losses[losses.length - 1]!) + 4, ratePanel.top + ratePanel.height - 14) + 16,
        `${lostWord} ${formatTick(Math.round(losses[losses.length - 1]!))}/s`,
        `fill="${lostColor}"`
      )
    )
  }
  closePanel(ratePanel, "rate (items/s)")

  // panel 2: the queue
  panel("queue", queuePanel, queueTicks, yQueue)
  if (store === undefined) {
    out.push(
      text(left + 12, queuePanel.top + 24, "no simulated store: the provider's items go nowhere", "fill=\"#555\"")
    )
  } else {
    const thresholds = [
      { name: "capacity", value: store.capacity, label: `capacity ${store.capacity}`, color: capacityColor, dash: "" },
      {
        name: "high",
        value: store.highWatermark,
        label: `high watermark ${store.highWatermark} (hard)`,
        color: levelColor.hard,
        dash: " stroke-dasharray=\"7 4\""
      },
      {
        name: "low",
        value: store.lowWatermark,
        label: `low watermark ${store.lowWatermark} (ok)`,
        color: levelColor.ok,
        dash: " stroke-dasharray=\"7 4\""
      }
    ]
    // labels at least 14 px apart, in the right margin
    let labelY = -Infinity
    for (const th of thresholds) {
      const y = yQueue(th.value)
      out.push(
        `<line class="threshold ${th.name}" data-value="${th.value}" x1="${left}" y1="${px(y)}" x2="${
          left + plotWidth
        }" y2="${px(y)}" stroke="${th.color}" stroke-width="1.6"${th.dash}/>`
      )
      labelY = Math.max(y + 4, labelY + 14)
      out.push(text(left + plotWidth + 8, labelY, th.label, `fill="${th.color}"`))
    }
    const line = samples.map((s, i) => `${i === 0 ? "M" : "L"}${px(x(s.t))} ${px(yQueue(s.queueDepth))}`).join(" ")
    out.push(`<path class="series queue-depth" d="${line}" fill="none" stroke="${queueColor}" stroke-width="2"/>`)
  }
  closePanel(queuePanel, "queue depth (items)")

  // the sink's stalls, across both panels
  out.push("<g class=\"stalls\">")
  for (const stall of stallIntervals(samples)) {
    const x1 = x(stall.from)
    const w = Math.max(1, x(stall.to) - x1)
    out.push(
      `<rect class="stall" data-from="${stall.from}" data-to="${stall.to}" x="${px(x1)}" y="${ratePanel.top}" width="${
        px(w)
      }" height="${axisBottom - ratePanel.top}" fill="url(#stall-hatch)"/>`
    )
    if (w >= 22) out.push(text(x1 + w / 2, ratePanel.top - 5, "stall", "text-anchor=\"middle\" fill=\"#555\""))
  }
  out.push("</g>")

  // the shared time axis
  for (const t of timeTicks) {
    const xt = x(t)
    out.push(
      `<line class="tick time" data-value="${t}" x1="${px(xt)}" y1="${axisBottom}" x2="${px(xt)}" y2="${
        axisBottom + 5
      }" stroke="#333"/>`,
      text(xt, axisBottom + 18, formatTick(Math.round((t - t0) * 1000) / 1000 + t0), "text-anchor=\"middle\"")
    )
  }
  out.push(text(left + plotWidth / 2, axisBottom + 36, "time (s)", "text-anchor=\"middle\""))

  // the legend
  let legendY = axisBottom + 60
  let lx = left
  const entry = (swatch: string, name: string) => {
    out.push(swatch.replaceAll("LX", px(lx)).replaceAll("LY", px(legendY)), text(lx + 26, legendY + 4, name))
    lx += 26 + name.length * 6.4 + 18
  }
  out.push("<g class=\"legend\">")
  const swatchLine = (color: string, dash = "") =>
    `<line x1="LX" y1="LY" x2="${px(lx + 20)}" y2="LY" stroke="${color}" stroke-width="2"${dash}/>`
  entry(swatchLine(rateColor), "provider rate")
  entry(swatchLine("#777", " stroke-dasharray=\"6 4\""), "base rate")
  if (losses.length > 0) entry(swatchLine(lostColor), `${lostWord} (items/s)`)
  entry(swatchLine(queueColor), "queue depth")
  legendY += 22
  lx = left
  for (const level of ["ok", "soft", "hard"] as const) {
    entry(
      `<rect x="LX" y="${px(legendY - 7)}" width="20" height="14" fill="${levelColor[level]}" fill-opacity="${
        levelOpacity[level] * 2
      }"/>`,
      `level ${level}`
    )
  }
  entry(
    `<rect x="LX" y="${px(legendY - 7)}" width="20" height="14" fill="url(#stall-hatch)" stroke="#999"/>`,
    "sink stalled"
  )
  out.push(text(lx, legendY + 4, "(the level is the provider's: what the feedback told it)", "fill=\"#666\""))
  out.push("</g>", "</svg>")
  return out.join("\n") + "\n"
}
