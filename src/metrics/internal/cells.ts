/**
 * Labelled counters and gauges held as plain numbers and registered, per
 * label set on first use, in the `Metric.MetricRegistry` of a given context:
 * the hot path adds to a number, the registry reads it at scrape time.
 *
 * @internal
 */
import * as Context from "effect/Context"
import * as Metric from "effect/Metric"
import { createHash } from "node:crypto"
import type { MetricDefinition, MetricType } from "../MetricDefinitions.ts"

/** @internal */
export interface Cell {
  value: number
}

const noop = (): void => {}

/**
 * The longest label value written, in UTF-8 bytes. The edges bound what
 * clients send (coordinator ids of 128 bytes); this bounds everything else,
 * such as ids published in process, so no label can grow a scrape.
 *
 * @internal
 */
export const MAX_LABEL_VALUE_BYTES = 128

/**
 * A longer value is cut, and ends with a hash of the whole value, so two
 * long values that share a prefix stay two series.
 *
 * @internal
 */
export const boundLabelValue = (value: string): string => {
  if (value.length * 3 <= MAX_LABEL_VALUE_BYTES || Buffer.byteLength(value, "utf8") <= MAX_LABEL_VALUE_BYTES) {
    return value
  }
  const hash = createHash("sha256").update(value).digest("hex").slice(0, 12)
  // 128 bytes = up to 112 bytes of the value, "…" (3 bytes), "#" and 12 hex digits
  let cut = Buffer.from(value, "utf8").subarray(0, MAX_LABEL_VALUE_BYTES - 16).toString("utf8")
  // a multi-byte character cut in half decodes as U+FFFD: drop it
  if (cut.endsWith("\uFFFD")) cut = cut.slice(0, -1)
  return `${cut}…#${hash}`
}

const boundLabels = (labels: Readonly<Record<string, string>>): Readonly<Record<string, string>> => {
  let bounded: Record<string, string> | undefined
  for (const key in labels) {
    const value = labels[key]!
    const cut = boundLabelValue(value)
    if (cut !== value) (bounded ??= { ...labels })[key] = cut
  }
  return bounded ?? labels
}

/**
 * The Effect metric of a definition: its name, help and (histograms) boundaries.
 *
 * @internal
 */
export const toMetric = (definition: MetricDefinition): Metric.Metric<any, any> => {
  const description = definition.help
  switch (definition.type) {
    case "counter":
      return Metric.counter(definition.name, { description })
    case "gauge":
      return Metric.gauge(definition.name, { description })
    case "histogram":
      return Metric.histogram(definition.name, { description, boundaries: definition.boundaries })
  }
}

/**
 * The state a series of each type reads at scrape time.
 *
 * @internal
 */
export type StateOf<Type extends MetricType> = Type extends "counter" ? Metric.CounterState<number>
  : Type extends "gauge" ? Metric.GaugeState<number>
  : Metric.HistogramState

/**
 * Registers one series of the definition's metric, labelled, whose value
 * `get` reads at scrape time; updates through Effect's API are ignored.
 *
 * @internal
 */
export const registerReading = <Label extends string, Type extends MetricType>(
  context: Context.Context<never>,
  definition: MetricDefinition<Label, Type>,
  labels: Readonly<Record<Label, string>>,
  get: () => StateOf<Type>
): Metric.Registration =>
  Metric.registerUnsafe(
    toMetric(definition),
    Context.add(context, Metric.CurrentMetricAttributes, boundLabels(labels)),
    { get, update: noop, modify: noop }
  )

/** @internal */
export interface Cells {
  /** The counter cell for these labels, registered on first request. */
  readonly counter: <Label extends string>(
    definition: MetricDefinition<Label, "counter">,
    labels: Readonly<Record<Label, string>>
  ) => Cell
  readonly gauge: <Label extends string>(
    definition: MetricDefinition<Label, "gauge">,
    labels: Readonly<Record<Label, string>>
  ) => Cell
  /** Removes the series of this cell (one returned by `counter` or `gauge`); a later request registers it anew. */
  readonly remove: (cell: Cell) => void
  /** Removes every series registered through these cells. */
  readonly dispose: () => void
}

/** @internal */
export const make = (context: Context.Context<never>): Cells => {
  const cells = new Map<string, Cell>()
  // every cell's key and registration, for `remove` and `dispose`
  const owners = new Map<Cell, { readonly key: string; readonly registration: Metric.Registration }>()
  const cell = (definition: MetricDefinition, labels: Readonly<Record<string, string>>): Cell => {
    let key = definition.name
    for (const label in labels) key += "\u0000" + label + "=" + labels[label]
    let found = cells.get(key)
    if (found !== undefined) return found
    const created: Cell = { value: 0 }
    found = created
    cells.set(key, created)
    const registration = definition.type === "counter"
      ? registerReading(context, definition as MetricDefinition<string, "counter">, labels, () => ({
        count: created.value,
        incremental: true
      }))
      : registerReading(context, definition as MetricDefinition<string, "gauge">, labels, () => ({
        value: created.value
      }))
    owners.set(created, { key, registration })
    return found
  }
  return {
    counter: cell,
    gauge: cell,
    remove: (cell) => {
      const owner = owners.get(cell)
      if (owner === undefined) return
      owner.registration.remove()
      owners.delete(cell)
      cells.delete(owner.key)
    },
    dispose: () => {
      for (const { registration } of owners.values()) registration.remove()
      owners.clear()
      cells.clear()
    }
  }
}
