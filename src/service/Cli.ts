/**
 * The `market-data-pipeline` command line: `run` starts the service.
 *
 * The flags of `run` come from the settings' definitions (`Settings.ts`):
 * each takes its value as text and `Settings.load` checks it with the
 * setting's own `Config`, exactly as the environment variable is checked, at
 * the start of the handler and before anything starts. {@link presenter}
 * replaces the CLI's own output: `--help` lists the settings by group with
 * their defaults and environment variables, and a flag the parser refuses is
 * one line on stderr (no help dump before it).
 *
 * @since 0.1.0
 */
import type * as NodeRedis from "@effect/platform-node/NodeRedis"
import * as CliError from "effect/cli/CliError"
import * as CliOutput from "effect/cli/CliOutput"
import * as Command from "effect/cli/Command"
import type * as HelpDoc from "effect/cli/HelpDoc"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import type * as Redis from "effect/persistence/Redis"
import { FeedbackPublisher } from "../contracts/FeedbackPublisher.ts"
import { FeedbackSettings } from "../feedback/FeedbackSettings.ts"
import { PipelineMetrics } from "../metrics/PipelineMetrics.ts"
import { PulseConsumer, type PulseConsumerOptions } from "../pulse/PulseConsumer.ts"
import { PulsePublisher } from "../pulse/PulsePublisher.ts"
import { ProviderSettings } from "../rate/ProviderSettings.ts"
import { RateCoordinator } from "../rate/RateCoordinator.ts"
import type { InvalidRedisOptions } from "../rate/RateError.ts"
import { UnifiedRuntime } from "../runtime/UnifiedRuntime.ts"
import { version } from "../version.ts"
import * as HttpApi from "./HttpApi.ts"
import * as HttpServerNode from "./HttpServerNode.ts"
import * as Logging from "./Logging.ts"
import { chartSvg, formatStatus, formatSummary, timelineCsv } from "./Report.ts"
import * as Settings from "./Settings.ts"
import * as SimulatedStore from "./SimulatedStore.ts"
import * as Simulation from "./Simulation.ts"
import * as Tracing from "./Tracing.ts"

export {
  /**
   * A setting that stops the service before anything starts (see `Settings`).
   *
   * @since 0.1.0
   * @category errors
   */
  StartupError
} from "./Settings.ts"

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

const writeOutput = (what: string, path: string, contents: Effect.Effect<string>) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    yield* fs.writeFileString(path, yield* contents).pipe(
      Effect.mapError((error) => new OutputFileError({ path, reason: error.message }))
    )
    yield* Console.log(`${what} written to ${path}`)
  })

/** The consumer's settings (the Python environment names); undefined ones take the consumer's defaults. */
const pulseConsumerOptions = (opts: Settings.RunSettings): PulseConsumerOptions => ({
  namespace: opts.namespace,
  group: Option.getOrUndefined(opts.pulseGroup),
  consumer: Option.getOrUndefined(opts.pulseConsumer),
  groupStart: Option.getOrUndefined(opts.pulseGroupStart),
  count: Option.getOrUndefined(opts.pulseCount),
  block: Option.getOrUndefined(opts.pulseBlockMs),
  claimIdle: Option.getOrUndefined(opts.pulseClaimIdleMs),
  claimInterval: Option.getOrUndefined(opts.pulseClaimEveryMs),
  maxDeliveries: Option.getOrUndefined(opts.pulseMaxDeliveries)
})

/** The version of `redis` the command line is tested with, for the line saying what to install. */
const redisPackage = "redis@6.3.1"

// Node's error for a bare specifier it cannot find: "Cannot find package 'redis' imported from …"
const isMissingRedis = (error: unknown): boolean =>
  error instanceof Error && (error as NodeJS.ErrnoException).code === "ERR_MODULE_NOT_FOUND" &&
  error.message.includes("'redis'")

/**
 * `NodeRedis`, loaded only by a run that uses Redis (it imports `redis`, an
 * optional peer, and takes a while to load); when `redis` is not installed,
 * a `StartupError` saying what to install, naming the option (`feature`)
 * that needs it.
 */
const loadNodeRedis = (feature: string): Effect.Effect<typeof NodeRedis, Settings.StartupError> =>
  Effect.tryPromise({
    try: () => import("@effect/platform-node/NodeRedis"),
    catch: (error) => error
  }).pipe(
    Effect.catch((error) =>
      isMissingRedis(error)
        ? Effect.fail(
          new Settings.StartupError({ message: `${feature} needs the redis package: npm install ${redisPackage}` })
        )
        : Effect.die(error)
    )
  )

/**
 * The Redis layer, with NodeRedis's warnings about its client failing
 * dropped until it has connected: a connection that cannot be made is
 * reported once, as the line that stops the start. Once connected, they are
 * logged as usual.
 */
const quietUntilConnected = <A, E, R>(layer: Layer.Layer<A, E, R>): Layer.Layer<A, E, R> =>
  Layer.unwrap(Effect.gen(function*() {
    const loggers = yield* Logger.CurrentLoggers
    let connected = false
    const logger = Logger.make((options) => {
      const message = options.message
      if (!connected && Array.isArray(message) && message[0] === "NodeRedis client error") return
      for (const each of loggers) each.log(options)
    })
    return layer.pipe(
      Layer.tap(() => Effect.sync(() => (connected = true))),
      Layer.provide(Logger.layer([logger]))
    )
  }))

const runService = (given: Readonly<Record<string, Settings.Given>>) =>
  Effect.gen(function*() {
    // every setting, checked before anything starts
    const opts = yield* Settings.load(given)
    // every log line of the run from the level --log-level / MDP_LOG_LEVEL names
    return yield* serve(opts).pipe(Effect.provide(Logging.layer({ minimumLevel: opts.logLevel })))
  })

const serve = (opts: Settings.RunSettings) =>
  Effect.gen(function*() {
    const token = opts.token
    const provider = ProviderSettings.fromValues(opts)
    const feedback = FeedbackSettings.fromValues(opts)
    // the option that needs Redis, for messages
    const feature = opts.sharedBuckets
      ? "--shared-buckets"
      : opts.storeTransport === "pulse"
      ? "--simulated-store-transport pulse"
      : "--pulse"
    const nodeRedis = opts.sharedBuckets || opts.consumePulse ? yield* loadNodeRedis(feature) : undefined
    // one connection pool for everything on Redis (the same layer value is built once)
    const redis: Layer.Layer<Redis.Redis | NodeRedis.NodeRedis, Redis.RedisError> = nodeRedis === undefined
      ? Layer.unwrap(Effect.die("Redis is used only with --shared-buckets or --pulse"))
      : quietUntilConnected(nodeRedis.layer({ url: opts.redisUrl, disableOfflineQueue: true }))
    const listener = HttpServerNode.layer({
      port: opts.port,
      host: opts.host,
      shutdownTimeout: Duration.seconds(opts.shutdownTimeout)
    })
    const server = HttpRouter.serve(
      HttpApi.routes({ token, bindHost: opts.host, allowedHosts: opts.allowedHosts }),
      { disableLogger: true, disableListenLog: true }
    )
    const coordinator: Layer.Layer<RateCoordinator, Redis.RedisError | InvalidRedisOptions> = opts.sharedBuckets
      ? RateCoordinator.layerRedis({
        prefix: opts.redisPrefix,
        onUnavailable: Settings.unavailablePolicy(opts.redisOnUnavailable)
      })
        .pipe(Layer.provide(redis))
      : RateCoordinator.layer
    // the consumer hands each event to the runtime's bus (its FeedbackPublisher)
    const consumer = opts.consumePulse
      ? Layer.merge(PulseConsumer.layer(pulseConsumerOptions(opts)), redis).pipe(
        Layer.provideMerge(redis)
      )
      : Layer.empty
    // the address is bound first: when it cannot be, nothing else has started (no Redis, no
    // provider registered, no log line) and the ListenError is the one line printed
    const layer = Layer.merge(server, consumer).pipe(
      Layer.provideMerge(UnifiedRuntime.layerWithCoordinator(coordinator)),
      Layer.provideMerge(listener),
      Layer.provide(Layer.merge(Layer.succeed(FeedbackSettings, feedback), Layer.succeed(ProviderSettings, provider))),
      // below everything: the library decides, as its layers are built, whether to make spans
      Layer.provide(Tracing.fromSettings(opts))
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
            "(GET / live console, GET /metrics, GET /healthz, POST /feedback, DELETE /feedback/{coordinator_id})"
        )
        const metrics = yield* PipelineMetrics
        const runtime = yield* UnifiedRuntime
        const publisher = yield* FeedbackPublisher
        // over Pulse, the store's feedback goes out to Redis and comes back through the consumer
        const storePublish = opts.storeTransport === "pulse"
          ? (yield* PulsePublisher.make({ namespace: opts.namespace, track: opts.schemaTrack }).pipe(
            Effect.provide(yield* Layer.build(redis))
          )).publish
          : publisher.publish
        const store = opts.noSimulatedStore ? undefined : yield* SimulatedStore.make({
          coordinatorId: "simulated-store",
          capacity: opts.queueCapacity,
          overflow: opts.overflow,
          publish: storePublish
        })
        yield* Console.log(
          store === undefined
            ? `provider ${runtime.provider} at ${provider.rate}/s; no simulated store: feedback only over HTTP`
            : `provider ${runtime.provider} at ${provider.rate}/s → simulated store (capacity ${opts.queueCapacity}, ` +
              `sink ${opts.sinkRate}/s with a 3 s stall every 15 s); Ctrl-C stops`
        )
        const simulation = yield* Simulation.start(
          { provider: runtime.provider, sinkRate: opts.sinkRate, feedback: runtime.feedbackEnabled },
          store
        )
        const report = Effect.gen(function*() {
          yield* simulation.stop
          if (tty) process.stdout.write("\n")
          const summary = yield* simulation.summary
          for (const line of formatSummary(summary)) yield* Console.log(line)
          const samples = simulation.samples()
          if (Option.isSome(opts.timeline)) {
            yield* writeOutput("timeline", opts.timeline.value, Effect.sync(() => timelineCsv(samples)))
          }
          if (Option.isSome(opts.chart)) {
            yield* writeOutput("chart", opts.chart.value, Effect.sync(() => chartSvg(samples, summary)))
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
          const sample = yield* simulation.sample
          const events = yield* totalEvents(metrics)
          // the width is read at every redraw: Node keeps it current when the terminal is resized
          if (tty) process.stdout.write(`\r${formatStatus(sample, events, process.stdout.columns)}\x1b[K`)
          else yield* Console.log(formatStatus(sample, events))
        })
        const statusLoop = Effect.forever(Effect.andThen(Effect.sleep(tty ? "250 millis" : "1 second"), status))
        const stop = opts.duration > 0 ? Effect.sleep(Duration.seconds(opts.duration)) : Effect.never
        // the report runs however the run ends: --duration, a signal (interruption) or a failure
        yield* Effect.raceFirst(stop, statusLoop).pipe(Effect.onExit(() => report))
      }).pipe(Effect.provide(layer))
    ).pipe(
      Effect.catchTags({
        InvalidRedisOptions: (error) => Effect.fail(new Settings.StartupError({ message: error.message })),
        InvalidPulseConsumerOptions: (error) => Effect.fail(new Settings.StartupError({ message: error.message })),
        InvalidPulsePublisherOptions: (error) => Effect.fail(new Settings.StartupError({ message: error.message })),
        // the port in use, a privileged port, a --host not of this machine: one line, exit 2
        ListenError: (error) => Effect.fail(new Settings.StartupError({ message: error.message }))
      }),
      // only building the Redis connection (shared buckets, Pulse) fails with a RedisError
      Effect.catchTag("RedisError", (error) =>
        Effect.fail(
          new Settings.StartupError({
            message: `${feature}: cannot connect to Redis at ${opts.redisUrl} (${
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
export const run = Command.make("run", Settings.flags, runService).pipe(
  Command.withDescription(
    "Run the pipeline service: a synthetic provider paced by the RateCoordinator feeding a simulated store " +
      "whose watermark feedback closes the loop; HTTP /metrics, /healthz and POST /feedback. " +
      "A flag wins over its environment variable."
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

const WIDTH = 100

/** Rows of two columns, the right one starting at `column` and wrapped at {@link WIDTH}. */
const table = (rows: ReadonlyArray<readonly [left: string, right: string]>, column: number): Array<string> => {
  const room = Math.max(30, WIDTH - 2 - column)
  return rows.flatMap(([left, right]) => {
    const lines: Array<string> = []
    let line = ""
    for (const word of right.split(" ")) {
      if (line !== "" && line.length + 1 + word.length > room) {
        lines.push(line)
        line = word
      } else line = line === "" ? word : `${line} ${word}`
    }
    lines.push(line)
    const first = left.length + 2 >= column
      ? [`  ${left}`, `  ${" ".repeat(column)}${lines[0]}`]
      : [`  ${left.padEnd(column)}${lines[0]}`]
    return [...first, ...lines.slice(1).map((rest) => `  ${" ".repeat(column)}${rest}`)]
  })
}

/**
 * `run --help`: the settings by group, each flag with its default and its
 * environment variable, then the settings that have no flag.
 */
const runHelp = (doc: HelpDoc.HelpDoc): string => {
  const lines = ["DESCRIPTION", `  ${doc.description}`, "", "USAGE", `  ${doc.usage}`, ""]
  const column = 30
  for (const section of Settings.helpSections) {
    const rows = section.settings.map((setting): readonly [string, string] => {
      const fallback = setting.defaultText === undefined ? "" : `default: ${setting.defaultText}; `
      const flag = setting.flag
      return flag === undefined
        ? [setting.env, `${setting.description} (${fallback}environment only)`]
        : flag._tag === "Switch"
        ? [`--${flag.name}`, `${setting.description} (default: off; env ${setting.env}=${flag.value})`]
        : [`--${flag.name} ${flag.metavar}`, `${setting.description} (${fallback}env ${setting.env})`]
    })
    lines.push(section.title, ...table(rows, column), "")
  }
  const globals = doc.globalFlags ?? []
  if (globals.length > 0) {
    lines.push(
      "GLOBAL FLAGS",
      ...table(
        globals.map((flag) => [
          [`--${flag.name}`, ...flag.aliases].join(", "),
          Option.getOrElse(flag.description, () => "")
        ]),
        column
      )
    )
  }
  return lines.join("\n")
}

/** A parse error as one line: `unknown option --bogus (did you mean --port?)`. */
const describeCliError = (error: CliError.CliError): string => {
  switch (error._tag) {
    case "UnrecognizedOption":
      return `unknown option ${error.option}${
        error.suggestions.length > 0 ? ` (did you mean ${error.suggestions.join(" or ")}?)` : ""
      }`
    case "InvalidValue": {
      // a flag given more often than it may be (the parser's value is "2 occurrences")
      const times = /^(\d+) occurrences$/.exec(error.value)?.[1]
      if (times !== undefined && error.expected.startsWith("at most ")) {
        const once = error.expected === "at most 1 value"
        return `--${error.option} given ${times} times: ${
          once ? "give it once" : `give it ${error.expected.slice(8)} at most`
        }`
      }
      const setting = Settings.byFlag(error.option)
      const expected = setting === undefined ? error.expected : setting.problem
      return error.value === ""
        ? `--${error.option}: a value is needed (${expected})`
        : `--${error.option} ${JSON.stringify(error.value)}: ${expected}`
    }
    default:
      return error.message.split("\n")[0]!
  }
}

/**
 * The CLI's output: `--help` of `run` lists every setting with its default
 * and environment variable (other commands get Effect's help), and an
 * invalid invocation is one line on stderr (the error and where help is),
 * never the help text.
 *
 * @since 0.1.0
 * @category output
 */
export const presenter: CliOutput.Presenter = {
  present: (event) =>
    event._tag === "InvalidInvocation"
      ? Console.error(
        `market-data-pipeline: ${
          event.errors.length === 0 ? "invalid command line" : describeCliError(event.errors[0]!)
        }; see '${event.commandPath.join(" ")} --help'`
      )
      : event._tag === "Help" && event.commandPath.at(-1) === "run"
      ? Console.log(runHelp(event.helpDoc))
      : CliOutput.defaultPresenter.present(event)
}

/**
 * Whether an error of the run is a CLI parse error (already printed by
 * {@link presenter}).
 *
 * @since 0.1.0
 * @category errors
 */
export const isCliError: (u: unknown) => u is CliError.CliError = CliError.isCliError
