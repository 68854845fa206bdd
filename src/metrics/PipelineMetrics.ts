/**
 * The pipeline's metrics, as Prometheus text and inside a prom-client registry.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as PrometheusMetrics from "effect/observability/PrometheusMetrics"
import type * as Scope from "effect/Scope"
import type { Registry } from "prom-client"
import * as Cells from "./internal/cells.ts"

/**
 * Every metric the pipeline reports: name, Prometheus type and help text.
 * Kept from the Python reference (dashboards depend on them) plus the ones
 * this port adds.
 *
 * @since 0.1.0
 * @category models
 */
export const pipelineMetricNames: ReadonlyArray<{
  readonly name: string
  readonly type: "counter" | "gauge" | "histogram"
  readonly help: string
}> = [
  { name: "pipeline_rate_scale_factor", type: "gauge", help: "Rate scale in force (0..1)" },
  { name: "pipeline_backpressure_state", type: "gauge", help: "Backpressure level (0 ok, 1 soft, 2 hard)" },
  { name: "pipeline_feedback_queue_depth", type: "gauge", help: "Queue depth reported by feedback" },
  { name: "feedback_events_processed_total", type: "counter", help: "Feedback events processed" },
  { name: "pipeline_rate_adjustments_total", type: "counter", help: "Rate adjustments applied" },
  { name: "pipeline_feedback_events_received_total", type: "counter", help: "Feedback events received" },
  { name: "pipeline_feedback_events_rejected_total", type: "counter", help: "Feedback bodies rejected" },
  { name: "pipeline_feedback_events_dropped_total", type: "counter", help: "Feedback events dropped" },
  { name: "pipeline_feedback_subscriber_errors_total", type: "counter", help: "Feedback subscriber failures" },
  { name: "pipeline_rate_tokens_granted_total", type: "counter", help: "Tokens granted" },
  {
    name: "pipeline_rate_tokens_returned_total",
    type: "counter",
    help: "Tokens granted to a waiter interrupted before it resumed, given back"
  },
  { name: "pipeline_rate_waiters", type: "gauge", help: "Acquirers waiting for tokens" },
  {
    name: "pipeline_rate_shared_degraded",
    type: "gauge",
    help: "1 while the provider runs on its local fallback bucket (its Redis unavailable)"
  },
  {
    name: "pipeline_rate_redis_errors_total",
    type: "counter",
    help: "Redis calls of the shared bucket that failed or timed out"
  },
  { name: "pipeline_rate_wait_seconds", type: "histogram", help: "Seconds from acquire to grant" },
  { name: "pulse_consume_total", type: "counter", help: "Total Pulse events consumed" },
  { name: "pulse_lag_ms", type: "gauge", help: "Pulse consumer lag (ms) from event timestamp" },
  { name: "pulse_dlq_messages_total", type: "counter", help: "Pulse entries written to the dead-letter stream" },
  { name: "pulse_acks_total", type: "counter", help: "Pulse entries acknowledged" },
  { name: "pulse_pending_messages", type: "gauge", help: "Pulse entries delivered to this group and not acknowledged" },
  { name: "pulse_publish_total", type: "counter", help: "Pulse publishes" },
  { name: "pulse_publish_latency_ms", type: "histogram", help: "Pulse publish latency in ms" }
]

/**
 * One runtime's metrics. They live in the `Metric.MetricRegistry` of the
 * context this service was built in; give each runtime its own registry
 * (`UnifiedRuntime.layer` does) and two runtimes never mix.
 *
 * @since 0.1.0
 * @category services
 */
export class PipelineMetrics extends Context.Service<PipelineMetrics, {
  /** The metrics as Prometheus text exposition (what `/metrics` serves). */
  readonly prometheus: Effect.Effect<string>
  /** The metrics as Effect snapshots. */
  readonly snapshot: Effect.Effect<ReadonlyArray<Metric.Metric.Snapshot>>
  /**
   * Adds every pipeline metric to a prom-client `Registry`, values read at
   * scrape time, until the scope closes. Fails if the registry already has a
   * metric of the same name (another runtime: use one registry each).
   */
  readonly registerInto: (registry: Registry) => Effect.Effect<void, DuplicateMetric, Scope.Scope>
  /** Adds 1 to a counter of this runtime (registered on first use), e.g. rejections at an edge. */
  readonly increment: (
    name: string,
    description: string,
    labels: Readonly<Record<string, string>>
  ) => Effect.Effect<void>
}>()("market-data-pipeline/PipelineMetrics") {
  /**
   * Reads the registry of the context it is built in.
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly layer: Layer.Layer<PipelineMetrics> = Layer.effect(
    PipelineMetrics,
    Effect.gen(function*() {
      const context = yield* Effect.context<never>()
      const cells = Cells.make(context)
      yield* Effect.addFinalizer(() => Effect.sync(cells.dispose))
      const snapshot = () => Metric.snapshotUnsafe(context)
      return PipelineMetrics.of({
        increment: (name, description, labels) =>
          Effect.sync(() => {
            cells.counter(name, description, labels).value++
          }),
        prometheus: Effect.sync(() => PrometheusMetrics.formatUnsafe(context)),
        snapshot: Effect.sync(snapshot),
        registerInto: (registry) =>
          Effect.acquireRelease(
            Effect.suspend(() => {
              const taken = pipelineMetricNames.find(({ name }) => registry.getSingleMetric(name) !== undefined)
              if (taken !== undefined) return Effect.fail(new DuplicateMetric({ name: taken.name }))
              for (const family of pipelineMetricNames) registry.registerMetric(collector(family, snapshot) as any)
              return Effect.void
            }),
            () =>
              Effect.sync(() => {
                for (const { name } of pipelineMetricNames) registry.removeSingleMetric(name)
              })
          )
      })
    })
  )
}

/**
 * The prom-client registry already has a metric of that name.
 *
 * @since 0.1.0
 * @category errors
 */
export class DuplicateMetric extends Data.TaggedError("DuplicateMetric")<{ readonly name: string }> {
  override get message(): string {
    return `the prom-client registry already has a metric named ${this.name}`
  }
}

type Labels = Record<string, string | number>

// prom-client reads a registered metric through `get()` at scrape time.
const collector = (
  family: (typeof pipelineMetricNames)[number],
  snapshot: () => ReadonlyArray<Metric.Metric.Snapshot>
) => {
  const read = () => {
    const values: Array<{ labels: Labels; value: number; metricName?: string }> = []
    for (const s of snapshot()) {
      if (s.id !== family.name) continue
      const labels: Labels = { ...s.attributes }
      const state = s.state as any
      if (s.type === "Histogram") {
        for (const [le, count] of state.buckets as ReadonlyArray<[number, number]>) {
          values.push({ metricName: `${family.name}_bucket`, labels: { ...labels, le }, value: count })
        }
        values.push({ metricName: `${family.name}_bucket`, labels: { ...labels, le: "+Inf" }, value: state.count })
        values.push({ metricName: `${family.name}_sum`, labels, value: state.sum })
        values.push({ metricName: `${family.name}_count`, labels, value: state.count })
      } else {
        values.push({ labels, value: s.type === "Counter" ? Number(state.count) : Number(state.value) })
      }
    }
    return { name: family.name, help: family.help, type: family.type, aggregator: "sum", values }
  }
  return {
    name: family.name,
    help: family.help,
    type: family.type,
    aggregator: "sum",
    get: () => Promise.resolve(read()),
    reset: () => {}
  }
}
