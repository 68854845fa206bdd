/**
 * The pipeline's metrics as a service: Prometheus text, Effect snapshots, a
 * bridge into a prom-client registry, and registries of a runtime's own.
 *
 * The components (rate coordinator, feedback bus and handler, HTTP API,
 * Pulse) register their series in the `Metric.MetricRegistry` of the context
 * they are built in: by default the application's, which
 * `PrometheusMetrics.format` and `PrometheusMetrics.layerHttp` read, so an
 * Effect application exports them with its own and needs nothing from this
 * module. Use `PipelineMetrics` for that text as a value (`prometheus`, what
 * the service's `/metrics` serves), for a prom-client application
 * (`registerInto`), or to give a runtime a registry of its own (`isolated`).
 * What each metric means is in `metricDefinitionList`.
 *
 * Gotchas:
 * - Two runtimes in one registry write the same series (the bus's, and a
 *   provider's when they share one); the later replaces the earlier, with a
 *   warning logged. Isolate one of them.
 * - An isolated runtime's series are not in the application's exporters.
 * - Values are read when scraped (nothing is pushed), and a component's
 *   series leave the registry when its layer closes: scrape before that.
 *
 * @since 0.1.0
 * @module
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as PrometheusMetrics from "effect/observability/PrometheusMetrics"
import type * as Scope from "effect/Scope"
import * as Cells from "./internal/cells.ts"
import { type MetricDefinition, metricDefinitionList } from "./MetricDefinitions.ts"

/**
 * What `registerInto` needs of a prom-client `Registry` (prom-client 15's
 * `Registry` has it). Structural, so the package's types do not depend on
 * prom-client, an optional peer dependency.
 *
 * @since 0.2.0
 * @category models
 */
export interface PromClientRegistry {
  /** The registered metric of that name, or `undefined`: checked for every pipeline metric before adding any. */
  readonly getSingleMetric: (name: string) => unknown
  /** Adds a collector (an object with `name`, `help`, `type` and an async `get`), one per pipeline metric. */
  readonly registerMetric: (metric: any) => void
  /** Removes a metric by name; called for every pipeline metric when the `registerInto` scope closes. */
  readonly removeSingleMetric: (name: string) => void
}

/**
 * The pipeline's metrics, in the `Metric.MetricRegistry` of the context it
 * was built in. `UnifiedRuntime.layer` uses the application's registry (the
 * one `PrometheusMetrics` and your own exporters read), so the `pipeline_*`
 * series appear next to your own; `PipelineMetrics.isolated(layer)` gives a
 * runtime a registry of its own instead (tests, several runtimes in one
 * process).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { metricDefinitions, PipelineMetrics } from "market-data-pipeline"
 *
 * const program = Effect.gen(function*() {
 *   const metrics = yield* PipelineMetrics
 *   // an edge of your own counts a rejection in the pipeline's metric
 *   yield* metrics.increment(metricDefinitions.eventsRejected, { reason: "unauthorized" })
 *   const text = yield* metrics.prometheus
 *   console.log(text.split("\n").filter((line) => line.includes("events_rejected")).join("\n"))
 * })
 * Effect.runPromise(program.pipe(Effect.provide(PipelineMetrics.layer)))
 * // → # HELP pipeline_feedback_events_rejected_total Requests the HTTP API refused (reason = the error of its answer)
 * // → # TYPE pipeline_feedback_events_rejected_total counter
 * // → pipeline_feedback_events_rejected_total{reason="unauthorized"} 1
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export class PipelineMetrics extends Context.Service<PipelineMetrics, {
  /**
   * The registry this service lives in as Prometheus text exposition (what
   * `/metrics` serves): the pipeline's series and any other metric in it.
   */
  readonly prometheus: Effect.Effect<string>
  /** Every series of that registry, as Effect snapshots. */
  readonly snapshot: Effect.Effect<ReadonlyArray<Metric.Metric.Snapshot>>
  /**
   * Adds every pipeline metric (`metricDefinitionList`) to a prom-client
   * `Registry`, values read at scrape time, until the scope closes. Fails if
   * the registry already has a metric of the same name (another runtime: use
   * one registry each).
   */
  readonly registerInto: (registry: PromClientRegistry) => Effect.Effect<void, DuplicateMetric, Scope.Scope>
  /** Adds 1 to a series of a pipeline counter (registered on first use), e.g. rejections at an edge. */
  readonly increment: <Label extends string>(
    definition: MetricDefinition<Label, "counter">,
    labels: Readonly<Record<Label, string>>
  ) => Effect.Effect<void>
}>()("market-data-pipeline/PipelineMetrics") {
  /**
   * Reads the registry of the context it is built in. The series it
   * registered (those counted with `increment`) are removed when its scope
   * closes.
   *
   * @example
   * ```ts
   * import { Effect, Metric } from "effect"
   * import * as PrometheusMetrics from "effect/observability/PrometheusMetrics"
   * import { metricDefinitions, PipelineMetrics } from "market-data-pipeline"
   *
   * const program = Effect.gen(function*() {
   *   yield* Metric.update(Metric.counter("app_requests_total"), 1)
   *   const metrics = yield* PipelineMetrics
   *   yield* metrics.increment(metricDefinitions.eventsRejected, { reason: "bad_json" })
   *   // the application's registry: the exporter prints both, and so does `prometheus`
   *   const exported = yield* PrometheusMetrics.format()
   *   console.log(exported.includes("app_requests_total 1"), exported.includes(`{reason="bad_json"} 1`))
   *   console.log((yield* metrics.prometheus) === exported)
   * })
   * Effect.runPromise(program.pipe(Effect.provide(PipelineMetrics.layer)))
   * // → true true
   * // → true
   * ```
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly layer: Layer.Layer<PipelineMetrics> = Layer.effect(
    PipelineMetrics,
    Effect.gen(function*() {
      const context = yield* Effect.context<never>()
      const registry = Context.get(context, Metric.MetricRegistry)
      const others = runtimesIn.get(registry) ?? 0
      if (others > 0) {
        yield* Effect.logWarning(
          "another pipeline runtime reports into this Metric.MetricRegistry: their series with equal labels " +
            "replace each other; give each runtime a registry of its own with PipelineMetrics.isolated(layer)"
        )
      }
      runtimesIn.set(registry, others + 1)
      const cells = Cells.make(context)
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          cells.dispose()
          const left = (runtimesIn.get(registry) ?? 1) - 1
          if (left > 0) runtimesIn.set(registry, left)
          else runtimesIn.delete(registry)
        })
      )
      return PipelineMetrics.of({
        increment: (definition, labels) =>
          Effect.sync(() => {
            cells.counter(definition, labels).value++
          }),
        prometheus: Effect.sync(() => PrometheusMetrics.formatUnsafe(context)),
        snapshot: Effect.sync(() => Metric.snapshotUnsafe(context)),
        registerInto: (promRegistry) =>
          Effect.acquireRelease(
            Effect.suspend(() => {
              const taken = metricDefinitionList.find(({ name }) => promRegistry.getSingleMetric(name) !== undefined)
              if (taken !== undefined) return Effect.fail(new DuplicateMetric({ name: taken.name }))
              for (const definition of metricDefinitionList) {
                promRegistry.registerMetric(collector(definition, registry, context))
              }
              return Effect.void
            }),
            () =>
              Effect.sync(() => {
                for (const { name } of metricDefinitionList) promRegistry.removeSingleMetric(name)
              })
          )
      })
    })
  )

  /**
   * Builds `layer` with a `Metric.MetricRegistry` of its own, kept in its
   * output so that layers built on it (the HTTP API, a Pulse consumer) report
   * there too: `PipelineMetrics.isolated(UnifiedRuntime.layer)`. For tests,
   * and for several runtimes in one process, whose series would otherwise
   * replace each other in the application's registry. That registry's series
   * are then only in `PipelineMetrics.prometheus` (and `registerInto`), not
   * in the application's exporters.
   *
   * @example
   * ```ts
   * import { Effect, Metric } from "effect"
   * import { metricDefinitions, PipelineMetrics } from "market-data-pipeline"
   *
   * const program = Effect.gen(function*() {
   *   const metrics = yield* PipelineMetrics
   *   yield* metrics.increment(metricDefinitions.eventsRejected, { reason: "unauthorized" })
   *   const text = yield* metrics.prometheus
   *   console.log(text.includes("events_rejected_total"), text.includes("app_requests_total"))
   * })
   * Effect.runPromise(Effect.gen(function*() {
   *   yield* Metric.update(Metric.counter("app_requests_total"), 1)
   *   // the application's registry: the application's metric is there too
   *   yield* program.pipe(Effect.provide(PipelineMetrics.layer))
   *   // a registry of its own: only what was built on it
   *   yield* program.pipe(Effect.provide(PipelineMetrics.isolated(PipelineMetrics.layer)))
   * }))
   * // → true true
   * // → true false
   * ```
   *
   * @since 0.2.0
   * @category layers
   */
  static readonly isolated = <A, E, R>(layer: Layer.Layer<A, E, R>): Layer.Layer<A, E, R> =>
    // (the cast: the registry is a reference, which a layer's output type does not list)
    layer.pipe(Layer.provideMerge(Layer.sync(Metric.MetricRegistry, () => new Map()))) as Layer.Layer<A, E, R>
}

// How many `PipelineMetrics` services live in each registry, for the warning
// about runtimes sharing one. Keyed weakly: it keeps no registry alive.
const runtimesIn = new WeakMap<Metric.MetricRegistry, number>()

/**
 * The prom-client registry already has a metric of that name.
 *
 * @since 0.1.0
 * @category errors
 */
export class DuplicateMetric extends Data.TaggedError("DuplicateMetric")<{
  /** The name of the first pipeline metric found already registered (`pipeline_rate_scale_factor`). */
  readonly name: string
}> {
  /** Names the metric that is already registered. */
  override get message(): string {
    return `the prom-client registry already has a metric named ${this.name}`
  }
}

type Labels = Record<string, string | number>

// prom-client reads a registered metric through `get()` at scrape time: the
// family's series in the registry, read the way `PrometheusMetrics` reads them.
const collector = (
  definition: MetricDefinition,
  registry: Metric.MetricRegistry,
  context: Context.Context<never>
) => {
  const { help, name, type } = definition
  const read = () => {
    const values: Array<{ labels: Labels; value: number; metricName?: string }> = []
    for (const series of registry.values()) {
      if (series.id !== name) continue
      const labels: Labels = { ...series.attributes }
      const state = series.hooks.get(context)
      if (series.type === "Histogram") {
        for (const [le, count] of state.buckets as ReadonlyArray<[number, number]>) {
          values.push({ metricName: `${name}_bucket`, labels: { ...labels, le }, value: count })
        }
        values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: "+Inf" }, value: state.count })
        values.push({ metricName: `${name}_sum`, labels, value: state.sum })
        values.push({ metricName: `${name}_count`, labels, value: state.count })
      } else {
        values.push({ labels, value: series.type === "Counter" ? Number(state.count) : Number(state.value) })
      }
    }
    return { name, help, type, aggregator: "sum", values }
  }
  return { name, help, type, aggregator: "sum", get: () => Promise.resolve(read()), reset: () => {} }
}
