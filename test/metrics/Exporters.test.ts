/**
 * One application, three readers of its metrics: the application's own
 * exporter (`PrometheusMetrics.format` over the ambient, default registry,
 * which this file leaves alone), a real `/metrics` scrape over HTTP, and a
 * prom-client registry fed by `registerInto`. Every family of
 * `metricDefinitionList` gets series (the runtime, the HTTP API, a shared
 * bucket on a private `redis-server`, a Pulse publisher and consumer), and
 * the three texts must agree line by line.
 *
 * Normalised, and only this: families are compared one by one (the Effect
 * registry lists them in registration order, prom-client in the order of
 * `metricDefinitionList`), and prom-client's blank lines between families are
 * dropped. Lines inside a family are compared in order.
 */
import * as NodeRedis from "@effect/platform-node/NodeRedis"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Layer, Metric, References } from "effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import * as PrometheusMetrics from "effect/observability/PrometheusMetrics"
import {
  metricDefinitionList,
  PipelineMetrics,
  PulseConsumer,
  PulsePublisher,
  RateCoordinator,
  UnifiedRuntime
} from "market-data-pipeline"
import { Registry } from "prom-client"
import { streamKey } from "../../src/pulse/PulseCodec.ts"
import * as HttpApi from "../../src/service/HttpApi.ts"
import * as HttpServerNode from "../../src/service/HttpServerNode.ts"
import { event } from "../feedback/helpers.ts"
import { plainClient, privateRedis } from "../rate/shared/redis.ts"

const NAMESPACE = "exporters"

/** The text's families: name → its lines (HELP, TYPE, samples), blank lines dropped. */
const families = (text: string): Map<string, Array<string>> => {
  const out = new Map<string, Array<string>>()
  let current: Array<string> | undefined
  for (const line of text.split("\n")) {
    if (line === "") continue
    const header = /^# (?:HELP|TYPE) (\S+)/.exec(line)
    if (header !== null) {
      current = out.get(header[1]!)
      if (current === undefined) out.set(header[1]!, current = [])
    }
    assert.isDefined(current, `a sample before any # HELP / # TYPE: ${line}`)
    current!.push(line)
  }
  return out
}

/** Polls `check` every 50 ms until it holds; fails after `withinMs` (real clock: a real Redis is involved). */
const until = <E, R>(what: string, check: Effect.Effect<boolean, E, R>, withinMs = 15_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + withinMs
    while (!(yield* check)) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`not reached within ${withinMs} ms: ${what}`))
      yield* Effect.sleep("50 millis")
    }
  })

describe("metrics exporters", () => {
  it.live(
    "the application's exporter, /metrics and prom-client print the same HELP, TYPE and samples for every family",
    () =>
      Effect.gen(function*() {
        const redis = yield* privateRedis
        const redisLayer = NodeRedis.layer({ url: redis.url, disableOfflineQueue: true })
        // The application: the runtime with its defaults, the HTTP API on an ephemeral port, a Pulse
        // consumer feeding the runtime's bus. No registry provided anywhere: the default one.
        const runtime = UnifiedRuntime.layer.pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnvRecord({}))))
        const server = HttpRouter.serve(HttpApi.routes(), { disableLogger: true, disableListenLog: true }).pipe(
          Layer.provideMerge(HttpServerNode.layer({ port: 0, host: "127.0.0.1" }))
        )
        const consumer = PulseConsumer.layer({ namespace: NAMESPACE, block: "100 millis", claimInterval: "100 millis" })
        const app = yield* Layer.build(
          Layer.merge(server, consumer).pipe(Layer.provideMerge(runtime), Layer.provideMerge(redisLayer))
        )
        // Also the application's: a shared bucket of its own on Redis, a Pulse publisher, a counter.
        const shared = Context.get(
          yield* Layer.build(RateCoordinator.layerRedis({ prefix: "exporters" }).pipe(Layer.provide(redisLayer))),
          RateCoordinator
        )
        const publisher = yield* PulsePublisher.make({ namespace: NAMESPACE }).pipe(Effect.provide(app))
        const requests = Metric.counter("app_requests_total", { description: "The application's own" })
        yield* Metric.update(requests, 7)

        const address = Context.get(app, HttpServer.HttpServer).address
        const base = address._tag === "UnixPathAddress" ? address.path : `http://127.0.0.1:${address.port}`
        const http = (path: string, init?: RequestInit) =>
          Effect.promise(async () => {
            const response = await fetch(base + path, init)
            return { status: response.status, text: await response.text() }
          })
        const post = (body: string) =>
          http("/feedback", { method: "POST", body, headers: { "content-type": "application/json" } })

        // feedback over Pulse (publish, consume, apply), an undecodable entry (dead letter), feedback
        // and a rejection over HTTP
        yield* publisher.publish(event("store_01", "soft"))
        yield* publisher.flush
        const client = yield* plainClient(redis.url)
        yield* Effect.promise(() => client.sendCommand(["XADD", streamKey(NAMESPACE), "*", "data", "not json"]))
        assert.strictEqual((yield* post("{\"coordinator_id\":")).status, 400)
        const accepted = yield* post(
          "{\"coordinator_id\":\"store_02\",\"queue_size\":10,\"capacity\":1000,\"level\":\"ok\",\"ts\":1700000000.0}"
        )
        assert.strictEqual(accepted.status, 202)
        // the runtime's in-memory bucket once; the shared bucket past its burst, so acquirers wait
        const local = Context.get(app, RateCoordinator)
        yield* local.acquire("ibkr")
        yield* shared.registerProvider("shared_feed", { capacity: 1, refillRate: 50 })
        yield* Effect.all([1, 2, 3].map(() => shared.acquire("shared_feed")), { concurrency: "unbounded" })

        const pulseStats = Context.get(app, PulseConsumer).stats
        yield* until(
          "the consumer handled the event and dead-lettered the bad entry",
          Effect.map(pulseStats, (s) => s.handled >= 1 && s.deadLettered >= 1 && s.acked >= 2)
        )
        yield* until(
          "the soft level applied",
          Effect.map(local.state("ibkr"), (s) => s.scale === 0.5)
        )
        // the pending gauge is refreshed every claimInterval: wait until the text stops changing
        let previous = ""
        yield* until(
          "the metrics are quiet",
          Effect.gen(function*() {
            yield* Effect.sleep("300 millis")
            const now = yield* PrometheusMetrics.format()
            const quiet = now === previous
            previous = now
            return quiet
          })
        )

        // (1) the application's exporter, (2) /metrics over HTTP, (3) prom-client
        const own = families(yield* PrometheusMetrics.format())
        const scraped = yield* http("/metrics")
        assert.strictEqual(scraped.status, 200)
        const served = families(scraped.text)
        const promRegistry = new Registry()
        yield* Context.get(app, PipelineMetrics).registerInto(promRegistry)
        const prom = families(yield* Effect.promise(() => promRegistry.metrics()))

        const names = metricDefinitionList.map((d) => d.name)
        for (const name of names) {
          const lines = own.get(name)
          assert.isDefined(lines, `no series of ${name} in the application's exporter`)
          assert.isAbove(lines!.filter((line) => !line.startsWith("#")).length, 0, name)
          assert.deepStrictEqual(served.get(name), lines, `${name}: /metrics differs from the application's exporter`)
          assert.deepStrictEqual(prom.get(name), lines, `${name}: prom-client differs from the application's exporter`)
        }
        // prom-client has exactly the pipeline's families; the application's own counter is in the
        // registry the runtime lives in, so in its exporter and /metrics alike
        assert.sameMembers([...prom.keys()], names)
        assert.deepStrictEqual(own.get("app_requests_total"), served.get("app_requests_total"))
        assert.include(own.get("app_requests_total")!, "app_requests_total 7")
        // no pipeline-looking family outside the definitions
        for (const name of own.keys()) {
          if (/^(pipeline|pulse|feedback)_/.test(name)) assert.include(names, name)
        }
        // every series has exactly its definition's labels, in their order
        const byName = new Map(metricDefinitionList.map((d) => [d.name, d]))
        for (const series of yield* Metric.snapshot) {
          const definition = byName.get(series.id)
          if (definition === undefined) continue
          assert.deepStrictEqual(Object.keys(series.attributes ?? {}), [...definition.labels], series.id)
        }
        // spot checks: the values are the activity above
        assert.include(own.get("pipeline_rate_scale_factor")!, "pipeline_rate_scale_factor{provider=\"ibkr\"} 0.5")
        assert.include(
          own.get("pipeline_feedback_events_rejected_total")!,
          "pipeline_feedback_events_rejected_total{reason=\"invalid_json\"} 1"
        )
        assert.include(
          own.get("pulse_dlq_messages_total")!,
          "pulse_dlq_messages_total{stream=\"telemetry.feedback\",reason=\"decode\"} 1"
        )
        assert.include(
          own.get("pipeline_rate_wait_seconds")!,
          "pipeline_rate_wait_seconds_count{provider=\"shared_feed\"} 3"
        )
      }).pipe(Effect.scoped, Effect.provideService(References.MinimumLogLevel, "Error")),
    60_000
  )
})
