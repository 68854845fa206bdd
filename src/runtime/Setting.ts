/**
 * One setting, defined once: its environment variable, its command-line
 * flag, the schema a value must pass, its default and its documentation.
 *
 * Define one with {@link make} (with a default) or {@link optional}; read it
 * from the current `ConfigProvider` with {@link read} or {@link readAll}, and
 * decode a flag's text with {@link decode}. Both go through the setting's own
 * Effect `Config`, so `--port 99999` and `MDP_HTTP_PORT=99999` pass the same
 * check and are refused with the same one-line {@link InvalidSetting}
 * (`MDP_HTTP_PORT=99999: expected an integer from 0 to 65535`). A value that
 * has neither a variable nor a flag needs no `Setting`: use a `Config`.
 *
 * Gotchas:
 * - An empty environment variable counts as unset (the `ConfigProvider.fromEnv`
 *   default); an empty flag value does not: it is checked, and refused where a
 *   value is needed. Values are not trimmed.
 * - `readAll` fails with the first setting refused, not with all of them.
 * - A refusal shows the value (cut after 80 characters, quoted unless plain),
 *   except a secret's, which never does.
 * - A retired variable is only refused if {@link checkRetired} is run.
 *
 * @since 0.2.0
 * @module
 */
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as SchemaGetter from "effect/SchemaGetter"

/**
 * How a setting is given on the command line: a flag with a value
 * (`--port N`; `repeatable` ones may be given several times and stand for a
 * comma-separated list in the environment), or a switch without one
 * (`--no-feedback`), which sets the (boolean) setting to `value`.
 *
 * @since 0.2.0
 * @category models
 */
export type SettingFlag =
  | {
    /** A flag followed by its value. */
    readonly _tag: "Value"
    /** The flag without its dashes: `port` for `--port`. */
    readonly name: string
    /** The value's placeholder in `--help`: `N` in `--port N`. */
    readonly metavar: string
    /** May be given several times; the values join into the variable's comma-separated list. */
    readonly repeatable?: boolean
  }
  | {
    /** A flag without a value. */
    readonly _tag: "Switch"
    /** The flag without its dashes: `no-feedback` for `--no-feedback`. */
    readonly name: string
    /** The boolean the setting takes when the switch is given. */
    readonly value: boolean
  }

/**
 * A setting: where it is read from, how it is checked, its default and
 * what it means.
 *
 * @since 0.2.0
 * @category models
 */
export interface Setting<A> {
  /** The environment variable (the key in any `ConfigProvider`). */
  readonly env: string
  /** The command-line flag, if the service has one for it. */
  readonly flag: SettingFlag | undefined
  /** What it configures: the section of `--help` and of the settings table in docs/service.md. */
  readonly group: string
  /** One line for `--help`. */
  readonly description: string
  /** The default as people read it; undefined when unset means "none". */
  readonly defaultText: string | undefined
  /** What a refused value is told: `expected an integer from 0 to 65535`. */
  readonly problem: string
  /** What a given refused value is told: {@link problem}, unless the setting words it by value. */
  readonly problemOf: (value: string) => string
  /** A secret (a token): a refusal never shows the value. */
  readonly secret: boolean
  /** The schema-backed `Config`, default included. */
  readonly config: Config.Config<A>
}

/**
 * A value that cannot be used: names the setting as it was given (flag or
 * environment variable), the value and what is expected, on one line:
 * `MDP_SINK_RATE=-3: expected a positive number (items/s)`.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidSetting extends Data.TaggedError("InvalidSetting")<{
  /** `--port` for a flag, `MDP_HTTP_PORT` for an environment variable. */
  readonly setting: string
  /** The value as given; undefined for a secret, which is never shown. */
  readonly value: string | undefined
  /** What is wrong and what to do: `expected a positive number (items/s)`. */
  readonly problem: string
}> {
  /**
   * One line: `--port 99999: expected ...` for a flag, `MDP_HTTP_PORT=99999: expected ...`
   * for a variable, `MDP_HTTP_TOKEN must not be empty or blank` for a secret.
   *
   * @since 0.1.0
   */
  override get message(): string {
    if (this.value === undefined) return `${this.setting} ${this.problem}`
    const value = show(this.value)
    return `${this.setting.startsWith("--") ? `${this.setting} ${value}` : `${this.setting}=${value}`}: ${this.problem}`
  }
}

/**
 * What `make` and `optional` take to define a setting: its variable, flag,
 * group and help line, the schema a value must pass and the words of a
 * refusal.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options<A> {
  /** The environment variable (`MDP_HTTP_PORT`). */
  readonly env: string
  /** The CLI flag, if the setting has one (some are environment-only, such as a secret). */
  readonly flag?: SettingFlag | undefined
  /** The section of `--help` and of the settings table it is listed in. */
  readonly group: string
  /** Its help line, lower case, without a final period. */
  readonly description: string
  /** What a value is checked against (read from text as `Config.schema` does). */
  readonly schema: Schema.ConstraintCodec<A, unknown>
  /** `an integer from 0 to 65535`: the refusal reads `expected <expected>`. */
  readonly expected: string
  /**
   * A refusal of its own instead of `expected <expected>`; a function words
   * it for the refused value (its `problem` stays `expected <expected>`).
   */
  readonly problem?: string | ((value: string) => string) | undefined
  /**
   * A secret: a refusal names the setting and the problem, never the value
   * (`MDP_HTTP_TOKEN must not be empty or blank`).
   */
  readonly secret?: boolean | undefined
}

/**
 * A setting with a default, used when it is not given.
 *
 * @example
 * ```ts
 * import { ConfigProvider, Effect, Schema } from "effect"
 * import { Setting } from "market-data-pipeline"
 *
 * const workers = Setting.make({
 *   env: "APP_WORKERS",
 *   flag: { _tag: "Value", name: "workers", metavar: "N" },
 *   group: "app",
 *   description: "worker fibers",
 *   schema: Schema.Int.check(Schema.isGreaterThan(0)),
 *   expected: "a positive integer",
 *   default: 4
 * })
 *
 * const program = Effect.gen(function*() {
 *   console.log(yield* Setting.read(workers))
 *   const error = yield* Effect.flip(Setting.decode(workers, "0", "--workers"))
 *   console.log(error.message)
 * })
 * const env = ConfigProvider.fromEnv({ env: { APP_WORKERS: "8" } })
 * Effect.runPromise(program.pipe(Effect.provideService(ConfigProvider.ConfigProvider, env)))
 * // → 8
 * // → --workers 0: expected a positive integer
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = <A>(
  options: Options<A> & {
    readonly default: A
    /** The default as shown in `--help`; `String(default)` if omitted. */
    readonly defaultText?: string | undefined
  }
): Setting<A> => ({
  ...common(options),
  defaultText: options.defaultText ?? String(options.default),
  config: Config.withDefault(Config.schema(options.schema, options.env), options.default)
})

/**
 * A setting without a default: `Option.none()` when it is not given.
 *
 * @since 0.2.0
 * @category constructors
 */
export const optional = <A>(
  options: Options<A> & {
    /** What not giving it means, for `--help` (e.g. "rate/5, at least 1"). */
    readonly defaultText?: string | undefined
  }
): Setting<Option.Option<A>> => ({
  ...common(options),
  defaultText: options.defaultText,
  config: Config.option(Config.schema(options.schema, options.env))
})

const common = <A>(options: Options<A>) => {
  const problem = typeof options.problem === "string" ? options.problem : `expected ${options.expected}`
  const of = options.problem
  return {
    env: options.env,
    flag: options.flag,
    group: options.group,
    description: options.description,
    problem,
    problemOf: typeof of === "function" ? of : () => problem,
    secret: options.secret === true
  }
}

const refusal = (setting: Setting<unknown>, given: string, raw: string): InvalidSetting =>
  new InvalidSetting({
    setting: given,
    value: setting.secret ? undefined : raw,
    problem: setting.problemOf(raw)
  })

/**
 * Reads a setting from the current `ConfigProvider` (the environment by
 * default). A value that does not pass the setting's schema fails with
 * {@link InvalidSetting} naming the variable; a provider that cannot be read
 * fails with its `ConfigError`.
 *
 * @since 0.2.0
 * @category reading
 */
export const read = <A>(setting: Setting<A>): Effect.Effect<A, InvalidSetting | Config.ConfigError> =>
  Effect.catchTag(
    setting.config,
    "ConfigError",
    (error): Effect.Effect<never, InvalidSetting | Config.ConfigError> =>
      error.cause._tag === "SchemaError"
        ? Effect.flatMap(
          Config.option(Config.String(setting.env)),
          (raw) => Effect.fail(refusal(setting, setting.env, Option.getOrElse(raw, () => "")))
        )
        : Effect.fail(error)
  )

/**
 * Decodes a value given as text elsewhere (a command-line flag) with the
 * setting's own `Config`, so it passes exactly the checks the environment
 * variable does; a refusal names `given` (e.g. `--port`).
 *
 * @since 0.2.0
 * @category reading
 */
export const decode = <A>(setting: Setting<A>, raw: string, given: string): Effect.Effect<A, InvalidSetting> =>
  setting.config.parse(ConfigProvider.fromEnv({ env: { [setting.env]: raw }, preserveEmptyStrings: true })).pipe(
    Effect.mapError(() => refusal(setting, given, raw))
  )

/**
 * The values of a record of settings.
 *
 * @since 0.2.0
 * @category models
 */
export type Values<S extends Record<string, Setting<any>>> = {
  readonly [K in keyof S]: S[K] extends Setting<infer A> ? A : never
}

/**
 * Reads every setting of a record from the current `ConfigProvider`; fails
 * with the first that is refused.
 *
 * @since 0.2.0
 * @category reading
 */
export const readAll = <S extends Record<string, Setting<any>>>(
  settings: S
): Effect.Effect<Values<S>, InvalidSetting | Config.ConfigError> =>
  Effect.map(
    Effect.forEach(Object.entries(settings), ([key, setting]) => Effect.map(read(setting), (value) => [key, value])),
    (entries) => Object.fromEntries(entries) as Values<S>
  )

/**
 * An environment variable that is no longer read, and the setting that
 * replaced it.
 *
 * @since 0.2.0
 * @category models
 */
export interface Retired {
  /** The variable no longer read, e.g. `MDP_RATE_REFILL`. */
  readonly env: string
  /** The setting to use instead, named (with its flag) in the refusal. */
  readonly replacement: Setting<unknown>
}

/**
 * Refuses a retired variable that is still set (silently ignoring it would
 * run with a value the user did not choose): `MDP_RATE_REFILL=10: no longer
 * read; set MDP_PROVIDER_RATE (--provider-rate) instead`.
 *
 * @since 0.2.0
 * @category reading
 */
export const checkRetired = (
  retired: ReadonlyArray<Retired>
): Effect.Effect<void, InvalidSetting | Config.ConfigError> =>
  Effect.forEach(
    retired,
    ({ env, replacement }) =>
      Effect.flatMap(Config.option(Config.String(env)), (raw) =>
        Option.isNone(raw) ? Effect.void : Effect.fail(
          new InvalidSetting({
            setting: env,
            value: raw.value,
            problem: `no longer read; set ${replacement.env}${
              replacement.flag === undefined ? "" : ` (--${replacement.flag.name})`
            } instead`
          })
        )),
    { discard: true }
  )

/**
 * A value as an error line shows it: as is when it is plain, quoted when it
 * is empty or has spaces, quotes or control characters, cut when long.
 */
const show = (value: string): string => {
  const cut = value.length > 80 ? `${value.slice(0, 80)}…` : value
  return /^[\w.,:/@+%~-]+$/u.test(cut) ? cut : JSON.stringify(cut)
}

/**
 * Text without white space, not empty: a name, a prefix, an address.
 *
 * @since 0.2.0
 * @category schemas
 */
export const NonBlank: Schema.String = Schema.String.check(Schema.isPattern(/^\S+$/))

/**
 * A finite number above 0 (a rate).
 *
 * @since 0.2.0
 * @category schemas
 */
export const Positive: Schema.Finite = Schema.Finite.check(Schema.isGreaterThan(0))

/**
 * An integer above 0 (a count, a size).
 *
 * @since 0.2.0
 * @category schemas
 */
export const PositiveInt: Schema.Int = Schema.Int.check(Schema.isGreaterThan(0))

/**
 * Seconds: a finite number from 0 (a duration, a timeout; 0 often means "off").
 *
 * @since 0.2.0
 * @category schemas
 */
export const Seconds: Schema.Finite = Schema.Finite.check(
  Schema.isGreaterThanOrEqualTo(0)
)

/**
 * What a refused {@link BooleanText} value is told it should be:
 * `expected true/false, yes/no, on/off or 1/0`.
 *
 * @since 0.2.0
 * @category schemas
 */
export const booleanExpected: string = "true/false, yes/no, on/off or 1/0"

const truthy = new Set(["true", "yes", "on", "1", "y"])

/**
 * A boolean as text, in any case: `true/false`, `yes/no`, `on/off`, `1/0`,
 * `y/n` (what Effect's `Config.Boolean` reads, case aside).
 *
 * @since 0.2.0
 * @category schemas
 */
export const BooleanText: Schema.ConstraintCodec<boolean, unknown> = Schema.String.check(
  Schema.isPattern(/^(?:true|false|yes|no|on|off|1|0|y|n)$/i)
).pipe(
  Schema.decodeTo(Schema.Boolean, {
    decode: SchemaGetter.transform((text: string) => truthy.has(text.toLowerCase())),
    encode: SchemaGetter.transform((value: boolean) => String(value))
  })
)
