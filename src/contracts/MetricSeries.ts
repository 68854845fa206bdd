/**
 * The metric contracts of `market_data_core.telemetry.metrics`: samples of a
 * named metric with labels, and series of them, as JSON documents.
 *
 * Use them to exchange metric samples with the Python services as
 * documents (decode and encode them with `decodeJson` / `encodeJson`). They
 * are not how this package exports its own metrics: those are Effect metrics,
 * served as Prometheus text (see `PipelineMetrics` and
 * `metricDefinitionList`); no component of the package produces these
 * documents.
 *
 * Gotchas:
 * - `MetricPoint.labels` is an object wrapping the map (`{"values": {...}}`),
 *   as in the Python model, not the map itself; label values are strings.
 * - `value` and `ts` must be finite; `ts` is Unix time in seconds.
 * - Points of a series are kept in the order given; nothing sorts or
 *   deduplicates them.
 *
 * @since 0.1.0
 * @module
 */
import * as Wire from "./internal/wire.ts"

const labelsFields = {
  /** Label name to label value; optional on the wire, `{}` by default. */
  values: Wire.stringDict("values")
}

/**
 * Metric labels; `values` defaults to `{}`.
 *
 * @since 0.1.0
 * @category contracts
 */
export const Labels: Wire.ContractSchema<typeof labelsFields> = Wire.contract("Labels", labelsFields)

/**
 * A decoded `Labels` document.
 *
 * @since 0.1.0
 * @category contracts
 */
export interface Labels extends Readonly<typeof Labels.Type> {}

const pointFields = {
  /** The metric's name (`pipeline_rate_tokens_per_second`). */
  name: Wire.string("name"),
  /** The sampled value (a finite float). */
  value: Wire.float("value"),
  /** The sample's labels; optional on the wire, empty by default. */
  labels: Wire.nested("labels", Labels, { default: () => ({ values: {} }) }),
  /** When it was sampled, in Unix time (seconds, fractional). */
  ts: Wire.float("ts")
}

/**
 * One sample of a metric; `labels` defaults to empty labels.
 *
 * @since 0.1.0
 * @category contracts
 */
export const MetricPoint: Wire.ContractSchema<typeof pointFields> = Wire.contract("MetricPoint", pointFields)

/**
 * A decoded `MetricPoint` document.
 *
 * @since 0.1.0
 * @category contracts
 */
export interface MetricPoint extends Readonly<typeof MetricPoint.Type> {}

const seriesFields = {
  /** The series' name. */
  name: Wire.string("name"),
  /** Its samples, in the order given; optional on the wire, `[]` by default. */
  points: Wire.array("points", MetricPoint)
}

/**
 * A named series of metric points; `points` defaults to `[]`.
 *
 * @since 0.1.0
 * @category contracts
 */
export const MetricSeries: Wire.ContractSchema<typeof seriesFields> = Wire.contract("MetricSeries", seriesFields)

/**
 * A decoded `MetricSeries` document.
 *
 * @since 0.1.0
 * @category contracts
 */
export interface MetricSeries extends Readonly<typeof MetricSeries.Type> {}
