import type { Schema } from "effect"
import {
  AuditEnvelope,
  ControlResult,
  FeedbackEvent,
  HealthComponent,
  HealthStatus,
  Labels,
  MetricPoint,
  MetricSeries,
  Probe,
  RateAdjustment
} from "market-data-pipeline"

/** Every wire contract, by the name the fixtures use. */
export const contracts: Record<string, Schema.Codec<any, unknown>> = {
  FeedbackEvent,
  RateAdjustment,
  HealthComponent,
  HealthStatus,
  Probe,
  ControlResult,
  AuditEnvelope,
  Labels,
  MetricPoint,
  MetricSeries
}
