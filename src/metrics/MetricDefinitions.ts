/**
 * Every metric the pipeline reports, each defined once: name, Prometheus
 * type, help text, label names and (histograms) bucket boundaries.
 *
 * Use it to know what the pipeline exports (alerts, dashboards, a
 * prom-client bridge of your own), or to count at an edge of your own with
 * `PipelineMetrics.increment(metricDefinitions.eventsRejected, ...)`. The
 * values themselves are not here: read them from `PipelineMetrics` or your
 * Effect metric exporter.
 *
 * Gotchas:
 * - Everything is derived from these definitions (the Effect metrics, the
 *   prom-client bridge, the table in docs/observability.md), so help, type and labels cannot
 *   drift; names follow the Python reference where it has them.
 * - Units are in the names: seconds (`_seconds`, `timestamp_seconds`),
 *   milliseconds (`pulse_*_ms`), tokens per second.
 * - A label value longer than 128 bytes of UTF-8 is cut and ends with a hash
 *   of the whole value; `source` labels carry coordinator ids.
 *
 * @since 0.2.0
 * @module
 */

/**
 * A Prometheus metric type.
 *
 * @since 0.2.0
 * @category models
 */
export type MetricType = "counter" | "gauge" | "histogram"

/**
 * One metric family: every series of it has exactly the labels `labels`.
 *
 * @since 0.2.0
 * @category models
 */
export interface MetricDefinition<Label extends string = string, Type extends MetricType = MetricType> {
  /** The exported name, unit included (`pipeline_rate_wait_seconds`); counters end in `_total`. */
  readonly name: string
  /** Its Prometheus type. */
  readonly type: Type
  /** The `# HELP` text, the same in every output. */
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
 * @since 0.2.0
 * @category definitions
 */
export const metricDefinitions = {
  /** Gauge `pipeline_rate_scale_factor{provider}`: the scale in force, 0 (paused) to 1. */
  rateScaleFactor: define(
    "gauge",
    "pipeline_rate_scale_factor",
    ["provider"],
    "Rate scale in force (0..1)",
    coordinator
  ),
  /** Gauge `pipeline_rate_base_tokens_per_second{provider}`: the configured refill rate, before scaling. */
  rateBase: define(
    "gauge",
    "pipeline_rate_base_tokens_per_second",
    ["provider"],
    "Configured base refill rate (tokens/s)",
    coordinator
  ),
  /** Gauge `pipeline_rate_tokens_per_second{provider}`: the refill rate in force (base × scale). */
  rateCurrent: define(
    "gauge",
    "pipeline_rate_tokens_per_second",
    ["provider"],
    "Refill rate in force (tokens/s): the base rate times the scale",
    coordinator
  ),
  /** Gauge `pipeline_backpressure_state{provider}`: the level the coordinator applies, as 0/1/2 (`levelOrdinal`). */
  backpressureState: define(
    "gauge",
    "pipeline_backpressure_state",
    ["provider"],
    "Backpressure level (0 ok, 1 soft, 2 hard)",
    coordinator
  ),
  /** Counter `pipeline_rate_tokens_granted_total{provider}`: tokens handed to acquirers. */
  tokensGranted: define("counter", "pipeline_rate_tokens_granted_total", ["provider"], "Tokens granted", coordinator),
  /**
   * Counter `pipeline_rate_tokens_returned_total{provider}`: granted tokens given back by interrupted waiters;
   * subtract it from the granted count.
   */
  tokensReturned: define(
    "counter",
    "pipeline_rate_tokens_returned_total",
    ["provider"],
    "Tokens granted to a waiter interrupted before it resumed, given back (the granted counter never goes down)",
    coordinator
  ),
  /** Gauge `pipeline_rate_waiters{provider}`: acquirers waiting for tokens right now. */
  waiters: define("gauge", "pipeline_rate_waiters", ["provider"], "Acquirers waiting for tokens", coordinator),
  /**
   * Histogram `pipeline_rate_wait_seconds{provider}`: time from acquire to grant, in seconds (1 ms to 10 s buckets).
   */
  waitSeconds: define(
    "histogram",
    "pipeline_rate_wait_seconds",
    ["provider"],
    "Seconds from acquire to grant (an immediate grant waited 0 s)",
    coordinator,
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
  ),
  /**
   * Gauge `pipeline_rate_shared_degraded{provider}`: 1 while a shared bucket runs locally because its Redis is
   * unavailable.
   */
  sharedDegraded: define(
    "gauge",
    "pipeline_rate_shared_degraded",
    ["provider"],
    "1 while the provider runs on its local fallback bucket (its Redis unavailable)",
    shared
  ),
  /** Counter `pipeline_rate_redis_errors_total{provider}`: failed or timed-out Redis calls of a shared bucket. */
  redisErrors: define(
    "counter",
    "pipeline_rate_redis_errors_total",
    ["provider"],
    "Redis calls of the shared bucket that failed or timed out",
    shared
  ),
  /**
   * Counter `feedback_events_processed_total{provider,level}`: feedback events the handler processed (the Python
   * name, no `pipeline_` prefix).
   */
  eventsProcessed: define(
    "counter",
    "feedback_events_processed_total",
    ["provider", "level"],
    "Feedback events processed",
    handler
  ),
  /** Counter `pipeline_rate_adjustments_total{provider,reason}`: adjustments the handler applied, by level applied. */
  rateAdjustments: define(
    "counter",
    "pipeline_rate_adjustments_total",
    ["provider", "reason"],
    "Rate adjustments applied (reason = the level applied)",
    handler
  ),
  /** Gauge `pipeline_feedback_queue_depth{source}`: the store queue depth last reported by each coordinator. */
  queueDepth: define(
    "gauge",
    "pipeline_feedback_queue_depth",
    ["source"],
    "Queue depth reported by feedback (source = coordinator id)",
    handler
  ),
  /** Gauge `pipeline_feedback_coordinator_level{provider,source}`: each held coordinator's last level, as 0/1/2. */
  coordinatorLevel: define(
    "gauge",
    "pipeline_feedback_coordinator_level",
    ["provider", "source"],
    "Level each coordinator the handler holds last reported (0 ok, 1 soft, 2 hard; source = coordinator id)",
    handler
  ),
  /**
   * Gauge `pipeline_feedback_coordinator_last_report_timestamp_seconds{provider,source}`: Unix time of each held
   * coordinator's last report.
   */
  coordinatorLastReport: define(
    "gauge",
    "pipeline_feedback_coordinator_last_report_timestamp_seconds",
    ["provider", "source"],
    "Unix time (s) of the last report the handler received from each coordinator it holds (source = coordinator id)",
    handler
  ),
  /**
   * Counter `pipeline_feedback_events_refused_total{provider,reason}`: events the handler refused (its coordinator
   * table full).
   */
  eventsRefused: define(
    "counter",
    "pipeline_feedback_events_refused_total",
    ["provider", "reason"],
    "Feedback events the handler refused, never applied (reason too_many_coordinators: its table is full)",
    handler
  ),
  /**
   * Counter `pipeline_feedback_events_received_total{source,level}`: events published on the bus, per cached
   * coordinator.
   */
  eventsReceived: define(
    "counter",
    "pipeline_feedback_events_received_total",
    ["source", "level"],
    "Feedback events published on the bus (source = coordinator id)",
    bus
  ),
  /**
   * Counter `pipeline_feedback_events_uncached_total`: events delivered but not cached (the bus's coordinator cache
   * full).
   */
  eventsUncached: define(
    "counter",
    "pipeline_feedback_events_uncached_total",
    [],
    "Feedback events the bus delivered live but did not cache (its coordinator cache full)",
    bus
  ),
  /**
   * Counter `pipeline_feedback_events_dropped_total`: events a slow subscriber lost, superseded by a later one of the
   * same coordinator.
   */
  eventsDropped: define(
    "counter",
    "pipeline_feedback_events_dropped_total",
    [],
    "Feedback events a slow subscriber never received (superseded by a later event of the same coordinator)",
    bus
  ),
  /** Counter `pipeline_feedback_subscriber_errors_total{subscriber}`: events whose bus subscriber failed or died. */
  subscriberErrors: define(
    "counter",
    "pipeline_feedback_subscriber_errors_total",
    ["subscriber"],
    "Feedback events whose subscriber failed (the subscriber keeps receiving)",
    bus
  ),
  /** Counter `pipeline_feedback_events_rejected_total{reason}`: requests the HTTP API refused, by error code. */
  eventsRejected: define(
    "counter",
    "pipeline_feedback_events_rejected_total",
    ["reason"],
    "Requests the HTTP API refused (reason = the error of its answer)",
    edge
  ),
  /** Counter `pulse_consume_total{stream,track,outcome}`: Pulse entries consumed, by outcome. */
  pulseConsumed: define(
    "counter",
    "pulse_consume_total",
    ["stream", "track", "outcome"],
    "Pulse entries consumed, by outcome (each delivery counted once)",
    consumer
  ),
  /** Gauge `pulse_lag_ms{stream}`: consumer lag behind the envelope timestamp, in milliseconds. */
  pulseLag: define(
    "gauge",
    "pulse_lag_ms",
    ["stream"],
    "Pulse consumer lag (ms) from the envelope timestamp",
    consumer
  ),
  /** Counter `pulse_acks_total{stream}`: Pulse entries acknowledged (`XACK`). */
  pulseAcks: define("counter", "pulse_acks_total", ["stream"], "Pulse entries acknowledged (XACK)", consumer),
  /** Gauge `pulse_pending_messages{stream}`: entries delivered to the consumer group and not yet acknowledged. */
  pulsePending: define(
    "gauge",
    "pulse_pending_messages",
    ["stream"],
    "Pulse entries delivered to the consumer group and not acknowledged",
    consumer
  ),
  /** Counter `pulse_dlq_messages_total{stream,reason}`: Pulse entries moved to the dead-letter stream. */
  pulseDeadLetters: define(
    "counter",
    "pulse_dlq_messages_total",
    ["stream", "reason"],
    "Pulse entries written to the dead-letter stream",
    consumer
  ),
  /** Counter `pulse_publish_total{stream,track,outcome}`: Pulse publishes, by outcome. */
  pulsePublished: define(
    "counter",
    "pulse_publish_total",
    ["stream", "track", "outcome"],
    "Pulse publishes, by outcome",
    publisher
  ),
  /**
   * Histogram `pulse_publish_latency_ms{stream,track}`: publish-to-Redis-answer time, in milliseconds (1 ms to 5 s
   * buckets).
   */
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
 * @example
 * ```ts
 * import { metricDefinitionList } from "market-data-pipeline"
 *
 * for (const definition of metricDefinitionList.slice(0, 2)) {
 *   console.log(definition.name, definition.type, definition.labels.join(","))
 * }
 * // → pipeline_rate_scale_factor gauge provider
 * // → pipeline_rate_base_tokens_per_second gauge provider
 * ```
 *
 * @since 0.2.0
 * @category definitions
 */
export const metricDefinitionList: ReadonlyArray<MetricDefinition> = Object.values(metricDefinitions)

/**
 * The markdown table of the metrics, one row per definition: what docs/observability.md
 * shows between its `<!-- metrics:begin -->` and `<!-- metrics:end -->`
 * markers (a test keeps them equal).
 *
 * @since 0.2.0
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
