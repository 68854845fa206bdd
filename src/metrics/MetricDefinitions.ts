/**
 * Every metric the pipeline reports, each defined once: name, Prometheus
 * type, help text, label names and (histograms) bucket boundaries.
 *
 * Everything else is derived from these definitions: the Effect metrics the
 * components register (so `/metrics` and your own exporter print this help
 * text), the prom-client bridge (`PipelineMetrics.registerInto`) and the
 * table in the README (`metricsMarkdownTable`). A component that counts
 * something takes the definition object, never a name and a description of
 * its own, so help, type and labels cannot drift between outputs.
 *
 * The names are kept from the Python reference where it has them (dashboards
 * depend on them).
 *
 * @example
 * ```ts
 * import { metricDefinitionList } from "market-data-pipeline"
 *
 * for (const definition of metricDefinitionList) {
 *   console.log(definition.name, definition.type, definition.labels.join(","))
 * }
 * ```
 *
 * @since 0.1.0
 */

/**
 * A Prometheus metric type.
 *
 * @since 0.1.0
 * @category models
 */
export type MetricType = "counter" | "gauge" | "histogram"

/**
 * One metric family: every series of it has exactly the labels `labels`.
 *
 * @since 0.1.0
 * @category models
 */
export interface MetricDefinition<Label extends string = string, Type extends MetricType = MetricType> {
  readonly name: string
  readonly type: Type
  readonly help: string
  /** The label names of every series of the family, in the order they are written. */
  readonly labels: ReadonlyArray<Label>
  /** Histogram bucket upper bounds, ascending (empty for counters and gauges). */
  readonly boundaries: ReadonlyArray<number>
  /** The component that reports it (for the docs). */
  readonly reportedBy: string
}

const define = <const Label extends string, Type extends MetricType>(
  type: Type,
  name: string,
  labels: ReadonlyArray<Label>,
  help: string,
  reportedBy: string,
  boundaries: ReadonlyArray<number> = []
): MetricDefinition<Label, Type> => ({ name, type, help, labels, boundaries, reportedBy })

const coordinator = "rate coordinator"
const shared = "shared buckets (`RateCoordinator.layerRedis`)"
const handler = "feedback handler"
const bus = "feedback bus"
const edge = "HTTP API"
const consumer = "Pulse consumer"
const publisher = "Pulse publisher"

/**
 * The pipeline's metrics by role; `metricDefinitionList` has them in the
 * order they are documented.
 *
 * @since 0.1.0
 * @category definitions
 */
export const metricDefinitions = {
  rateScaleFactor: define(
    "gauge",
    "pipeline_rate_scale_factor",
    ["provider"],
    "Rate scale in force (0..1)",
    coordinator
  ),
  rateBase: define(
    "gauge",
    "pipeline_rate_base_tokens_per_second",
    ["provider"],
    "Configured base refill rate (tokens/s)",
    coordinator
  ),
  rateCurrent: define(
    "gauge",
    "pipeline_rate_tokens_per_second",
    ["provider"],
    "Refill rate in force (tokens/s): the base rate times the scale",
    coordinator
  ),
  backpressureState: define(
    "gauge",
    "pipeline_backpressure_state",
    ["provider"],
    "Backpressure level (0 ok, 1 soft, 2 hard)",
    coordinator
  ),
  tokensGranted: define("counter", "pipeline_rate_tokens_granted_total", ["provider"], "Tokens granted", coordinator),
  tokensReturned: define(
    "counter",
    "pipeline_rate_tokens_returned_total",
    ["provider"],
    "Tokens granted to a waiter interrupted before it resumed, given back (the granted counter never goes down)",
    coordinator
  ),
  waiters: define("gauge", "pipeline_rate_waiters", ["provider"], "Acquirers waiting for tokens", coordinator),
  waitSeconds: define(
    "histogram",
    "pipeline_rate_wait_seconds",
    ["provider"],
    "Seconds from acquire to grant (an immediate grant waited 0 s)",
    coordinator,
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
  ),
  sharedDegraded: define(
    "gauge",
    "pipeline_rate_shared_degraded",
    ["provider"],
    "1 while the provider runs on its local fallback bucket (its Redis unavailable)",
    shared
  ),
  redisErrors: define(
    "counter",
    "pipeline_rate_redis_errors_total",
    ["provider"],
    "Redis calls of the shared bucket that failed or timed out",
    shared
  ),
  eventsProcessed: define(
    "counter",
    "feedback_events_processed_total",
    ["provider", "level"],
    "Feedback events processed",
    handler
  ),
  rateAdjustments: define(
    "counter",
    "pipeline_rate_adjustments_total",
    ["provider", "reason"],
    "Rate adjustments applied (reason = the level applied)",
    handler
  ),
  queueDepth: define(
    "gauge",
    "pipeline_feedback_queue_depth",
    ["source"],
    "Queue depth reported by feedback (source = coordinator id)",
    handler
  ),
  coordinatorLevel: define(
    "gauge",
    "pipeline_feedback_coordinator_level",
    ["provider", "source"],
    "Level each coordinator the handler holds last reported (0 ok, 1 soft, 2 hard; source = coordinator id)",
    handler
  ),
  coordinatorLastReport: define(
    "gauge",
    "pipeline_feedback_coordinator_last_report_timestamp_seconds",
    ["provider", "source"],
    "Unix time (s) of the last report the handler received from each coordinator it holds (source = coordinator id)",
    handler
  ),
  eventsRefused: define(
    "counter",
    "pipeline_feedback_events_refused_total",
    ["provider", "reason"],
    "Feedback events the handler refused, never applied (reason too_many_coordinators: its table is full)",
    handler
  ),
  eventsReceived: define(
    "counter",
    "pipeline_feedback_events_received_total",
    ["source", "level"],
    "Feedback events published on the bus (source = coordinator id)",
    bus
  ),
  eventsUncached: define(
    "counter",
    "pipeline_feedback_events_uncached_total",
    [],
    "Feedback events the bus delivered live but did not cache (its coordinator cache full)",
    bus
  ),
  eventsDropped: define(
    "counter",
    "pipeline_feedback_events_dropped_total",
    [],
    "Feedback events a slow subscriber never received (superseded by a later event of the same coordinator)",
    bus
  ),
  subscriberErrors: define(
    "counter",
    "pipeline_feedback_subscriber_errors_total",
    ["subscriber"],
    "Feedback events whose subscriber failed (the subscriber keeps receiving)",
    bus
  ),
  eventsRejected: define(
    "counter",
    "pipeline_feedback_events_rejected_total",
    ["reason"],
    "Requests the HTTP API refused (reason = the error of its answer)",
    edge
  ),
  pulseConsumed: define(
    "counter",
    "pulse_consume_total",
    ["stream", "track", "outcome"],
    "Pulse entries consumed, by outcome (each delivery counted once)",
    consumer
  ),
  pulseLag: define(
    "gauge",
    "pulse_lag_ms",
    ["stream"],
    "Pulse consumer lag (ms) from the envelope timestamp",
    consumer
  ),
  pulseAcks: define("counter", "pulse_acks_total", ["stream"], "Pulse entries acknowledged (XACK)", consumer),
  pulsePending: define(
    "gauge",
    "pulse_pending_messages",
    ["stream"],
    "Pulse entries delivered to the consumer group and not acknowledged",
    consumer
  ),
  pulseDeadLetters: define(
    "counter",
    "pulse_dlq_messages_total",
    ["stream", "reason"],
    "Pulse entries written to the dead-letter stream",
    consumer
  ),
  pulsePublished: define(
    "counter",
    "pulse_publish_total",
    ["stream", "track", "outcome"],
    "Pulse publishes, by outcome",
    publisher
  ),
  pulsePublishLatency: define(
    "histogram",
    "pulse_publish_latency_ms",
    ["stream", "track"],
    "Pulse publish latency (ms), from publish to Redis' answer",
    publisher,
    [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000]
  )
} as const

/**
 * Every metric the pipeline reports, in the order they are documented.
 *
 * @since 0.1.0
 * @category definitions
 */
export const metricDefinitionList: ReadonlyArray<MetricDefinition> = Object.values(metricDefinitions)

/**
 * The markdown table of the metrics, one row per definition: what the README
 * shows between its `<!-- metrics:begin -->` and `<!-- metrics:end -->`
 * markers (a test keeps them equal).
 *
 * @since 0.1.0
 * @category docs
 */
export const metricsMarkdownTable = (definitions: ReadonlyArray<MetricDefinition> = metricDefinitionList): string => {
  const cell = (text: string) => text.replace(/\|/g, "\\|")
  const rows = definitions.map((d) => {
    const type = d.type === "histogram" ? `histogram (buckets ${d.boundaries.join(", ")})` : d.type
    const labels = d.labels.length === 0 ? "none" : d.labels.map((label) => `\`${label}\``).join(", ")
    return `| \`${d.name}\` | ${type} | ${labels} | ${cell(d.help)} | ${cell(d.reportedBy)} |`
  })
  return ["| metric | type | labels | help | reported by |", "|---|---|---|---|---|", ...rows].join("\n") + "\n"
}
