import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Metric } from "effect"
import * as PrometheusMetrics from "effect/observability/PrometheusMetrics"
import {
  FeedbackPublisher,
  type MetricDefinition,
  metricDefinitionList,
  metricsMarkdownTable,
  PipelineMetrics,
  RateCoordinator,
  UnifiedRuntime
} from "market-data-pipeline"
import { readFileSync } from "node:fs"
import { captureLogs, event, eventually } from "../feedback/helpers.ts"

/** A fresh runtime with the default settings (provider ibkr), built in the registry of the context it is provided in. */
const runtime = () =>
  Layer.fresh(UnifiedRuntime.layer).pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnvRecord({}))))

const byName = new Map(metricDefinitionList.map((d) => [d.name, d]))

/** The catalogue families with at least one series in `registry`. */
const familiesIn = (registry: Metric.MetricRegistry): ReadonlySet<string> =>
  new Set([...registry.values()].map((series) => series.id).filter((id) => byName.has(id)))

/** The same series published: soft from one coordinator, the provider used once. */
const activity = Effect.gen(function*() {
  yield* (yield* RateCoordinator).acquire("ibkr")
  yield* (yield* FeedbackPublisher).publish(event("bars-coord", "soft"))
  yield* eventually(
    Effect.map(Effect.flatMap(Effect.service(RateCoordinator), (c) => c.state("ibkr")), (s) => s.scale === 0.5)
  )
})

describe("metric definitions", () => {
  it("the metrics table of docs/observability.md is the one generated from the definitions", () => {
    const readme = readFileSync(new URL("../../docs/observability.md", import.meta.url), "utf8")
    const begin = "<!-- metrics:begin -->\n"
    const end = "<!-- metrics:end -->"
    const start = readme.indexOf(begin)
    const stop = readme.indexOf(end)
    assert.isAtLeast(start, 0, "docs/observability.md has no <!-- metrics:begin --> marker")
    assert.isAbove(stop, start, "docs/observability.md has no <!-- metrics:end --> marker after the begin marker")
    assert.strictEqual(
      readme.slice(start + begin.length, stop),
      metricsMarkdownTable(),
      "docs/observability.md's metrics table differs from metricsMarkdownTable(): paste its output between the markers"
    )
  })

  it("every definition is a valid Prometheus family: unique name, type-consistent name and buckets, labels", () => {
    assert.strictEqual(byName.size, metricDefinitionList.length, "two definitions share a name")
    for (const d of metricDefinitionList) {
      assert.match(d.name, /^[a-zA-Z_:][a-zA-Z0-9_:]*$/, d.name)
      assert.strictEqual(d.name.endsWith("_total"), d.type === "counter", `${d.name}: _total iff a counter`)
      assert.isTrue(d.help.length > 0 && !d.help.includes("\n"), `${d.name}: one line of help`)
      assert.strictEqual(new Set(d.labels).size, d.labels.length, `${d.name}: a label twice`)
      for (const label of d.labels) assert.match(label, /^[a-zA-Z_][a-zA-Z0-9_]*$/, `${d.name}: ${label}`)
      assert.notInclude(d.labels, "le", `${d.name}: le is the histogram's`)
      if (d.type === "histogram") {
        assert.isAbove(d.boundaries.length, 0, d.name)
        for (let i = 1; i < d.boundaries.length; i++) assert.isAbove(d.boundaries[i]!, d.boundaries[i - 1]!)
      } else {
        assert.strictEqual(d.boundaries.length, 0, d.name)
      }
    }
  })

  it("the table has one row per definition, its help and labels", () => {
    const rows = metricsMarkdownTable().trimEnd().split("\n").slice(2)
    assert.strictEqual(rows.length, metricDefinitionList.length)
    const definition = metricDefinitionList.find((d) => d.labels.length === 2)!
    const row = rows.find((r) => r.startsWith(`| \`${definition.name}\` |`))!
    assert.include(row, definition.help)
    assert.include(row, definition.labels.map((l) => `\`${l}\``).join(", "))
  })
})

describe("whose registry", () => {
  it.effect("the runtime reports into the application's registry, next to the application's own metrics", () =>
    Effect.gen(function*() {
      const app = new Map() as Metric.MetricRegistry
      const requests = Metric.counter("app_requests_total", { description: "the application's own" })
      const text = yield* Effect.gen(function*() {
        yield* Metric.update(requests, 3)
        yield* activity
        return yield* PrometheusMetrics.format() // what the application's exporter serves
      }).pipe(Effect.provide(runtime()), Effect.provideService(Metric.MetricRegistry, app))
      assert.include(text, "app_requests_total 3")
      assert.include(text, "pipeline_rate_scale_factor{provider=\"ibkr\"} 0.5")
      assert.include(text, "# HELP pipeline_rate_scale_factor Rate scale in force (0..1)")
      assert.include(text, "pipeline_feedback_events_received_total{source=\"bars-coord\",level=\"soft\"} 1")
      // closing the runtime's scope removed its series, and only those
      assert.deepStrictEqual([...familiesIn(app)], [])
      assert.deepStrictEqual([...app.values()].map((s) => s.id), ["app_requests_total"])
    }))

  it.effect("PipelineMetrics.prometheus formats the registry the runtime lives in, the application's metrics too", () =>
    Effect.gen(function*() {
      const requests = Metric.counter("app_requests_total")
      const [own, app] = yield* Effect.gen(function*() {
        yield* Metric.update(requests, 1)
        yield* activity
        return [yield* (yield* PipelineMetrics).prometheus, yield* PrometheusMetrics.format()] as const
      }).pipe(Effect.provide(runtime()), Effect.provideService(Metric.MetricRegistry, new Map()))
      assert.strictEqual(own, app)
    }))

  it.effect("every series has exactly the labels of its definition, in their order", () =>
    Effect.gen(function*() {
      const app = new Map() as Metric.MetricRegistry
      yield* Effect.gen(function*() {
        yield* activity
        const metrics = yield* PipelineMetrics
        yield* metrics.increment(
          byName.get("pipeline_feedback_events_rejected_total")! as MetricDefinition<
            "reason",
            "counter"
          >,
          { reason: "invalid_json" }
        )
        const seen = familiesIn(app)
        // the in-process families (Redis and Pulse ones: test/metrics/Exporters.test.ts)
        assert.isAtLeast(seen.size, 14)
        for (const series of app.values()) {
          const definition = byName.get(series.id)
          assert.isDefined(definition, `${series.id} is not in metricDefinitionList`)
          assert.deepStrictEqual(Object.keys(series.attributes ?? {}), [...definition!.labels], series.id)
          assert.strictEqual(series.description, definition!.help, series.id)
          assert.strictEqual(series.type.toLowerCase(), definition!.type, series.id)
        }
      }).pipe(Effect.provide(runtime()), Effect.provideService(Metric.MetricRegistry, app))
    }))

  it.effect("PipelineMetrics.isolated: a registry of the runtime's own, apart from the application's", () =>
    Effect.gen(function*() {
      const app = new Map() as Metric.MetricRegistry
      const scrape = (level: "soft" | "hard") =>
        Effect.gen(function*() {
          yield* (yield* FeedbackPublisher).publish(event("store_01", level))
          yield* eventually(
            Effect.map(
              Effect.flatMap(Effect.service(RateCoordinator), (c) => c.state("ibkr")),
              (s) => s.scale === (level === "soft" ? 0.5 : 0)
            )
          )
          assert.deepStrictEqual([...familiesIn(app)], []) // nothing in the application's
          return yield* (yield* PipelineMetrics).prometheus
        }).pipe(Effect.provide(PipelineMetrics.isolated(runtime())))
      const [soft, hard] = yield* Effect.all([scrape("soft"), scrape("hard")], { concurrency: 2 }).pipe(
        Effect.provideService(Metric.MetricRegistry, app)
      )
      assert.include(soft, "pipeline_rate_scale_factor{provider=\"ibkr\"} 0.5")
      assert.include(hard, "pipeline_rate_scale_factor{provider=\"ibkr\"} 0")
      assert.strictEqual(app.size, 0)
    }))

  it.effect("a second runtime in the same registry warns; one in a registry of its own does not", () =>
    Effect.gen(function*() {
      const logs = captureLogs()
      const warnings = () => logs.lines.filter((l) => l.level === "Warn" && l.message.includes("MetricRegistry"))
      yield* Effect.gen(function*() {
        yield* Effect.scoped(Layer.build(runtime()))
        assert.strictEqual(warnings().length, 0) // the first one's scope closed: no longer there
        yield* Effect.scoped(Effect.gen(function*() {
          yield* Layer.build(runtime())
          yield* Layer.build(PipelineMetrics.isolated(runtime()))
          assert.strictEqual(warnings().length, 0)
          yield* Layer.build(runtime())
          assert.strictEqual(warnings().length, 1)
          assert.include(warnings()[0]!.message, "PipelineMetrics.isolated")
        }))
        yield* Effect.scoped(Layer.build(runtime()))
        assert.strictEqual(warnings().length, 1) // both closed: a new one is alone again
      }).pipe(Effect.provide(logs.layer), Effect.provideService(Metric.MetricRegistry, new Map()))
    }))
})
