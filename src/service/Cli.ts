/**
 * The `market-data-pipeline` command line: `run` starts the service.
 *
 * @since 0.1.0
 */
import * as NodeRedis from "@effect/platform-node/NodeRedis"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redis from "effect/persistence/Redis"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { dirname } from "node:path"
import { FeedbackPublisher } from "../contracts/FeedbackPublisher.ts"
import { FeedbackSettings } from "../feedback/FeedbackSettings.ts"
import { PipelineMetrics } from "../metrics/PipelineMetrics.ts"
import { PulseConsumer, type PulseConsumerOptions } from "../pulse/PulseConsumer.ts"
import { PulsePublisher } from "../pulse/PulsePublisher.ts"
import { RateCoordinator, type RedisUnavailablePolicy } from "../rate/RateCoordinator.ts"
import type { InvalidRedisOptions } from "../rate/RateError.ts"
import { UnifiedRuntime } from "../runtime/UnifiedRuntime.ts"
import { version } from "../version.ts"
import * as HttpApi from "./HttpApi.ts"
import * as HttpServerNode from "./HttpServerNode.ts"
import { chartSvg, formatStatus, formatSummary, timelineCsv } from "./Report.ts"
import * as SimulatedStore from "./SimulatedStore.ts"
import * as Simulation from "./Simulation.ts"

const positive = Schema.Finite.check(Schema.isGreaterThan(0))

const unavailablePattern = /^(wait|fail|allow|local:(0?\.\d*[1-9]\d*|1(\.0*)?))$/

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
  sharedBuckets: flag(
    Flag.Boolean("shared-buckets"),
    "share the provider's bucket with every process on the same Redis and prefix (env MDP_SHARED_BUCKETS)",
    Config.Boolean("MDP_SHARED_BUCKETS"),
    false
  ),
  redisUrl: flag(
    Flag.String("redis-url"),
    "Redis for --shared-buckets (env REDIS_URL)",
    Config.String("REDIS_URL"),
    "redis://127.0.0.1:6379"
  ),
  redisPrefix: flag(
    Flag.String("redis-prefix"),
    "key prefix of the shared buckets (env MDP_REDIS_PREFIX)",
    Config.String("MDP_REDIS_PREFIX"),
    "mdp"
  ),
  redisOnUnavailable: flag(
    Flag.String("redis-on-unavailable").pipe(
      Flag.withSchema(Schema.String.check(Schema.isPattern(unavailablePattern)))
    ),
    "while Redis is unreachable: wait, fail, allow, or local:SHARE (a local bucket at SHARE of the rate) " +
      "(env MDP_REDIS_ON_UNAVAILABLE)",
    Config.String("MDP_REDIS_ON_UNAVAILABLE"),
    "wait"
  ),
  pulse: flag(
    Flag.Boolean("pulse"),
    "also consume feedback from the Pulse stream on Redis (env PULSE_ENABLED=true with EVENT_BUS_BACKEND=redis)",
    Config.map(
      Config.all({
        enabled: Config.withDefault(Config.String("PULSE_ENABLED"), "false"),
        backend: Config.withDefault(Config.String("EVENT_BUS_BACKEND"), "inmem")
      }),
      ({ backend, enabled }) => enabled.trim().toLowerCase() === "true" && backend.trim().toLowerCase() === "redis"
    ),
    false
  ),
  namespace: flag(
    Flag.String("namespace"),
    "Pulse namespace: the stream is <ns>:<ns>.telemetry.feedback (env MD_NAMESPACE)",
    Config.String("MD_NAMESPACE"),
    "mdp"
  ),
  storeTransport: flag(
    Flag.Literals("simulated-store-transport", ["inproc", "pulse"] as const),
    "how the simulated store's feedback reaches the loop: in process, or over the Pulse stream on Redis " +
      "(pulse implies --pulse) (env MDP_SIMULATED_STORE_TRANSPORT)",
    Config.Literals(["inproc", "pulse"] as const, "MDP_SIMULATED_STORE_TRANSPORT"),
    "inproc" as "inproc" | "pulse"
  ),
  shutdownTimeout: flag(
    Flag.Finite("shutdown-timeout").pipe(Flag.withSchema(Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0)))),
    "seconds in-flight HTTP requests may take to finish after a stop signal (env MDP_SHUTDOWN_TIMEOUT)",
    Config.Finite("MDP_SHUTDOWN_TIMEOUT"),
    2
  ),
  allowUnauthenticated: flag(
    Flag.Boolean("allow-unauthenticated"),
    "allow a non-loopback --host without MDP_HTTP_TOKEN (env MDP_HTTP_ALLOW_UNAUTHENTICATED)",
    Config.Boolean("MDP_HTTP_ALLOW_UNAUTHENTICATED"),
    false
  ),
  allowedHosts: flag(
    Flag.String("allowed-host").pipe(Flag.between(0, 64)),
    "another Host name the service is reached by, e.g. a DNS name or proxy; repeatable " +
      "(env MDP_HTTP_ALLOWED_HOSTS, comma-separated)",
    Config.map(
      Config.String("MDP_HTTP_ALLOWED_HOSTS"),
      (list) => list.split(",").map((h) => h.trim()).filter((h) => h !== "")
    ),
    []
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

/**
 * A setting that stops the service before anything starts: the message
 * names the setting, the value and what is expected. The executable prints
 * it as one line and exits with code 2.
 *
 * @since 0.1.0
 * @category errors
 */
export class StartupError extends Data.TaggedError("StartupError")<{ readonly message: string }> {}

/**
 * Writing an output file (`--chart`, `--timeline`) failed at exit.
 *
 * @since 0.1.0
 * @category errors
 */
export class OutputFileError extends Data.TaggedError("OutputFileError")<{
  readonly path: string
  readonly reason: string
}> {
  override get message(): string {
    return `could not write ${this.path}: ${this.reason}`
  }
}

const totalEvents = (metrics: PipelineMetrics["Service"]) =>
  Effect.map(metrics.snapshot, (snapshot) =>
    snapshot.filter((s) => s.id === "pipeline_feedback_events_received_total")
      .reduce((n, s) => n + (s.state as { count: number }).count, 0))

/** An output file's folder must exist and be writable, and the file, if there, a writable file. */
const checkOutput = (flagName: string, path: Option.Option<string>) =>
  Effect.gen(function*() {
    if (Option.isNone(path)) return
    const fs = yield* FileSystem.FileSystem
    const file = path.value
    const dir = dirname(file)
    const fail = (reason: string) => Effect.fail(new StartupError({ message: `--${flagName} ${file}: ${reason}` }))
    const folder = yield* Effect.option(fs.stat(dir))
    if (Option.isNone(folder) || folder.value.type !== "Directory") return yield* fail(`folder ${dir} does not exist`)
    if (Result.isFailure(yield* Effect.result(fs.access(dir, { writable: true })))) {
      return yield* fail(`folder ${dir} is not writable`)
    }
    const existing = yield* Effect.option(fs.stat(file))
    if (Option.isSome(existing)) {
      if (existing.value.type === "Directory") return yield* fail("is a folder")
      if (Result.isFailure(yield* Effect.result(fs.access(file, { writable: true })))) {
        return yield* fail("is not writable")
      }
    }
  })

const writeOutput = (what: string, path: string, contents: Effect.Effect<string>) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    yield* fs.writeFileString(path, yield* contents).pipe(
      Effect.mapError((error) => new OutputFileError({ path, reason: error.message }))
    )
    yield* Console.log(`${what} written to ${path}`)
  })

/** The token, host and output checks, before anything starts. */
const checkSettings = (opts: RunOptions) =>
  Effect.gen(function*() {
    // read keeping an empty value: MDP_HTTP_TOKEN="" is a mistake to report, not "no token"
    const token = Option.getOrUndefined(
      yield* Config.option(Config.Redacted("MDP_HTTP_TOKEN")).pipe(
        Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ preserveEmptyStrings: true }))
      )
    )
    const problem = token === undefined ? undefined : HttpApi.tokenIssue(Redacted.value(token))
    if (problem !== undefined) {
      return yield* new StartupError({
        message: `MDP_HTTP_TOKEN ${problem}: set a usable token, or unset the variable to run without one`
      })
    }
    if (token === undefined && !HttpApi.isLoopback(opts.host) && !opts.allowUnauthenticated) {
      return yield* new StartupError({
        message: `--host ${opts.host} is not a loopback address and MDP_HTTP_TOKEN is not set: ` +
          "set a token, or pass --allow-unauthenticated to accept feedback from the network without one"
      })
    }
    // the flag's schema checks --redis-on-unavailable; this checks MDP_REDIS_ON_UNAVAILABLE too
    if (!unavailablePattern.test(opts.redisOnUnavailable)) {
      return yield* new StartupError({
        message: `--redis-on-unavailable (MDP_REDIS_ON_UNAVAILABLE) ${JSON.stringify(opts.redisOnUnavailable)}: ` +
          "expected wait, fail, allow or local:SHARE with SHARE in (0, 1]"
      })
    }
    yield* checkOutput("chart", opts.chart)
    yield* checkOutput("timeline", opts.timeline)
    return token
  })

/** `SCHEMA_TRACK` (v1 or v2) of what the simulated store publishes over Pulse. */
const schemaTrack = Config.withDefault(Config.Literals(["v1", "v2"] as const, "SCHEMA_TRACK"), "v1" as "v1" | "v2")

/** The consumer's settings from the Python environment names, where they exist. */
const pulseConsumerOptions = (namespace: string) =>
  Effect.gen(function*() {
    const text = (name: string) => Effect.map(Config.option(Config.String(name)), Option.getOrUndefined)
    const int = (name: string) => Effect.map(Config.option(Config.Int(name)), Option.getOrUndefined)
    const options: PulseConsumerOptions = {
      namespace,
      group: yield* text("PULSE_GROUP"),
      consumer: yield* text("PULSE_CONSUMER"),
      groupStart: yield* text("PULSE_GROUP_START"),
      count: yield* int("PULSE_COUNT"),
      block: yield* int("PULSE_BLOCK_MS"),
      claimIdle: yield* int("PULSE_CLAIM_IDLE_MS"),
      claimInterval: yield* int("PULSE_CLAIM_EVERY_MS"),
      maxDeliveries: yield* int("PULSE_MAX_DELIVERIES")
    }
    return options
  })

const unavailablePolicy = (value: string): RedisUnavailablePolicy =>
  value.startsWith("local:") ? { local: Number(value.slice("local:".length)) } : value as "wait" | "fail" | "allow"

const runService = (opts: RunOptions) =>
  Effect.gen(function*() {
    const token = yield* checkSettings(opts)
    const base = yield* FeedbackSettings.load
    // the synthetic provider paces at --provider-rate with a 0.2 s burst
    const settings = FeedbackSettings.of({
      ...base,
      refillRate: opts.providerRate,
      capacity: Math.max(1, Math.ceil(opts.providerRate / 5))
    })
    const server = HttpRouter.serve(
      HttpApi.routes({ token, bindHost: opts.host, allowedHosts: opts.allowedHosts }),
      { disableLogger: true, disableListenLog: true }
    ).pipe(
      Layer.provideMerge(HttpServerNode.layer({
        port: opts.port,
        host: opts.host,
        shutdownTimeout: Duration.seconds(opts.shutdownTimeout)
      }))
    )
    // one connection pool for everything on Redis (the same layer value is built once)
    const redis = NodeRedis.layer({ url: opts.redisUrl, disableOfflineQueue: true })
    const pulse = opts.pulse || opts.storeTransport === "pulse"
    const coordinator: Layer.Layer<RateCoordinator, Redis.RedisError | InvalidRedisOptions> = opts.sharedBuckets
      ? RateCoordinator.layerRedis({
        prefix: opts.redisPrefix,
        onUnavailable: unavailablePolicy(opts.redisOnUnavailable)
      })
        .pipe(Layer.provide(redis))
      : RateCoordinator.layer
    // the consumer hands each event to the runtime's bus (its FeedbackPublisher)
    const consumer = pulse
      ? Layer.merge(PulseConsumer.layer(yield* pulseConsumerOptions(opts.namespace)), redis).pipe(
        Layer.provideMerge(redis)
      )
      : Layer.empty
    const layer = Layer.merge(server, consumer).pipe(
      Layer.provideMerge(UnifiedRuntime.layerWithCoordinator(coordinator)),
      Layer.provide(Layer.succeed(FeedbackSettings, settings))
    )

    const tty = process.stdout.isTTY === true
    let failed: OutputFileError | undefined
    // Everything below runs inside the server's layer: on a signal, `report`
    // stops the loop and prints the summary first; the server drains after.
    yield* Effect.scoped(
      Effect.gen(function*() {
        const address = (yield* HttpServer.HttpServer).address
        const url = address._tag === "UnixPathAddress" ? address.path : `http://${opts.host}:${address.port}`
        if (token === undefined) {
          yield* Effect.logWarning(
            "MDP_HTTP_TOKEN is not set: any local client may POST /feedback and DELETE /feedback/{id}; " +
              "set a token in production"
          )
        }
        yield* Console.log(
          `market-data-pipeline ${version} listening on ${url} ` +
            "(GET /metrics, GET /healthz, POST /feedback, DELETE /feedback/{coordinator_id})"
        )
        const metrics = yield* PipelineMetrics
        const runtime = yield* UnifiedRuntime
        const publisher = yield* FeedbackPublisher
        // over Pulse, the store's feedback goes out to Redis and comes back through the consumer
        const storePublish = opts.storeTransport === "pulse"
          ? (yield* PulsePublisher.make({ namespace: opts.namespace, track: yield* schemaTrack }).pipe(
            Effect.provide(yield* Layer.build(redis))
          )).publish
          : publisher.publish
        const store = opts.noSimulatedStore ? undefined : yield* SimulatedStore.make({
          coordinatorId: "simulated-store",
          capacity: opts.queueCapacity,
          publish: storePublish
        })
        yield* Console.log(
          store === undefined
            ? `provider ${runtime.provider} at ${opts.providerRate}/s; no simulated store: feedback only over HTTP`
            : `provider ${runtime.provider} at ${opts.providerRate}/s → simulated store (capacity ${opts.queueCapacity}, ` +
              `sink ${opts.sinkRate}/s with a 3 s stall every 15 s); Ctrl-C stops`
        )
        const simulation = yield* Simulation.start({ provider: runtime.provider, sinkRate: opts.sinkRate }, store)
        const report = Effect.gen(function*() {
          yield* simulation.stop
          if (tty) process.stdout.write("\n")
          for (const line of formatSummary(yield* simulation.summary)) yield* Console.log(line)
          const samples = simulation.samples()
          if (Option.isSome(opts.timeline)) {
            yield* writeOutput("timeline", opts.timeline.value, Effect.sync(() => timelineCsv(samples)))
          }
          if (Option.isSome(opts.chart)) {
            yield* writeOutput("chart", opts.chart.value, Effect.promise(() => chartSvg(samples)))
          }
        }).pipe(
          // a file that cannot be written is reported, and fails the run once the report is done
          Effect.catch((error) =>
            Effect.andThen(
              Console.error(error.message),
              Effect.sync(() => {
                failed = error
                // also when a signal ended the run and nothing after this point runs
                process.exitCode = 1
              })
            )
          )
        )
        const status = Effect.gen(function*() {
          const line = formatStatus(yield* simulation.sample, yield* totalEvents(metrics))
          if (tty) process.stdout.write(`\r${line}\x1b[K`)
          else yield* Console.log(line)
        })
        const statusLoop = Effect.forever(Effect.andThen(Effect.sleep(tty ? "250 millis" : "1 second"), status))
        const stop = opts.duration > 0 ? Effect.sleep(Duration.seconds(opts.duration)) : Effect.never
        // the report runs however the run ends: --duration, a signal (interruption) or a failure
        yield* Effect.raceFirst(stop, statusLoop).pipe(Effect.onExit(() => report))
      }).pipe(Effect.provide(layer))
    ).pipe(
      Effect.catchTags({
        InvalidRedisOptions: (error) => Effect.fail(new StartupError({ message: error.message })),
        InvalidPulseConsumerOptions: (error) => Effect.fail(new StartupError({ message: error.message })),
        InvalidPulsePublisherOptions: (error) => Effect.fail(new StartupError({ message: error.message }))
      }),
      // only building the Redis connection (shared buckets, Pulse) fails with a RedisError
      Effect.catchTag("RedisError", (error) =>
        Effect.fail(
          new StartupError({
            message: `${
              opts.sharedBuckets ? "--shared-buckets" : "--pulse"
            }: cannot connect to Redis at ${opts.redisUrl} (${
              error.cause instanceof Error ? error.cause.message : String(error.cause)
            })`
          })
        ))
    )
    if (failed !== undefined) return yield* failed
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
