/**
 * The whole in-process feedback loop as one layer: a `RateCoordinator` with
 * the configured provider registered, a `FeedbackBus` (and its
 * `FeedbackPublisher`), the `RateCoordinatorAdapter`, a `FeedbackHandler`
 * consuming the bus, `PipelineMetrics`, and a health document over them.
 *
 * Use {@link UnifiedRuntime.layer} for a pipeline configured from the
 * environment (what the service runs), `layerWithSettings` with settings of
 * your own, `layerWithCoordinator` for buckets shared through Redis. For
 * another wiring (several providers each driven by feedback, a controller of
 * your own), compose `FeedbackBus`, `FeedbackHandler.run` and a
 * `RateController` yourself.
 *
 * Gotchas:
 * - One provider per runtime (`ProviderSettings`); others registered on its
 *   coordinator are not driven by feedback.
 * - Every build is a loop of its own: events published on one runtime's bus
 *   never reach another's. Closing the layer's scope stops everything.
 * - Its metrics go into the `Metric.MetricRegistry` of the context it is
 *   built in; `PipelineMetrics.isolated` gives it one of its own.
 * - `health` is degraded while the provider is throttled, paused or
 *   recovering, unhealthy while its circuit is open or it is in cooldown.
 *
 * @since 0.1.0
 * @module
 */
import * as Clock from "effect/Clock"
import type * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { FeedbackPublisher } from "../contracts/FeedbackPublisher.ts"
import type { HealthComponent, HealthState, HealthStatus } from "../contracts/Health.ts"
import { RateController } from "../contracts/RateController.ts"
import { FeedbackBus } from "../feedback/FeedbackBus.ts"
import * as FeedbackHandler from "../feedback/FeedbackHandler.ts"
import type { FeedbackPolicy } from "../feedback/FeedbackPolicy.ts"
import { FeedbackSettings } from "../feedback/FeedbackSettings.ts"
import * as RateCoordinatorAdapter from "../feedback/RateCoordinatorAdapter.ts"
import { PipelineMetrics } from "../metrics/PipelineMetrics.ts"
import { CoordinatorLevels } from "../rate/CoordinatorLevels.ts"
import { ProviderSettings } from "../rate/ProviderSettings.ts"
import { type ProviderState, RateCoordinator } from "../rate/RateCoordinator.ts"
import type { InvalidProviderOptions } from "../rate/RateError.ts"
import { version } from "../version.ts"
import type { InvalidSetting } from "./Setting.ts"

/**
 * What `UnifiedRuntime.layer` provides.
 *
 * @since 0.1.0
 * @category models
 */
export type UnifiedRuntimeServices =
  | UnifiedRuntime
  | RateCoordinator
  | FeedbackBus
  | FeedbackPublisher
  | RateController
  | PipelineMetrics
  | FeedbackSettings
  | ProviderSettings

/**
 * A running pipeline runtime: a `RateCoordinator` with the configured
 * provider registered, a `FeedbackBus`, the `RateController` adapter, the
 * feedback handler consuming the bus (unless feedback is disabled), and
 * its metrics in the application's `Metric.MetricRegistry` (the one
 * `PrometheusMetrics` and your exporters read); `PipelineMetrics.isolated`
 * gives a runtime a registry of its own.
 *
 * @example
 * ```ts
 * import { ConfigProvider, Effect } from "effect"
 * import { UnifiedRuntime } from "market-data-pipeline"
 *
 * const program = Effect.gen(function*() {
 *   const runtime = yield* UnifiedRuntime
 *   const health = yield* runtime.health
 *   console.log(runtime.provider, runtime.feedbackEnabled, health.state)
 * })
 * const env = ConfigProvider.fromEnv({ env: { MDP_FB_PROVIDER_NAME: "alpaca" } })
 * Effect.runPromise(program.pipe(
 *   Effect.provide(UnifiedRuntime.layer),
 *   Effect.provideService(ConfigProvider.ConfigProvider, env)
 * ))
 * // → alpaca true healthy
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export class UnifiedRuntime extends Context.Service<UnifiedRuntime, {
  /** A `HealthStatus` document describing the runtime now. */
  readonly health: Effect.Effect<HealthStatus>
  /** Whether the feedback handler is running. */
  readonly feedbackEnabled: boolean
  /** The provider the runtime registered and drives (`MDP_FB_PROVIDER_NAME`). */
  readonly provider: string
  /** The running feedback handler (status, clear); undefined when feedback is disabled. */
  readonly feedback: FeedbackHandler.FeedbackHandle | undefined
}>()("market-data-pipeline/UnifiedRuntime") {
  /**
   * The runtime, with settings read from the current `ConfigProvider`
   * (`FeedbackSettings`, `ProviderSettings`: `MDP_FB_*`, `MDP_PROVIDER_*`). Closing its scope stops the handler and
   * removes its metrics; nothing keeps running.
   *
   * @example
   * ```ts
   * import { ConfigProvider, Effect, Layer } from "effect"
   * import { FeedbackPublisher, RateCoordinator, UnifiedRuntime } from "market-data-pipeline"
   *
   * const env = ConfigProvider.layer(ConfigProvider.fromEnv({
   *   env: { MDP_PROVIDER_RATE: "50", MDP_FB_SCALE_SOFT: "0.2" }
   * }))
   * const program = Effect.gen(function*() {
   *   const publisher = yield* FeedbackPublisher
   *   yield* publisher.publish({
   *     coordinatorId: "store-1", queueSize: 800, capacity: 1000, level: "soft", source: "store", ts: 1
   *   })
   *   const state = yield* (yield* RateCoordinator).state("ibkr")
   *   console.log(`${state.rate} tokens/s`)
   *   console.log((yield* UnifiedRuntime.health).components[1]?.details["reason"])
   * })
   * Effect.runPromise(program.pipe(Effect.provide(UnifiedRuntime.layer.pipe(Layer.provide(env)))))
   * // → 10 tokens/s
   * // → provider throttled (scale 0.2) by store-1 at soft
   * ```
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly layer: Layer.Layer<
    UnifiedRuntimeServices,
    InvalidSetting | Config.ConfigError | InvalidProviderOptions
  > = Layer.suspend(() =>
    UnifiedRuntime.layerWithSettings.pipe(
      Layer.provideMerge(Layer.merge(FeedbackSettings.layerConfig, ProviderSettings.layerConfig))
    )
  )

  /**
   * The runtime for the `FeedbackSettings` and `ProviderSettings` in context.
   *
   * @example
   * ```ts
   * import { Effect, Layer } from "effect"
   * import {
   *   defaultPolicy,
   *   FeedbackSettings,
   *   ProviderSettings,
   *   RateCoordinator,
   *   UnifiedRuntime
   * } from "market-data-pipeline"
   *
   * const settings = Layer.mergeAll(
   *   Layer.succeed(FeedbackSettings, FeedbackSettings.of({ enableFeedback: false, policy: defaultPolicy })),
   *   Layer.succeed(ProviderSettings, ProviderSettings.of({ name: "ibkr", rate: 100, burst: 20 }))
   * )
   * const program = Effect.gen(function*() {
   *   const runtime = yield* UnifiedRuntime
   *   const state = yield* (yield* RateCoordinator).state(runtime.provider)
   *   console.log(runtime.feedbackEnabled, state.baseRate, state.capacity)
   * })
   * Effect.runPromise(program.pipe(Effect.provide(UnifiedRuntime.layerWithSettings.pipe(Layer.provide(settings)))))
   * // → false 100 20
   * ```
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly layerWithSettings: Layer.Layer<
    Exclude<UnifiedRuntimeServices, FeedbackSettings | ProviderSettings>,
    InvalidProviderOptions,
    FeedbackSettings | ProviderSettings
  > = Layer.suspend(() => UnifiedRuntime.layerWithCoordinator(RateCoordinator.layer))

  /**
   * The runtime for the `FeedbackSettings` and `ProviderSettings` in context, on the given
   * coordinator layer: `RateCoordinator.layer` (in process) or
   * `RateCoordinator.layerRedis(options)` (buckets shared through Redis;
   * provide its `Redis` service). The coordinator is built inside the
   * runtime, so its metrics land in the runtime's registry; a layer that also
   * provides `CoordinatorLevels` (the Redis one does) makes the handler's
   * worst-of span every process.
   *
   * @example
   * ```ts
   * import * as NodeRedis from "@effect/platform-node/NodeRedis"
   * import { Effect, Layer } from "effect"
   * import {
   *   defaultPolicy,
   *   FeedbackSettings,
   *   ProviderSettings,
   *   RateCoordinator,
   *   UnifiedRuntime
   * } from "market-data-pipeline"
   *
   * // buckets in Redis: every process with this prefix draws on the same tokens (keys expire 10 s after use)
   * const coordinator = RateCoordinator.layerRedis({ prefix: `mdp-doc-${process.pid}`, keyTtl: "10 seconds" }).pipe(
   *   Layer.provide(NodeRedis.layer({ url: "redis://127.0.0.1:6379", disableOfflineQueue: true }))
   * )
   * const settings = Layer.mergeAll(
   *   Layer.succeed(FeedbackSettings, FeedbackSettings.of({ enableFeedback: true, policy: defaultPolicy })),
   *   Layer.succeed(ProviderSettings, ProviderSettings.of({ name: "ibkr", rate: 100, burst: 20 }))
   * )
   * const program = Effect.gen(function*() {
   *   const state = yield* (yield* RateCoordinator).state("ibkr")
   *   console.log(state.capacity, state.rate)
   * })
   * const runtime = UnifiedRuntime.layerWithCoordinator(coordinator).pipe(Layer.provide(settings))
   * Effect.runPromise(program.pipe(Effect.provide(runtime)))
   * // → 20 100
   * ```
   *
   * @since 0.2.0
   * @category layers
   */
  static readonly layerWithCoordinator = <Extra, E, R>(
    coordinator: Layer.Layer<RateCoordinator | Extra, E, R>
  ): Layer.Layer<
    Exclude<UnifiedRuntimeServices, FeedbackSettings | ProviderSettings> | Extra,
    InvalidProviderOptions | E,
    FeedbackSettings | ProviderSettings | R
  > => {
    // the bus caches as many coordinators as the handler holds
    const bus = Layer.unwrap(Effect.map(
      Effect.service(FeedbackSettings),
      (settings) => Layer.orDie(FeedbackBus.layerWith({ maxCoordinators: settings.maxCoordinators ?? 256 }))
    ))
    const services = Layer.mergeAll(coordinator, bus, PipelineMetrics.layer)
    const withAdapter = RateCoordinatorAdapter.layer.pipe(Layer.provideMerge(services))
    const runtime = Layer.effect(UnifiedRuntime, start).pipe(Layer.provideMerge(withAdapter))
    // Metrics go into the registry of the context the layer is built in: the application's, unless
    // `PipelineMetrics.isolated` gave the runtime one of its own.
    // (The cast: TypeScript cannot see through the generic Excludes that the coordinator, provided
    // here, satisfies the adapter's and the runtime's requirement on RateCoordinator.)
    return runtime as Layer.Layer<
      Exclude<UnifiedRuntimeServices, FeedbackSettings | ProviderSettings> | Extra,
      InvalidProviderOptions | E,
      FeedbackSettings | ProviderSettings | R
    >
  }

  /**
   * The runtime's `HealthStatus`.
   *
   * @since 0.1.0
   * @category accessors
   */
  static readonly health: Effect.Effect<HealthStatus, never, UnifiedRuntime> = Effect.flatMap(
    Effect.service(UnifiedRuntime),
    (runtime) => runtime.health
  )
}

const start = Effect.gen(function*() {
  const settings = yield* FeedbackSettings
  const providerSettings = yield* ProviderSettings
  const coordinator = yield* RateCoordinator
  const provider = providerSettings.name
  yield* coordinator.registerProvider(provider, { capacity: providerSettings.burst, refillRate: providerSettings.rate })
  let feedback: FeedbackHandler.FeedbackHandle | undefined
  if (settings.enableFeedback) {
    // the settings were validated when read: a bad option here is a bug
    feedback = yield* Effect.orDie(FeedbackHandler.run({
      provider,
      policy: settings.policy,
      ...(settings.levelTtlSec === undefined ? {} : { levelTtl: Duration.seconds(settings.levelTtlSec) }),
      ...(settings.maxCoordinators === undefined ? {} : { maxCoordinators: settings.maxCoordinators })
    }))
    yield* Effect.logDebug(`feedback enabled for provider ${provider}`)
  } else {
    yield* Effect.logDebug(`feedback disabled: provider ${provider} keeps its configured rate`)
  }
  // with shared buckets, coordinators heard by other processes also hold the provider
  const shared = Option.isSome(yield* Effect.serviceOption(CoordinatorLevels))
  const health = Effect.gen(function*() {
    const state = yield* Effect.orDie(coordinator.state(provider))
    const now = yield* Clock.currentTimeMillis
    const feedbackComponent = feedback === undefined
      ? { name: "feedback", state: "healthy" as const, details: { enabled: "false" } }
      : describeFeedback(yield* feedback.status, state, settings.policy, shared, now)
    const rateDetails: Record<string, string> = {
      provider,
      rate: String(state.rate),
      scale: String(state.scale),
      pressure: state.pressure,
      circuit: state.circuit,
      in_cooldown: String(state.inCooldown),
      waiters: String(state.waiters)
    }
    let rateState: HealthState = state.circuit === "open" || state.inCooldown
      ? "unhealthy"
      : state.circuit === "half_open"
      ? "degraded"
      : "healthy"
    // paused, and no feedback component says by whom: feedback is disabled here
    if (rateState === "healthy" && state.scale === 0 && feedbackComponent.state === "healthy") {
      rateState = "degraded"
      rateDetails["reason"] = `provider paused (scale 0)${
        state.pressure === "ok" ? "" : ` at ${state.pressure}`
      }; feedback is disabled here: set by the application${shared ? " or by another process sharing the bucket" : ""}`
    }
    const components: Array<HealthComponent> = [
      { name: "rate_coordinator", state: rateState, details: rateDetails },
      feedbackComponent
    ]
    // unhealthy: the provider cannot be called at all (open circuit, cooldown);
    // degraded: it is throttled or paused (by a coordinator, the policy or the application), or
    // its breaker is half-open
    const overall = worstState([rateState, feedbackComponent.state])
    const status: HealthStatus = {
      service: "market-data-pipeline",
      state: overall,
      components,
      version,
      ts: now / 1000
    }
    return status
  })
  return UnifiedRuntime.of({ health, feedbackEnabled: settings.enableFeedback, provider, feedback })
})

const stateOrder: ReadonlyArray<HealthState> = ["healthy", "degraded", "unhealthy"]

const worstState = (states: ReadonlyArray<HealthState>): HealthState =>
  states.reduce((a, b) => stateOrder.indexOf(b) > stateOrder.indexOf(a) ? b : a, "healthy")

// a health document stays small however many coordinators hold the provider
const MAX_HOLDERS_LISTED = 5

/**
 * The feedback component: degraded while a coordinator throttles or pauses
 * the provider, naming who, at which level, since when and how long ago it
 * last reported; with shared buckets, also while a coordinator only another
 * process heard holds it; and while the policy itself pauses it at `ok`.
 */
const describeFeedback = (
  status: FeedbackHandler.FeedbackStatus,
  state: ProviderState,
  policy: FeedbackPolicy,
  shared: boolean,
  now: number
): HealthComponent => {
  const scale = state.scale
  const held = scale === 0 ? "paused" : "throttled"
  const details: Record<string, string> = {
    enabled: "true",
    level: status.level,
    coordinators: String(status.coordinators.length)
  }
  if (status.level === "ok") {
    if (shared && (state.pressure !== "ok" || scale < policy.ok)) {
      details["reason"] = `provider ${held} (scale ${scale}) at ${state.pressure} ` +
        "by a coordinator another process heard (shared buckets; DELETE /feedback/{coordinator_id} clears it)"
      return { name: "feedback", state: "degraded", details }
    }
    if (scale === 0 && policy.ok === 0) {
      details["reason"] = "provider paused (scale 0) by the policy: its scale for ok is 0"
      return { name: "feedback", state: "degraded", details }
    }
    // back at ok, but a recovery ramp has not brought the rate up yet
    if (scale >= policy.ok) return { name: "feedback", state: "healthy", details }
    details["reason"] = `provider recovering (scale ${scale}, rising to ${policy.ok})`
    return { name: "feedback", state: "degraded", details }
  }
  const listed = status.holders.slice(0, MAX_HOLDERS_LISTED).map((holder) =>
    `${holder.coordinatorId}: ${holder.level} since ${new Date(holder.since).toISOString()}, last report ${
      ((now - holder.lastReport) / 1000).toFixed(1)
    } s ago`
  )
  const more = status.holders.length - listed.length
  details["held_by"] = listed.join("; ") + (more > 0 ? `; and ${more} more` : "")
  details["reason"] = `provider ${held} (scale ${scale}) by ${
    status.holders.length === 1 ? status.holders[0]!.coordinatorId : `${status.holders.length} coordinators`
  } at ${status.level}`
  return { name: "feedback", state: "degraded", details }
}
