/**
 * Where the command line's log lines go and from which level: Effect's default
 * logger, written to stderr (stdout stays for the status line, the summary and
 * `--help`), filtered at a minimum level.
 *
 * The library itself only logs through Effect's logger, so an application
 * decides where its lines go; this module is the command line's decision.
 * The level is the setting {@link level}: `--log-level` or `MDP_LOG_LEVEL`
 * (`trace`, `debug`, `info` — the default —, `warning`, `error` or `none`, in
 * any case); anything else is refused with `InvalidSetting`, before the
 * service starts, like every other setting. `run` reads it with its other
 * settings and runs under {@link layer} at that level.
 *
 * Gotcha: a logger layer only reaches the fibers it is provided to. Provide it
 * outside everything that logs, including the code reporting a failed run.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as Logging from "./Logging.ts"
 *
 * // "[12:00:00.000] WARN (#1): disk almost full" on stderr; the info line is dropped
 * const program = Effect.gen(function*() {
 *   yield* Effect.logInfo("started")
 *   yield* Effect.logWarning("disk almost full")
 * }).pipe(Effect.provide(Logging.layer({ minimumLevel: "Warn" })))
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import type * as LogLevel from "effect/LogLevel"
import * as References from "effect/References"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaGetter from "effect/SchemaGetter"
import * as Setting from "../runtime/Setting.ts"

/**
 * The names `MDP_LOG_LEVEL` accepts, from the most verbose, with the Effect
 * log level each one sets as the minimum.
 *
 * @since 0.1.0
 * @category models
 */
export const levels: ReadonlyArray<readonly [name: string, level: LogLevel.LogLevel]> = [
  ["trace", "Trace"],
  ["debug", "Debug"],
  ["info", "Info"],
  ["warning", "Warn"],
  ["error", "Error"],
  ["none", "None"]
]

const names = levels.map(([name]) => name)

// a level name in any case, with blanks around it, read as the Effect level it stands for
const LevelText: Schema.ConstraintCodec<LogLevel.LogLevel, unknown> = Schema.String.check(
  Schema.isPattern(new RegExp(`^\\s*(?:${names.join("|")})\\s*$`, "i"))
).pipe(
  Schema.decodeTo(Schema.Literals(levels.map(([, level]) => level)), {
    decode: SchemaGetter.transform((text: string) => levels.find(([name]) => name === text.trim().toLowerCase())![1]),
    encode: SchemaGetter.transform((level: LogLevel.LogLevel) => levels.find(([, l]) => l === level)![0])
  })
)

/**
 * `--log-level` / `MDP_LOG_LEVEL`: the minimum level of the command line's
 * log lines (the CLI's own built-in `--log-level` is not installed: this is
 * the one).
 *
 * @since 0.1.0
 * @category settings
 */
export const level: Setting.Setting<LogLevel.LogLevel> = Setting.make({
  env: "MDP_LOG_LEVEL",
  flag: { _tag: "Value", name: "log-level", metavar: "LEVEL" },
  group: "logging",
  description: "the least severe log lines printed (on stderr)",
  schema: LevelText,
  expected: `one of ${names.join(", ")}`,
  default: "Info",
  defaultText: "info"
})

/**
 * The log level a name stands for (case and surrounding blanks ignored), or
 * the `InvalidSetting` naming `MDP_LOG_LEVEL`, for code that reads the
 * variable outside Effect (the test and benchmark runners).
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseLevel = (value: string): Result.Result<LogLevel.LogLevel, Setting.InvalidSetting> =>
  Effect.runSync(Effect.result(Setting.decode(level, value, level.env)))

/**
 * Effect's default logger on stderr, dropping entries below `minimumLevel`
 * (default `Info`, Effect's own default).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: { readonly minimumLevel?: LogLevel.LogLevel | undefined }): Layer.Layer<never> =>
  Layer.mergeAll(
    Layer.succeed(Logger.LogToStderr, true),
    Layer.succeed(References.MinimumLogLevel, options?.minimumLevel ?? "Info")
  )
