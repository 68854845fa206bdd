/**
 * The settings of the provider that `UnifiedRuntime` registers with its
 * `RateCoordinator` and that the feedback throttles: its name, base rate and
 * burst, read from flags or environment variables under one name per
 * concept, for the library and the service alike:
 *
 * | field | flag | variable | default |
 * |---|---|---|---|
 * | `name` | `--provider` | `MDP_FB_PROVIDER_NAME` | `ibkr` |
 * | `rate` | `--provider-rate` | `MDP_PROVIDER_RATE` | 200 tokens/s |
 * | `burst` | `--provider-burst` | `MDP_PROVIDER_BURST` | rate/5 rounded up, at least 1 (0.2 s worth) |
 *
 * Use `ProviderSettings.layerConfig` in a service configured from its
 * environment; a program that knows its provider calls
 * `RateCoordinator.registerProvider` with `ProviderOptions` directly.
 *
 * Gotchas:
 * - `rate` is tokens per second before the feedback's scale; `burst` is a
 *   whole number of tokens (the bucket's `capacity`).
 * - `MDP_FB_PROVIDER_NAME` keeps the Python pipeline's name.
 * - The variables this replaced, `MDP_RATE_REFILL` and `MDP_RATE_CAPACITY`,
 *   are refused with `InvalidSetting` when set, rather than silently ignored.
 *
 * @since 0.2.0
 * @module
 */
import type * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Setting from "../runtime/Setting.ts"

const group = "provider"

const settings = {
  /** `--provider` / `MDP_FB_PROVIDER_NAME`: the provider's name, non-blank; default `ibkr`. */
  providerName: Setting.make({
    env: "MDP_FB_PROVIDER_NAME",
    flag: { _tag: "Value", name: "provider", metavar: "NAME" },
    group,
    description: "the provider paced (and throttled by the feedback)",
    schema: Setting.NonBlank,
    expected: "a name without spaces",
    default: "ibkr"
  }),
  /** `--provider-rate` / `MDP_PROVIDER_RATE`: base rate in tokens/s, positive; default 200. */
  providerRate: Setting.make({
    env: "MDP_PROVIDER_RATE",
    flag: { _tag: "Value", name: "provider-rate", metavar: "R" },
    group,
    description: "the provider's base rate, tokens (items)/s",
    schema: Setting.Positive,
    expected: "a positive number (tokens/s)",
    default: 200
  }),
  /** `--provider-burst` / `MDP_PROVIDER_BURST`: burst in tokens, a positive integer; none given, rate/5. */
  providerBurst: Setting.optional({
    env: "MDP_PROVIDER_BURST",
    flag: { _tag: "Value", name: "provider-burst", metavar: "N" },
    group,
    description: "the provider's burst: tokens taken at once after an idle time",
    schema: Setting.PositiveInt,
    expected: "a positive integer (tokens)",
    defaultText: "rate/5 rounded up, at least 1"
  })
}

// 0.2 s worth, at least 1
const defaultBurst = (rate: number): number => Math.max(1, Math.ceil(rate / 5))

/**
 * The provider's settings: the name to register and throttle, its base rate
 * and its burst.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ProviderSettings, RateCoordinator } from "market-data-pipeline"
 *
 * const program = Effect.gen(function*() {
 *   const provider = yield* ProviderSettings
 *   const rates = yield* RateCoordinator
 *   yield* rates.registerProvider(provider.name, { capacity: provider.burst, refillRate: provider.rate })
 *   const { capacity, rate } = yield* rates.state(provider.name)
 *   console.log(provider.name, capacity, rate)
 * })
 *
 * // what layerConfig reads from the environment, given here in code
 * const settings = ProviderSettings.of({ name: "ibkr", rate: 50, burst: ProviderSettings.defaultBurst(50) })
 * Effect.runPromise(program.pipe(
 *   Effect.provideService(ProviderSettings, settings),
 *   Effect.provide(RateCoordinator.layer)
 * ))
 * // → ibkr 10 50
 * ```
 *
 * @since 0.2.0
 * @category services
 */
export class ProviderSettings extends Context.Service<ProviderSettings, {
  /** The provider registered with the `RateCoordinator` and throttled by the feedback. */
  readonly name: string
  /** Base rate, tokens/s (before the feedback's scale). */
  readonly rate: number
  /** Burst: the bucket's capacity. */
  readonly burst: number
}>()("market-data-pipeline/ProviderSettings") {
  /**
   * The settings' definitions (flag, variable, check, default), for a
   * command line or documentation built on them.
   *
   * @since 0.2.0
   * @category settings
   */
  static readonly settings: typeof settings = settings

  /**
   * The burst for a rate when none is given: 0.2 s worth, at least 1.
   *
   * @since 0.2.0
   * @category constructors
   */
  static readonly defaultBurst: (rate: number) => number = defaultBurst

  /**
   * The variables that were replaced, refused when set.
   *
   * @since 0.2.0
   * @category settings
   */
  static readonly retired: ReadonlyArray<Setting.Retired> = [
    { env: "MDP_RATE_REFILL", replacement: settings.providerRate },
    { env: "MDP_RATE_CAPACITY", replacement: settings.providerBurst }
  ]

  /**
   * The settings from read values (the burst derived from the rate when
   * not given).
   *
   * @since 0.2.0
   * @category constructors
   */
  static readonly fromValues = (values: Setting.Values<typeof settings>): ProviderSettings["Service"] =>
    ProviderSettings.of({
      name: values.providerName,
      rate: values.providerRate,
      burst: Option.getOrElse(values.providerBurst, () => defaultBurst(values.providerRate))
    })

  /**
   * Reads the settings from the current `ConfigProvider` (the environment
   * by default). A bad value, or a retired variable that is set, fails with
   * `InvalidSetting`.
   *
   * @example
   * ```ts
   * import { ConfigProvider, Effect } from "effect"
   * import { ProviderSettings } from "market-data-pipeline"
   *
   * const env = ConfigProvider.fromEnv({ env: { MDP_PROVIDER_RATE: "50" } })
   * const settings = await Effect.runPromise(
   *   ProviderSettings.load.pipe(Effect.provideService(ConfigProvider.ConfigProvider, env))
   * )
   * console.log(settings)
   * // → { name: 'ibkr', rate: 50, burst: 10 }
   * ```
   *
   * @since 0.2.0
   * @category constructors
   */
  static readonly load: Effect.Effect<ProviderSettings["Service"], Setting.InvalidSetting | Config.ConfigError> = Effect
    .suspend(() =>
      Effect.andThen(
        Setting.checkRetired(ProviderSettings.retired),
        Effect.map(Setting.readAll(settings), ProviderSettings.fromValues)
      )
    )

  /**
   * `ProviderSettings` read from the current `ConfigProvider` (the
   * environment by default), with `load`'s checks; it fails with
   * `InvalidSetting` for a bad or retired variable.
   *
   * @example
   * ```ts
   * import { ConfigProvider, Effect, Layer } from "effect"
   * import { ProviderSettings } from "market-data-pipeline"
   *
   * const run = (env: Record<string, string>) =>
   *   Effect.gen(function*() {
   *     const { burst, name, rate } = yield* ProviderSettings
   *     console.log(name, rate, burst)
   *   }).pipe(
   *     Effect.provide(ProviderSettings.layerConfig.pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env }))))),
   *     Effect.catchTag("InvalidSetting", (error) => Effect.sync(() => console.log(error._tag)))
   *   )
   *
   * await Effect.runPromise(run({ MDP_FB_PROVIDER_NAME: "polygon", MDP_PROVIDER_RATE: "100" }))
   * // → polygon 100 20
   * // the retired MDP_RATE_REFILL is refused, not ignored
   * await Effect.runPromise(run({ MDP_RATE_REFILL: "50" }))
   * // → InvalidSetting
   * ```
   *
   * @since 0.2.0
   * @category layers
   */
  static readonly layerConfig: Layer.Layer<ProviderSettings, Setting.InvalidSetting | Config.ConfigError> = Layer
    .effect(ProviderSettings, ProviderSettings.load)
}
