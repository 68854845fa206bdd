/**
 * Metric contracts (`market_data_core.telemetry.metrics`).
 *
 * @since 0.1.0
 */
import * as Wire from "./internal/wire.ts"

const labelsFields = {
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
 * @since 0.1.0
 * @category contracts
 */
export interface Labels extends Readonly<typeof Labels.Type> {}

const pointFields = {
  name: Wire.string("name"),
  value: Wire.float("value"),
  labels: Wire.nested("labels", Labels, { default: () => ({ values: {} }) }),
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
 * @since 0.1.0
 * @category contracts
 */
export interface MetricPoint extends Readonly<typeof MetricPoint.Type> {}

const seriesFields = {
  name: Wire.string("name"),
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
 * @since 0.1.0
 * @category contracts
 */
export interface MetricSeries extends Readonly<typeof MetricSeries.Type> {}
