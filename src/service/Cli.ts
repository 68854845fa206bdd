/**
 * The `market-data-pipeline` command line: `run` starts the service.
 *
 * @since 0.1.0
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { writeFile } from "node:fs/promises"
import { createServer } from "node:http"
import { FeedbackPublisher } from "../contracts/FeedbackPublisher.ts"
import { FeedbackSettings } from "../feedback/FeedbackSettings.ts"
import { PipelineMetrics } from "../metrics/PipelineMetrics.ts"
import { UnifiedRuntime } from "../runtime/UnifiedRuntime.ts"
import { version } from "../version.ts"
import * as HttpApi from "./HttpApi.ts"
import { chartSvg, formatStatus, formatSummary, timelineCsv } from "./Report.ts"
import * as SimulatedStore from "./SimulatedStore.ts"
import * as Simulation from "./Simulation.ts"

const positive = Schema.Finite.check(Schema.isGreaterThan(0))

const flag = <A>(self: Flag.Flag<A>, description: string, variable: Config.Config<A>, fallback: A) =>
  self.pipe(Flag.withDescription(description), Flag.withFallbackConfig(variable), Flag.withDefault(fallback))

const options = {
  duration: flag(
    Flag.Finite("duration").pipe(Flag.withSchema(Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0)))),
    "seconds to run, 0 = until Ctrl-C (env MDP_DURATION)",
    Config.Finite("MDP_DURATION"),
    0
  ),
  port: flag(
    Flag.Int("port").pipe(Flag.withSchema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 })))),
    "HTTP port, 0 = any free port (env MDP_HTTP_PORT)",
    Config.Int("MDP_HTTP_PORT"),
    9108
  ),
  host: flag(Flag.String("host"), "HTTP bind address (env MDP_HTTP_HOST)", Config.String("MDP_HTTP_HOST"), "127.0.0.1"),
  providerRate: flag(
    Flag.Finite("provider-rate").pipe(Flag.withSchema(positive)),
    "synthetic provider's base rate, items/s (env MDP_PROVIDER_RATE)",
    Config.Finite("MDP_PROVIDER_RATE"),
    200
  ),
  sinkRate: flag(
    Flag.Finite("sink-rate").pipe(Flag.withSchema(positive)),
    "simulated store's write rate, items/s (env MDP_SINK_RATE)",
    Config.Finite("MDP_SINK_RATE"),
    120
  ),
  queueCapacity: flag(
    Flag.Int("queue-capacity").pipe(Flag.withSchema(Schema.Int.check(Schema.isGreaterThanOrEqualTo(2)))),
    "simulated store's write queue capacity (env MDP_QUEUE_CAPACITY)",
    Config.Int("MDP_QUEUE_CAPACITY"),
    1000
  ),
  noSimulatedStore: flag(
    Flag.Boolean("no-simulated-store"),
    "production mode: no simulated store, feedback only over HTTP (env MDP_NO_SIMULATED_STORE)",
    Config.Boolean("MDP_NO_SIMULATED_STORE"),
    false
  ),
  chart: Flag.String("chart").pipe(
    Flag.withDescription("write an SVG chart of queue depth, rate and level at exit (env MDP_CHART)"),
    Flag.withFallbackConfig(Config.String("MDP_CHART")),
    Flag.optional
  ),
  timeline: Flag.String("timeline").pipe(
    Flag.withDescription("write the samples as CSV at exit (env MDP_TIMELINE)"),
    Flag.withFallbackConfig(Config.String("MDP_TIMELINE")),
    Flag.optional
  )
}

type RunOptions = {
  readonly [K in keyof typeof options]: (typeof options)[K] extends Flag.Flag<infer A> ? A : never
}

const totalEvents = (metrics: PipelineMetrics["Service"]) =>
  Effect.map(metrics.snapshot, (snapshot) =>
    snapshot.filter((s) => s.id === "pipeline_feedback_events_received_total")
      .reduce((n, s) => n + (s.state as { count: number }).count, 0))

const runService = (opts: RunOptions) =>
  Effect.gen(function*() {
    const token = yield* Config.option(Config.Redacted("MDP_HTTP_TOKEN"))
    const base = yield* FeedbackSettings.load
    // the synthetic provider paces at --provider-rate with a 0.2 s burst
    const settings = FeedbackSettings.of({
      ...base,
      refillRate: opts.providerRate,
      capacity: Math.max(1, Math.ceil(opts.providerRate / 5))
    })
    const server = HttpRouter.serve(HttpApi.routes({ token: Option.getOrUndefined(token) }), {
      disableLogger: true,
      disableListenLog: true
    }).pipe(Layer.provideMerge(NodeHttpServer.layer(createServer, { port: opts.port, host: opts.host })))
    const layer = server.pipe(
      Layer.provideMerge(UnifiedRuntime.layerWithSettings),
      Layer.provide(Layer.succeed(FeedbackSettings, settings))
    )

    const tty = process.stdout.isTTY === true
    let simulation: Simulation.Simulation | undefined
    const finish = Effect.gen(function*() {
      if (simulation === undefined) return
      if (tty) process.stdout.write("\n")
      for (const line of formatSummary(yield* simulation.summary)) yield* Console.log(line)
      const samples = simulation.samples()
      const { chart, timeline } = opts
      if (Option.isSome(timeline)) {
        yield* Effect.promise(() => writeFile(timeline.value, timelineCsv(samples)))
        yield* Console.log(`timeline written to ${timeline.value}`)
      }
      if (Option.isSome(chart)) {
        const svg = yield* Effect.promise(() => chartSvg(samples))
        yield* Effect.promise(() => writeFile(chart.value, svg))
        yield* Console.log(`chart written to ${chart.value}`)
      }
    })

    yield* Effect.scoped(
      Effect.gen(function*() {
        const address = (yield* HttpServer.HttpServer).address
        const url = address._tag === "UnixPathAddress" ? address.path : `http://${opts.host}:${address.port}`
        yield* Console.log(
          `market-data-pipeline ${version} listening on ${url} (GET /metrics, GET /healthz, POST /feedback)`
        )
        const metrics = yield* PipelineMetrics
        const runtime = yield* UnifiedRuntime
        const publisher = yield* FeedbackPublisher
        const store = opts.noSimulatedStore ? undefined : yield* SimulatedStore.make({
          coordinatorId: "simulated-store",
          capacity: opts.queueCapacity,
          publish: publisher.publish
        })
        yield* Console.log(
          store === undefined
            ? `provider ${runtime.provider} at ${opts.providerRate}/s; no simulated store: feedback only over HTTP`
            : `provider ${runtime.provider} at ${opts.providerRate}/s → simulated store (capacity ${opts.queueCapacity}, ` +
              `sink ${opts.sinkRate}/s with a 3 s stall every 15 s); Ctrl-C stops`
        )
        simulation = yield* Simulation.start({ provider: runtime.provider, sinkRate: opts.sinkRate }, store)
        const status = Effect.gen(function*() {
          const line = formatStatus(yield* simulation!.sample, yield* totalEvents(metrics))
          if (tty) process.stdout.write(`\r${line}\x1b[K`)
          else yield* Console.log(line)
        })
        const statusLoop = Effect.forever(Effect.andThen(Effect.sleep(tty ? "250 millis" : "1 second"), status))
        const stop = opts.duration > 0 ? Effect.sleep(Duration.seconds(opts.duration)) : Effect.never
        yield* Effect.raceFirst(stop, statusLoop)
      }).pipe(Effect.provide(layer), Effect.ensuring(finish))
    )
  })

/**
 * `run`: the pipeline service with a simulated store by default.
 *
 * @since 0.1.0
 * @category commands
 */
export const run = Command.make("run", options, (opts) => runService(opts)).pipe(
  Command.withDescription(
    "Run the pipeline service: a synthetic provider paced by the RateCoordinator feeding a simulated store " +
      "whose watermark feedback closes the loop; HTTP /metrics, /healthz and POST /feedback."
  )
)

/**
 * The root command.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("market-data-pipeline").pipe(
  Command.withDescription("Backpressure-aware rate control for market-data pipelines"),
  Command.withSubcommands([run])
)
