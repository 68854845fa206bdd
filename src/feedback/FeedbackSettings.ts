/**
 * The feedback loop's settings, read with the Python pipeline's environment
 * names: whether the handler runs, its policy, the level TTL and how many
 * coordinators it holds.
 *
 * | field | flag | variable | default |
 * |---|---|---|---|
 * | `enableFeedback` | `--no-feedback` (false) | `MDP_FB_ENABLE_FEEDBACK` | true |
 * | `policy.ok` / `.soft` / `.hard` | `--scale-ok` / `--scale-soft` / `--scale-hard` | `MDP_FB_SCALE_OK` / `_SOFT` / `_HARD` | 1.0 / 0.5 / 0.0 |
 * | `levelTtlSec` | `--level-ttl` | `MDP_FB_LEVEL_TTL` | 0 (off) |
 * | `maxCoordinators` | `--max-coordinators` | `MDP_FB_MAX_COORDINATORS` | 256 |
 *
 * `UnifiedRuntime.layer` reads them itself; use `layerConfig` or `load` to read
 * them elsewhere, or provide the service with values of your own (for
 * `UnifiedRuntime.layerWithSettings`). The provider being throttled, its rate
 * and burst are `ProviderSettings`.
 *
 * Gotchas: each is an Effect `Config` (see `Setting`), read from the current
 * `ConfigProvider`; a bad value fails with `InvalidSetting`, and an empty
 * variable counts as unset. `MDP_FB_LEVEL_TTL` is in seconds, 0 meaning never;
 * a TTL below the longest real stall lifts backpressure too early.
 * `maxCoordinators` bounds the handler and, in `UnifiedRuntime`, the bus's cache.
 *
 * @since 0.1.0
 * @module
 */
import type * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Setting from "../runtime/Setting.ts"
import type { FeedbackPolicy } from "./FeedbackPolicy.ts"

const group = "feedback"

const scale = (level: "ok" | "soft" | "hard", fallback: number, meaning: string) =>
  Setting.make({
    env: `MDP_FB_SCALE_${level.toUpperCase()}`,
    flag: { _tag: "Value", name: `scale-${level}`, metavar: "S" },
    group,
    description: `the rate's scale at ${level} (${meaning})`,
    schema: Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 })),
    expected: "a number from 0 to 1",
    default: fallback,
    defaultText: fallback.toFixed(1)
  })

const settings = {
  /** `MDP_FB_ENABLE_FEEDBACK` / `--no-feedback`: whether the handler runs (default true). */
  enableFeedback: Setting.make({
    env: "MDP_FB_ENABLE_FEEDBACK",
    flag: { _tag: "Switch", name: "no-feedback", value: false },
    group,
    description: "run the loop open: no feedback handler, the provider keeps its configured rate",
    schema: Setting.BooleanText,
    expected: Setting.booleanExpected,
    default: true
  }),
  /** `MDP_FB_SCALE_OK` / `--scale-ok`: the policy's scale at `ok`, 0 to 1 (default 1.0). */
  scaleOk: scale("ok", 1, "1 = full rate"),
  /** `MDP_FB_SCALE_SOFT` / `--scale-soft`: the policy's scale at `soft`, 0 to 1 (default 0.5). */
  scaleSoft: scale("soft", 0.5, "half the rate by default"),
  /** `MDP_FB_SCALE_HARD` / `--scale-hard`: the policy's scale at `hard`, 0 to 1 (default 0.0, paused). */
  scaleHard: scale("hard", 0, "0 = paused"),
  /** `MDP_FB_LEVEL_TTL` / `--level-ttl`: seconds before an unrefreshed level is forgotten (default 0, never). */
  levelTtl: Setting.make({
    env: "MDP_FB_LEVEL_TTL",
    flag: { _tag: "Value", name: "level-ttl", metavar: "SECONDS" },
    group,
    description: "forget a coordinator's level no report refreshed for this long (0 = never; with a store that " +
      "reports only transitions, an expired hard lifts the pause while the store may still be full)",
    schema: Setting.Seconds,
    expected: "seconds, a number from 0 (0 = off)",
    default: 0,
    defaultText: "0 (off)"
  }),
  /** `MDP_FB_MAX_COORDINATORS` / `--max-coordinators`: coordinators held at once (default 256). */
  maxCoordinators: Setting.make({
    env: "MDP_FB_MAX_COORDINATORS",
    flag: { _tag: "Value", name: "max-coordinators", metavar: "N" },
    group,
    description: "coordinators the handler holds and the bus caches at once",
    schema: Setting.PositiveInt,
    expected: "a positive integer",
    default: 256
  })
}

/**
 * The feedback loop's settings: whether the handler runs, and with which
 * policy, level TTL and bound on coordinators.
 *
 * @example
 * ```ts
 * import { ConfigProvider, Effect } from "effect"
 * import { FeedbackSettings } from "market-data-pipeline"
 *
 * const program = Effect.gen(function*() {
 *   const settings = yield* FeedbackSettings.load
 *   console.log(settings.enableFeedback, JSON.stringify(settings.policy), settings.levelTtlSec)
 * })
 * const env = ConfigProvider.fromEnv({ env: { MDP_FB_SCALE_SOFT: "0.75", MDP_FB_LEVEL_TTL: "30" } })
 * Effect.runPromise(program.pipe(Effect.provideService(ConfigProvider.ConfigProvider, env)))
 * // → true {"ok":1,"soft":0.75,"hard":0} 30
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export class FeedbackSettings extends Context.Service<FeedbackSettings, {
  /** Whether the feedback handler runs; without it the provider keeps its configured rate. */
  readonly enableFeedback: boolean
  /** The scale applied at each level (`MDP_FB_SCALE_OK` / `_SOFT` / `_HARD`). */
  readonly policy: FeedbackPolicy
  /**
   * Seconds after which a coordinator's level that was not refreshed by a
   * report expires (`FeedbackHandler` `levelTtl`); undefined = never (the
   * default). Risky with a store that reports only transitions: see "The feedback loop" in docs/library.md.
   */
  readonly levelTtlSec?: number | undefined
  /**
   * Coordinators the handler holds and the bus caches at once (default
   * 256); see `FeedbackHandler` `maxCoordinators`.
   */
  readonly maxCoordinators?: number | undefined
}>()("market-data-pipeline/FeedbackSettings") {
  /**
   * The settings' definitions (flag, variable, check, default), for a
   * command line or documentation built on them.
   *
   * @since 0.2.0
   * @category settings
   */
  static readonly settings: typeof settings = settings

  /**
   * The settings from read values.
   *
   * @since 0.2.0
   * @category constructors
   */
  static readonly fromValues = (values: Setting.Values<typeof settings>): FeedbackSettings["Service"] =>
    FeedbackSettings.of({
      enableFeedback: values.enableFeedback,
      policy: { ok: values.scaleOk, soft: values.scaleSoft, hard: values.scaleHard },
      ...(values.levelTtl > 0 ? { levelTtlSec: values.levelTtl } : {}),
      ...(values.maxCoordinators === 256 ? {} : { maxCoordinators: values.maxCoordinators })
    })

  /**
   * Reads the settings from the current `ConfigProvider` (the environment
   * by default). A bad value fails with `InvalidSetting`.
   *
   * @since 0.1.0
   * @category constructors
   */
  static readonly load: Effect.Effect<FeedbackSettings["Service"], Setting.InvalidSetting | Config.ConfigError> = Effect
    .suspend(() => Effect.map(Setting.readAll(settings), FeedbackSettings.fromValues))

  /**
   * `FeedbackSettings` read from the current `ConfigProvider`; a bad value
   * fails the layer with `InvalidSetting`.
   *
   * @example
   * ```ts
   * import { ConfigProvider, Effect, Layer } from "effect"
   * import { FeedbackSettings } from "market-data-pipeline"
   *
   * const env = ConfigProvider.layer(ConfigProvider.fromEnv({ env: { MDP_FB_SCALE_HARD: "0.1" } }))
   * const program = Effect.gen(function*() {
   *   const settings = yield* FeedbackSettings
   *   console.log(settings.policy.hard, settings.maxCoordinators ?? "default")
   * })
   * Effect.runPromise(program.pipe(Effect.provide(FeedbackSettings.layerConfig.pipe(Layer.provide(env)))))
   * // → 0.1 default
   * ```
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly layerConfig: Layer.Layer<FeedbackSettings, Setting.InvalidSetting | Config.ConfigError> = Layer
    .effect(FeedbackSettings, FeedbackSettings.load)
}
