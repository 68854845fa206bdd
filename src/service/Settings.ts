/**
 * Every setting of `market-data-pipeline run`, grouped by what it configures,
 * and the one way they are read.
 *
 * Each setting is a `Setting` (its flag, environment variable, schema,
 * default and help line, defined once). The library's groups live beside what
 * they configure (`ProviderSettings`, `FeedbackSettings`); the service's own
 * groups are here: HTTP, the simulation, the shared buckets on Redis and
 * Pulse. From these definitions come the command's flags ({@link flags}),
 * its `--help` ({@link helpSections}) and the reading ({@link load}): a flag
 * wins over its environment variable, which wins over the default, and both
 * go through the setting's own `Config`, so they are checked alike and
 * refused alike, before anything starts, with one line
 * (`MDP_SINK_RATE=-3: expected a positive number (items/s)`).
 *
 * @since 0.1.0
 */
import * as Flag from "effect/cli/Flag"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaGetter from "effect/SchemaGetter"
import { dirname } from "node:path"
import { FeedbackSettings } from "../feedback/FeedbackSettings.ts"
import { ProviderSettings } from "../rate/ProviderSettings.ts"
import type { RedisUnavailablePolicy } from "../rate/RateCoordinator.ts"
import * as Setting from "../runtime/Setting.ts"
import * as HttpApi from "./HttpApi.ts"
import * as Logging from "./Logging.ts"
import * as SimulatedStore from "./SimulatedStore.ts"
import * as Tracing from "./Tracing.ts"

/**
 * What stops the service before it runs and is not a single bad value (a
 * non-loopback host without a token, the port in use, Redis out of reach, the
 * `redis` package missing): the executable prints it as one line and exits
 * with code 2.
 *
 * @since 0.1.0
 * @category errors
 */
export class StartupError extends Data.TaggedError("StartupError")<{ readonly message: string }> {}

const { NonBlank: nonBlank, Positive: positive, PositiveInt: positiveInt, Seconds: seconds } = Setting
const value = (name: string, metavar: string) => ({ _tag: "Value", name, metavar }) as const
const switchTo = (name: string, to: boolean) => ({ _tag: "Switch", name, value: to }) as const

// comma-separated in the environment; a repeated flag gives one list per occurrence
const hostList = Schema.String.pipe(
  Schema.decodeTo(Schema.Array(nonBlank), {
    decode: SchemaGetter.transform((list: string) => list.split(",").map((h) => h.trim()).filter((h) => h !== "")),
    encode: SchemaGetter.transform((hosts: ReadonlyArray<string>) => hosts.join(","))
  })
)

/**
 * The HTTP edge.
 *
 * @since 0.1.0
 * @category settings
 */
export const http = {
  port: Setting.make({
    env: "MDP_HTTP_PORT",
    flag: value("port", "N"),
    group: "http",
    description: "HTTP port (0 = any free port; the start line says which)",
    schema: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 })),
    expected: "an integer from 0 to 65535",
    default: 9108
  }),
  host: Setting.make({
    env: "MDP_HTTP_HOST",
    flag: value("host", "ADDRESS"),
    group: "http",
    description: "bind address; a non-loopback one needs MDP_HTTP_TOKEN or --allow-unauthenticated",
    schema: nonBlank,
    expected: "an address without spaces",
    default: "127.0.0.1"
  }),
  allowedHosts: Setting.make({
    env: "MDP_HTTP_ALLOWED_HOSTS",
    flag: { _tag: "Value", name: "allowed-host", metavar: "NAME", repeatable: true },
    group: "http",
    description: "another Host name the service is reached by (a DNS name, a proxy); repeatable, " +
      "comma-separated in the environment",
    schema: hostList,
    expected: "host names without spaces, comma-separated",
    default: [] as ReadonlyArray<string>,
    defaultText: "none"
  }),
  allowUnauthenticated: Setting.make({
    env: "MDP_HTTP_ALLOW_UNAUTHENTICATED",
    flag: switchTo("allow-unauthenticated", true),
    group: "http",
    description: "allow a non-loopback --host without MDP_HTTP_TOKEN (not for production)",
    schema: Setting.BooleanText,
    expected: Setting.booleanExpected,
    default: false
  }),
  shutdownTimeout: Setting.make({
    env: "MDP_SHUTDOWN_TIMEOUT",
    flag: value("shutdown-timeout", "SECONDS"),
    group: "http",
    description: "seconds requests in flight may take to finish after a stop signal",
    schema: seconds,
    expected: "seconds, a number from 0",
    default: 2
  })
}

// the check the HTTP API makes of a token (HttpApi.tokenIssue), as the setting's schema
const usableToken = Schema.RedactedFromValue(
  Schema.String.check(Schema.makeFilter((text: string) => HttpApi.tokenIssue(text) ?? true))
)

/**
 * `MDP_HTTP_TOKEN`, read by {@link load} on its own, from the process
 * environment: an empty or blank value is refused (not taken as "no
 * token"), as is one with white space, by the check the HTTP API makes
 * (`HttpApi.tokenIssue`); a refusal never shows the value.
 *
 * @since 0.1.0
 * @category settings
 */
export const token: Setting.Setting<Option.Option<Redacted.Redacted<string>>> = Setting.optional({
  env: "MDP_HTTP_TOKEN",
  group: "http",
  description: "when set, POST /feedback and DELETE /feedback/{id} need Authorization: Bearer <token>; " +
    "empty or blank is refused",
  schema: usableToken,
  expected: "a token without white space",
  problem: (value) =>
    `${HttpApi.tokenIssue(value) ?? "is not usable"}: set a usable token, or unset the variable to run without one`,
  secret: true,
  defaultText: "none: any local client may post (logged as a warning)"
})

/**
 * The demo: the simulated store, how long to run, what to write at exit.
 *
 * @since 0.1.0
 * @category settings
 */
export const simulation = {
  duration: Setting.make({
    env: "MDP_DURATION",
    flag: value("duration", "SECONDS"),
    group: "simulation",
    description: "seconds to run (0 = until Ctrl-C)",
    schema: seconds,
    expected: "seconds, a number from 0 (0 = until stopped)",
    default: 0
  }),
  sinkRate: Setting.make({
    env: "MDP_SINK_RATE",
    flag: value("sink-rate", "R"),
    group: "simulation",
    description: "the simulated store's write rate, items/s (it stalls 3 s every 15 s)",
    schema: positive,
    expected: "a positive number (items/s)",
    default: 120
  }),
  queueCapacity: Setting.make({
    env: "MDP_QUEUE_CAPACITY",
    flag: value("queue-capacity", "N"),
    group: "simulation",
    description: "the simulated store's write queue (watermarks at 80 % and 50 %)",
    schema: Schema.Int.check(Schema.isGreaterThanOrEqualTo(2)),
    expected: "an integer of at least 2",
    default: 1000
  }),
  overflow: Setting.make({
    env: "MDP_QUEUE_OVERFLOW",
    flag: value("overflow", "STRATEGY"),
    group: "simulation",
    description: "what a put on the full queue does: block (wait), drop_oldest (evict) or error (refuse)",
    schema: Schema.Literals(SimulatedStore.overflowStrategies),
    expected: "block, drop_oldest or error",
    default: "drop_oldest" as SimulatedStore.OverflowStrategy
  }),
  noSimulatedStore: Setting.make({
    env: "MDP_NO_SIMULATED_STORE",
    flag: switchTo("no-simulated-store", true),
    group: "simulation",
    description: "production mode: no simulated store, feedback only from outside (HTTP, Pulse)",
    schema: Setting.BooleanText,
    expected: Setting.booleanExpected,
    default: false
  }),
  storeTransport: Setting.make({
    env: "MDP_SIMULATED_STORE_TRANSPORT",
    flag: value("simulated-store-transport", "inproc|pulse"),
    group: "simulation",
    description: "how the simulated store's feedback reaches the loop: in process, or over the Pulse stream " +
      "on Redis (pulse implies --pulse)",
    schema: Schema.Literals(["inproc", "pulse"]),
    expected: "inproc or pulse",
    default: "inproc" as "inproc" | "pulse"
  }),
  chart: Setting.optional({
    env: "MDP_CHART",
    flag: value("chart", "FILE.svg"),
    group: "simulation",
    description: "at exit, an SVG chart of queue depth, provider rate and level over time",
    schema: Schema.String.check(Schema.isPattern(/\.svg$/i)),
    expected: "a path ending in .svg",
    problem: "only SVG charts are written; give a path ending in .svg",
    defaultText: "none"
  }),
  timeline: Setting.optional({
    env: "MDP_TIMELINE",
    flag: value("timeline", "FILE.csv"),
    group: "simulation",
    description: "at exit, the samples (every 100 ms) as CSV",
    schema: Schema.NonEmptyString,
    expected: "a file path",
    defaultText: "none"
  })
}

const unavailablePattern = /^(wait|fail|allow|local:(0?\.\d*[1-9]\d*|1(\.0*)?))$/

/**
 * The provider's bucket shared through Redis.
 *
 * @since 0.1.0
 * @category settings
 */
export const sharedBuckets = {
  sharedBuckets: Setting.make({
    env: "MDP_SHARED_BUCKETS",
    flag: switchTo("shared-buckets", true),
    group: "shared buckets",
    description: "share the provider's bucket with every process on the same Redis and prefix",
    schema: Setting.BooleanText,
    expected: Setting.booleanExpected,
    default: false
  }),
  redisUrl: Setting.make({
    env: "REDIS_URL",
    flag: value("redis-url", "URL"),
    group: "shared buckets",
    description: "the Redis of --shared-buckets and --pulse (the Python services' variable)",
    schema: Schema.String.check(Schema.isPattern(/^rediss?:\/\/\S*$/)),
    expected: "a redis:// or rediss:// URL",
    default: "redis://127.0.0.1:6379"
  }),
  redisPrefix: Setting.make({
    env: "MDP_REDIS_PREFIX",
    flag: value("redis-prefix", "P"),
    group: "shared buckets",
    description: "key prefix: processes with the same Redis and prefix share",
    schema: nonBlank,
    expected: "a prefix without spaces",
    default: "mdp"
  }),
  redisOnUnavailable: Setting.make({
    env: "MDP_REDIS_ON_UNAVAILABLE",
    flag: value("redis-on-unavailable", "POLICY"),
    group: "shared buckets",
    description: "while Redis is unreachable: wait, fail, allow, or local:SHARE (a bucket of this process at " +
      "SHARE of the rate)",
    schema: Schema.String.check(Schema.isPattern(unavailablePattern)),
    expected: "wait, fail, allow or local:SHARE with SHARE in (0, 1]",
    default: "wait"
  })
}

const pulseMs = (env: string, description: string, fallback: string) =>
  Setting.optional({
    env,
    group: "pulse",
    description,
    schema: positiveInt,
    expected: "a positive integer (ms)",
    defaultText: fallback
  })

/**
 * Feedback over Redis Streams (the Python "Pulse" bus), with the Python
 * variables.
 *
 * @since 0.1.0
 * @category settings
 */
export const pulse = {
  pulse: Setting.make({
    env: "PULSE_ENABLED",
    flag: switchTo("pulse", true),
    group: "pulse",
    description: "also consume feedback from the Pulse stream on Redis (in the environment: PULSE_ENABLED=true " +
      "with EVENT_BUS_BACKEND=redis)",
    schema: Setting.BooleanText,
    expected: Setting.booleanExpected,
    default: false
  }),
  eventBusBackend: Setting.make({
    env: "EVENT_BUS_BACKEND",
    group: "pulse",
    description: "the Python bus backend: redis, with PULSE_ENABLED=true, consumes Pulse",
    schema: Schema.Literals(["inmem", "redis"]),
    expected: "inmem or redis",
    default: "inmem" as "inmem" | "redis"
  }),
  namespace: Setting.make({
    env: "MD_NAMESPACE",
    flag: value("namespace", "NS"),
    group: "pulse",
    description: "Pulse namespace: the stream is <ns>:<ns>.telemetry.feedback",
    schema: nonBlank,
    expected: "a namespace without spaces",
    default: "mdp"
  }),
  pulseGroup: Setting.optional({
    env: "PULSE_GROUP",
    group: "pulse",
    description: "consumer group (use one of your own, not the Python pipeline's)",
    schema: nonBlank,
    expected: "a group name without spaces",
    defaultText: "pipeline"
  }),
  pulseConsumer: Setting.optional({
    env: "PULSE_CONSUMER",
    group: "pulse",
    description: "this instance's name in the group; keep it stable to reclaim its own entries after a restart",
    schema: nonBlank,
    expected: "a consumer name without spaces",
    defaultText: "<hostname>-<pid>"
  }),
  pulseGroupStart: Setting.optional({
    env: "PULSE_GROUP_START",
    group: "pulse",
    description: "where a new group starts ($ loses what was published before)",
    schema: Schema.String.check(Schema.isPattern(/^(\$|0|\d+(-\d+)?)$/)),
    expected: "0, $ or a stream id",
    defaultText: "0"
  }),
  pulseCount: Setting.optional({
    env: "PULSE_COUNT",
    group: "pulse",
    description: "entries per read at most",
    schema: positiveInt,
    expected: "a positive integer",
    defaultText: "512"
  }),
  pulseBlockMs: pulseMs("PULSE_BLOCK_MS", "how long a blocking read waits", "2000"),
  pulseClaimIdleMs: pulseMs("PULSE_CLAIM_IDLE_MS", "claim entries idle this long in other consumers", "30000"),
  pulseClaimEveryMs: pulseMs("PULSE_CLAIM_EVERY_MS", "how often to look for entries to claim", "5000"),
  pulseMaxDeliveries: Setting.optional({
    env: "PULSE_MAX_DELIVERIES",
    group: "pulse",
    description: "deliveries before an entry goes to the dead-letter stream",
    schema: positiveInt,
    expected: "a positive integer",
    defaultText: "3"
  }),
  schemaTrack: Setting.make({
    env: "SCHEMA_TRACK",
    group: "pulse",
    description: "the envelope track the simulated store publishes with",
    schema: Schema.Literals(["v1", "v2"]),
    expected: "v1 or v2",
    default: "v1" as "v1" | "v2"
  })
}

/**
 * Every setting `run` reads, the library's groups included.
 *
 * @since 0.1.0
 * @category settings
 */
export const all = {
  ...ProviderSettings.settings,
  ...FeedbackSettings.settings,
  ...http,
  ...simulation,
  ...sharedBuckets,
  ...pulse,
  ...Tracing.settings,
  logLevel: Logging.level
}

const titles: ReadonlyArray<readonly [group: string, title: string]> = [
  ["provider", "PROVIDER (rate control)"],
  ["feedback", "FEEDBACK"],
  ["http", "HTTP"],
  ["simulation", "SIMULATION (the demo)"],
  ["shared buckets", "SHARED BUCKETS (Redis)"],
  ["pulse", "PULSE (feedback over Redis Streams)"],
  ["tracing", "TRACING (OpenTelemetry over OTLP/HTTP)"],
  ["logging", "LOGGING"]
]

const documented: ReadonlyArray<Setting.Setting<unknown>> = [...Object.values(all), token]

/**
 * The settings by section, in the order `--help` and docs/service.md show them.
 *
 * @since 0.1.0
 * @category settings
 */
export const helpSections: ReadonlyArray<{
  readonly title: string
  readonly settings: ReadonlyArray<Setting.Setting<unknown>>
}> = titles.map(([group, title]) => ({ title, settings: documented.filter((s) => s.group === group) }))

/**
 * What a flag gave: a value (or nothing), a switch (or nothing), the values
 * of a repeatable flag.
 *
 * @since 0.1.0
 * @category models
 */
export type Given = Option.Option<string> | Option.Option<boolean> | ReadonlyArray<string>

const flagOf = (setting: Setting.Setting<unknown>, spec: Setting.SettingFlag): Flag.Flag<Given> => {
  const help = (flag: Flag.Flag<any>) => Flag.withDescription(flag, setting.description)
  if (spec._tag === "Switch") return Flag.Boolean(spec.name).pipe(Flag.withoutNegation, help, Flag.optional)
  const text = Flag.String(spec.name).pipe(Flag.withMetavar(spec.metavar), help)
  return spec.repeatable === true ? Flag.between(text, 0, 64) : Flag.optional(text)
}

/**
 * The flags of `run`, one per setting that has a flag, by flag name. Each
 * takes its value as text; {@link load} checks it.
 *
 * @since 0.1.0
 * @category flags
 */
export const flags: Readonly<Record<string, Flag.Flag<Given>>> = Object.fromEntries(
  Object.values(all).flatMap((setting: Setting.Setting<unknown>) =>
    setting.flag === undefined ? [] : [[setting.flag.name, flagOf(setting, setting.flag)] as const]
  )
)

/**
 * The setting a flag name belongs to.
 *
 * @since 0.1.0
 * @category flags
 */
export const byFlag = (name: string): Setting.Setting<unknown> | undefined =>
  Object.values(all).find((setting: Setting.Setting<unknown>) => setting.flag?.name === name)

/**
 * Reads one setting: from its flag when given, else from the current
 * `ConfigProvider`, else its default; either way through its `Config`.
 * Returns the value and how it was given (`--port`, `MDP_HTTP_PORT`, or
 * undefined for the default).
 */
const resolveOne = <A>(
  setting: Setting.Setting<A>,
  given: Given | undefined
): Effect.Effect<readonly [A, string | undefined], Setting.InvalidSetting | Config.ConfigError> => {
  const spec = setting.flag
  if (spec !== undefined && given !== undefined) {
    const label = `--${spec.name}`
    if (Array.isArray(given)) {
      const values = given as ReadonlyArray<string>
      if (values.length > 0) {
        return Effect.map(
          Effect.forEach(values, (raw) => Setting.decode(setting, raw, label)),
          (parts) => [parts.flat() as A, label] as const
        )
      }
    } else if (Option.isOption(given) && Option.isSome(given as Option.Option<string | boolean>)) {
      const raw = (given as Option.Some<string | boolean>).value
      if (typeof raw === "boolean") {
        // a switch sets its boolean setting (--no-feedback: false); --switch=false the opposite
        const to = spec._tag === "Switch" ? spec.value : true
        return Effect.succeed([(raw ? to : !to) as A, label] as const)
      }
      return Effect.map(Setting.decode(setting, raw, label), (a) => [a, label] as const)
    }
  }
  return Effect.flatMap(
    Effect.map(Config.option(Config.String(setting.env)), Option.isSome),
    (set) => Effect.map(Setting.read(setting), (a) => [a, set ? setting.env : undefined] as const)
  )
}

/**
 * The values of `run`'s settings.
 *
 * @since 0.1.0
 * @category models
 */
export type RunSettings = Setting.Values<typeof all> & {
  /** `MDP_HTTP_TOKEN`, when set (and usable). */
  readonly token: Redacted.Redacted<string> | undefined
  /** Whether to consume Pulse: `--pulse`, `PULSE_ENABLED=true` with `EVENT_BUS_BACKEND=redis`, or a store over Pulse. */
  readonly consumePulse: boolean
  /** How each setting was given (`--chart`, `MDP_CHART`), for messages; absent when defaulted. */
  readonly givenAs: Readonly<Partial<Record<keyof typeof all, string>>>
}

/**
 * Reads and checks every setting of `run` before anything starts: the
 * flags, then the current `ConfigProvider`, then the defaults, each through
 * its `Config`; a retired variable that is set; the token; a non-loopback
 * host without one; the folders of `--chart` and `--timeline`. The first
 * refusal fails it, as one line.
 *
 * @since 0.1.0
 * @category reading
 */
export const load = (
  given: Readonly<Record<string, Given>>
): Effect.Effect<RunSettings, Setting.InvalidSetting | StartupError | Config.ConfigError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    yield* Setting.checkRetired(ProviderSettings.retired)
    const values: Record<string, unknown> = {}
    const givenAs: Record<string, string> = {}
    for (const [key, setting] of Object.entries(all) as Array<[string, Setting.Setting<unknown>]>) {
      const [value, label] = yield* resolveOne(
        setting,
        setting.flag === undefined ? undefined : given[setting.flag.name]
      )
      values[key] = value
      if (label !== undefined) givenAs[key] = label
    }
    const settings = values as Setting.Values<typeof all>
    const token = yield* readToken
    if (token === undefined && !HttpApi.isLoopback(settings.host) && !settings.allowUnauthenticated) {
      return yield* new StartupError({
        message: `--host ${settings.host} is not a loopback address and MDP_HTTP_TOKEN is not set: ` +
          "set a token, or pass --allow-unauthenticated to accept feedback from the network without one"
      })
    }
    yield* checkOutput(givenAs["chart"] ?? "--chart", settings.chart)
    yield* checkOutput(givenAs["timeline"] ?? "--timeline", settings.timeline)
    // --pulse alone consumes; the Python variables need both (PULSE_ENABLED=true, EVENT_BUS_BACKEND=redis)
    const consumePulse = settings.storeTransport === "pulse" ||
      (settings.pulse && (givenAs["pulse"] === "--pulse" || settings.eventBusBackend === "redis"))
    return { ...settings, token, consumePulse, givenAs }
  })

// read keeping an empty value: MDP_HTTP_TOKEN="" is a mistake to report, not "no token"
// (from the process environment, where an empty value can be told from an unset one)
const readToken = Effect.map(
  Setting.read(token).pipe(
    Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ preserveEmptyStrings: true }))
  ),
  Option.getOrUndefined
)

/** An output file's folder must exist and be writable, and the file, if there, a writable file. */
const checkOutput = (label: string, path: Option.Option<string>) =>
  Effect.gen(function*() {
    if (Option.isNone(path)) return
    const fs = yield* FileSystem.FileSystem
    const file = path.value
    const dir = dirname(file)
    const fail = (problem: string) => Effect.fail(new Setting.InvalidSetting({ setting: label, value: file, problem }))
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

/**
 * `--redis-on-unavailable` as the coordinator takes it.
 *
 * @since 0.1.0
 * @category reading
 */
export const unavailablePolicy = (value: string): RedisUnavailablePolicy =>
  value.startsWith("local:") ? { local: Number(value.slice("local:".length)) } : value as "wait" | "fail" | "allow"
