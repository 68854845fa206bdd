/**
 * The feedback loop's settings, with the Python pipeline's environment
 * names: whether the handler runs, its policy, the level TTL and how many
 * coordinators it holds. (The provider it throttles, with its rate and
 * burst, is `ProviderSettings`.)
 *
 * | field | flag | variable | default |
 * |---|---|---|---|
 * | `enableFeedback` | `--no-feedback` (false) | `MDP_FB_ENABLE_FEEDBACK` | true |
 * | `policy.ok` / `.soft` / `.hard` | `--scale-ok` / `--scale-soft` / `--scale-hard` | `MDP_FB_SCALE_OK` / `_SOFT` / `_HARD` | 1.0 / 0.5 / 0.0 |
 * | `levelTtlSec` | `--level-ttl` | `MDP_FB_LEVEL_TTL` | 0 (off) |
 * | `maxCoordinators` | `--max-coordinators` | `MDP_FB_MAX_COORDINATORS` | 256 |
 *
 * Each is an Effect `Config` (see `Setting`): `load` reads them from the
 * current `ConfigProvider` and refuses a bad value with `InvalidSetting`.
 *
 * @example
 * ```ts
 * import { ConfigProvider, Effect } from "effect"
 * import { FeedbackSettings } from "market-data-pipeline"
 *
 * // policy { ok: 1, soft: 0.75, hard: 0 }
 * const settings = FeedbackSettings.load.pipe(
 *   Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env: { MDP_FB_SCALE_SOFT: "0.75" } }))
 * )
 * ```
 *
 * @since 0.1.0
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
  enableFeedback: Setting.make({
    env: "MDP_FB_ENABLE_FEEDBACK",
    flag: { _tag: "Switch", name: "no-feedback", value: false },
    group,
    description: "run the loop open: no feedback handler, the provider keeps its configured rate",
    schema: Setting.BooleanText,
    expected: Setting.booleanExpected,
    default: true
  }),
  scaleOk: scale("ok", 1, "1 = full rate"),
  scaleSoft: scale("soft", 0.5, "half the rate by default"),
  scaleHard: scale("hard", 0, "0 = paused"),
  levelTtl: Setting.make({
    env: "MDP_FB_LEVEL_TTL",
    flag: { _tag: "Value", name: "level-ttl", metavar: "SECONDS" },
    group,
    description: "forget a coordinator's level no report refreshed for this long (0 = never; see the README's risk)",
    schema: Setting.Seconds,
    expected: "seconds, a number from 0 (0 = off)",
    default: 0,
    defaultText: "0 (off)"
  }),
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
 * The feedback loop's settings.
 *
 * @since 0.1.0
 * @category services
 */
export class FeedbackSettings extends Context.Service<FeedbackSettings, {
  /** Whether the feedback handler runs; without it the provider keeps its configured rate. */
  readonly enableFeedback: boolean
  readonly policy: FeedbackPolicy
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
   * The settings' definitions (flag, variable, check, default), for a
   * command line or documentation built on them.
   *
   * @since 0.1.0
   * @category settings
   */
  static readonly settings: typeof settings = settings

  /**
   * The settings from read values.
   *
   * @since 0.1.0
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
   * `FeedbackSettings` read from the current `ConfigProvider`.
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly layerConfig: Layer.Layer<FeedbackSettings, Setting.InvalidSetting | Config.ConfigError> = Layer
    .effect(FeedbackSettings, FeedbackSettings.load)
}
