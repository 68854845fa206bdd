import { Effect, Layer, Logger, Metric } from "effect"
import {
  type BackpressureLevel,
  type FeedbackEvent,
  FeedbackSettings,
  ProviderSettings,
  UnifiedRuntime
} from "market-data-pipeline"

export const event = (coordinatorId: string, level: BackpressureLevel, ts = 1700000000): FeedbackEvent => ({
  coordinatorId,
  queueSize: level === "ok" ? 10 : level === "soft" ? 800 : 950,
  capacity: 1000,
  level,
  source: "store",
  ts
})

/** Lets other fibers run until `check` holds (no clock involved); fails after 10,000 yields. */
export const eventually = <E, R>(check: Effect.Effect<boolean, E, R>): Effect.Effect<void, E | Error, R> =>
  Effect.gen(function*() {
    for (let i = 0; i < 10_000; i++) {
      if (yield* check) return
      yield* Effect.yieldNow
    }
    return yield* Effect.fail(new Error("condition not reached"))
  })

/** Lets other fibers run for a while (no clock involved), for "nothing happens" checks. */
export const letOthersRun: Effect.Effect<void> = Effect.gen(function*() {
  for (let i = 0; i < 100; i++) yield* Effect.yieldNow
})

/** A logger keeping every line logged where `layer` is provided: its level and first message. */
export const captureLogs = () => {
  const lines: Array<{ readonly level: string; readonly message: string }> = []
  const layer = Logger.layer([Logger.make((options) => {
    const message = options.message
    lines.push({ level: options.logLevel, message: String(Array.isArray(message) ? message[0] : message) })
  })])
  return { lines, layer }
}

/** The value of one series of the current `Metric.MetricRegistry` (count or value); undefined if absent. */
export const metricValue = (
  name: string,
  labels: Readonly<Record<string, string>> = {}
): Effect.Effect<number | undefined> =>
  Effect.map(Metric.snapshot, (snapshots) => {
    const found = snapshots.find((s) =>
      s.id === name && Object.keys(labels).length === Object.keys(s.attributes ?? {}).length &&
      Object.entries(labels).every(([k, v]) => s.attributes?.[k] === v)
    )
    if (found === undefined) return undefined
    const state = found.state as { readonly count?: number; readonly value?: number }
    return Number(state.count ?? state.value)
  })

/** The label values of `label` over the series of `name` in the current registry. */
export const seriesLabels = (name: string, label: string): Effect.Effect<ReadonlyArray<string>> =>
  Effect.map(
    Metric.snapshot,
    (snapshots) => snapshots.filter((s) => s.id === name).map((s) => String(s.attributes?.[label])).sort()
  )

/**
 * Provides a fresh `UnifiedRuntime.layerWithSettings` for provider ibkr at 10/s, burst 10, with
 * these settings (default policy).
 */
export const withRuntime =
  (settings: Partial<FeedbackSettings["Service"] & ProviderSettings["Service"]> = {}) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    effect.pipe(
      Effect.provide(Layer.fresh(UnifiedRuntime.layerWithSettings)),
      Effect.provideService(FeedbackSettings, {
        enableFeedback: settings.enableFeedback ?? true,
        policy: settings.policy ?? { ok: 1, soft: 0.5, hard: 0 },
        levelTtlSec: settings.levelTtlSec,
        maxCoordinators: settings.maxCoordinators
      }),
      Effect.provideService(ProviderSettings, {
        name: settings.name ?? "ibkr",
        rate: settings.rate ?? 10,
        burst: settings.burst ?? 10
      })
    )
