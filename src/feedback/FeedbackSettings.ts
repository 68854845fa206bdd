/**
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { FeedbackPolicy } from "./FeedbackPolicy.ts"

/**
 * A setting whose value cannot be used; names the variable and the value.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidSetting extends Data.TaggedError("InvalidSetting")<{
  readonly variable: string
  readonly value: string
  readonly expected: string
}> {
  override get message(): string {
    return `${this.variable}=${JSON.stringify(this.value)} is invalid: expected ${this.expected}`
  }
}

/**
 * The feedback loop's settings, with the reference's environment names.
 *
 * | field | variable | default |
 * |---|---|---|
 * | `enableFeedback` | `MDP_FB_ENABLE_FEEDBACK` | true |
 * | `providerName` | `MDP_FB_PROVIDER_NAME` | `ibkr` |
 * | `policy.ok` / `.soft` / `.hard` | `MDP_FB_SCALE_OK` / `_SOFT` / `_HARD` | 1.0 / 0.5 / 0.0 |
 * | `capacity` | `MDP_RATE_CAPACITY` | 60 |
 * | `refillRate` | `MDP_RATE_REFILL` | 60 |
 *
 * @since 0.1.0
 * @category services
 */
export class FeedbackSettings extends Context.Service<FeedbackSettings, {
  readonly enableFeedback: boolean
  readonly providerName: string
  readonly policy: FeedbackPolicy
  /** The provider's bucket: burst. */
  readonly capacity: number
  /** The provider's bucket: base refill rate, tokens/s. */
  readonly refillRate: number
  /**
   * Seconds after which a coordinator's level that was not refreshed by a
   * report expires (`FeedbackHandler` `levelTtl`); undefined = never (the
   * default). Risky with a store that reports only transitions: see the README.
   */
  readonly levelTtlSec?: number | undefined
  /**
   * Coordinators the handler holds and the bus caches at once (default
   * 256); see `FeedbackHandler` `maxCoordinators`.
   */
  readonly maxCoordinators?: number | undefined
}>()("market-data-pipeline/FeedbackSettings") {
  /**
   * Reads the settings from the current `ConfigProvider` (the environment
   * by default). A bad value fails with `InvalidSetting`.
   *
   * @since 0.1.0
   * @category constructors
   */
  static readonly load: Effect.Effect<FeedbackSettings["Service"], InvalidSetting | Config.ConfigError> = Effect.gen(
    function*() {
      const policy = {
        ok: yield* setting("MDP_FB_SCALE_OK", 1, unitInterval),
        soft: yield* setting("MDP_FB_SCALE_SOFT", 0.5, unitInterval),
        hard: yield* setting("MDP_FB_SCALE_HARD", 0, unitInterval)
      }
      const levelTtl = yield* setting("MDP_FB_LEVEL_TTL", 0, seconds)
      const maxCoordinators = yield* setting("MDP_FB_MAX_COORDINATORS", 256, positiveInteger)
      return FeedbackSettings.of({
        enableFeedback: yield* setting("MDP_FB_ENABLE_FEEDBACK", true, boolean),
        providerName: yield* setting("MDP_FB_PROVIDER_NAME", "ibkr", nonEmpty),
        policy,
        capacity: yield* setting("MDP_RATE_CAPACITY", 60, positiveInteger),
        refillRate: yield* setting("MDP_RATE_REFILL", 60, positive),
        ...(levelTtl > 0 ? { levelTtlSec: levelTtl } : {}),
        ...(maxCoordinators === 256 ? {} : { maxCoordinators })
      })
    }
  )

  /**
   * `FeedbackSettings` read from the current `ConfigProvider`.
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly layerConfig: Layer.Layer<FeedbackSettings, InvalidSetting | Config.ConfigError> = Layer.effect(
    FeedbackSettings,
    FeedbackSettings.load
  )
}

interface Parser<A> {
  readonly expected: string
  readonly parse: (raw: string) => A | undefined
}

const setting = <A>(
  variable: string,
  fallback: A,
  parser: Parser<A>
): Effect.Effect<A, InvalidSetting | Config.ConfigError> =>
  Effect.gen(function*() {
    const raw = yield* Config.option(Config.String(variable))
    if (Option.isNone(raw)) return fallback
    const value = parser.parse(raw.value.trim())
    if (value === undefined) {
      return yield* Effect.fail(new InvalidSetting({ variable, value: raw.value, expected: parser.expected }))
    }
    return value
  })

const number = (raw: string): number | undefined => {
  if (raw === "") return undefined
  const n = Number(raw)
  return Number.isFinite(n) ? n : undefined
}

const unitInterval: Parser<number> = {
  expected: "a number from 0 to 1",
  parse: (raw) => {
    const n = number(raw)
    return n !== undefined && n >= 0 && n <= 1 ? n : undefined
  }
}

const positive: Parser<number> = {
  expected: "a positive number",
  parse: (raw) => {
    const n = number(raw)
    return n !== undefined && n > 0 ? n : undefined
  }
}

const positiveInteger: Parser<number> = {
  expected: "a positive integer",
  parse: (raw) => {
    const n = number(raw)
    return n !== undefined && Number.isSafeInteger(n) && n > 0 ? n : undefined
  }
}

const seconds: Parser<number> = {
  expected: "seconds, a number from 0 (0 = off)",
  parse: (raw) => {
    const n = number(raw)
    return n !== undefined && n >= 0 ? n : undefined
  }
}

const nonEmpty: Parser<string> = {
  expected: "a non-empty name",
  parse: (raw) => raw === "" ? undefined : raw
}

const truthy = new Set(["true", "1", "yes", "on", "y"])
const falsy = new Set(["false", "0", "no", "off", "n"])

const boolean: Parser<boolean> = {
  expected: "true/false, yes/no, on/off or 1/0",
  parse: (raw) => {
    const lower = raw.toLowerCase()
    return truthy.has(lower) ? true : falsy.has(lower) ? false : undefined
  }
}
