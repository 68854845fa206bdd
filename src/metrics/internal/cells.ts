/**
 * Labelled counters and gauges held as plain numbers and registered, per
 * label set on first use, in the `Metric.MetricRegistry` of a given context:
 * the hot path adds to a number, the registry reads it at scrape time.
 *
 * @internal
 */
import * as Context from "effect/Context"
import * as Metric from "effect/Metric"

/** @internal */
export interface Cell {
  value: number
}

const noop = (): void => {}

/**
 * Registers one series of `metric`, labelled, whose value `get` reads at
 * scrape time; updates through Effect's API are ignored.
 *
 * @internal
 */
export const registerReading = <State>(
  context: Context.Context<never>,
  metric: Metric.Metric<any, State>,
  labels: Readonly<Record<string, string>>,
  get: () => State
): Metric.Registration =>
  Metric.registerUnsafe(metric, Context.add(context, Metric.CurrentMetricAttributes, labels), {
    get,
    update: noop,
    modify: noop
  })

/** @internal */
export interface Cells {
  /** The counter cell for these labels, registered on first request. */
  readonly counter: (name: string, description: string, labels: Readonly<Record<string, string>>) => Cell
  readonly gauge: (name: string, description: string, labels: Readonly<Record<string, string>>) => Cell
  /** Removes every series registered through these cells. */
  readonly dispose: () => void
}

/** @internal */
export const make = (context: Context.Context<never>): Cells => {
  const cells = new Map<string, Cell>()
  const registrations: Array<Metric.Registration> = []
  const metrics = new Map<string, Metric.Metric<any, any>>()
  const cell =
    (type: "counter" | "gauge") =>
    (name: string, description: string, labels: Readonly<Record<string, string>>): Cell => {
      let key = name
      for (const label in labels) key += "\u0000" + label + "=" + labels[label]
      let found = cells.get(key)
      if (found !== undefined) return found
      const created: Cell = { value: 0 }
      found = created
      cells.set(key, created)
      let metric = metrics.get(name)
      if (metric === undefined) {
        metric = type === "counter" ? Metric.counter(name, { description }) : Metric.gauge(name, { description })
        metrics.set(name, metric)
      }
      registrations.push(registerReading(
        context,
        metric,
        labels,
        type === "counter" ? () => ({ count: created.value, incremental: true }) : () => ({ value: created.value })
      ))
      return found
    }
  return {
    counter: cell("counter"),
    gauge: cell("gauge"),
    dispose: () => {
      for (const registration of registrations) registration.remove()
      registrations.length = 0
      cells.clear()
    }
  }
}
