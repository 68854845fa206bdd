/**
 * The closed loop the service runs: a synthetic provider paced by the
 * RateCoordinator writes into a (simulated) store whose watermark feedback
 * comes back over the bus.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import type { BackpressureLevel } from "../contracts/BackpressureLevel.ts"
import { RateCoordinator } from "../rate/RateCoordinator.ts"
import type { SimulatedStore } from "./SimulatedStore.ts"

/**
 * @since 0.1.0
 * @category models
 */
export interface SimulationOptions {
  /** The provider the synthetic source acquires from (registered by the runtime). */
  readonly provider: string
  /** Items/s the store's sink writes. */
  readonly sinkRate: number
  /** The sink stalls for the last `stallFor` of every `stallEvery` (default 3 s every 15 s). */
  readonly stallEvery?: Duration.Input
  readonly stallFor?: Duration.Input
  /** How often the loop is sampled for the timeline (default 100 ms). */
  readonly sampleEvery?: Duration.Input
  /**
   * Samples kept for the chart and timeline, the most recent ones (default
   * 6,000: the last 10 minutes at 100 ms). Older samples are dropped, so a
   * long run keeps constant memory; the summary counts the whole run.
   */
  readonly maxSamples?: number
}

/**
 * One sample of the loop.
 *
 * @since 0.1.0
 * @category models
 */
export interface Sample {
  /** Seconds since the start. */
  readonly t: number
  /** The provider's rate in force, tokens/s. */
  readonly rate: number
  readonly scale: number
  readonly level: BackpressureLevel
  readonly queueDepth: number
  readonly queueCapacity: number
  readonly produced: number
  readonly written: number
}

/**
 * What the run did.
 *
 * @since 0.1.0
 * @category models
 */
export interface Summary {
  readonly durationSec: number
  readonly produced: number
  readonly written: number
  readonly secondsInLevel: Readonly<Record<BackpressureLevel, number>>
  readonly maxQueueDepth: number
  readonly dropped: number
}

/**
 * A running simulation.
 *
 * @since 0.1.0
 * @category models
 */
export interface Simulation {
  /** The loop now. */
  readonly sample: Effect.Effect<Sample>
  /** The samples kept (the last `maxSamples`), oldest first. */
  readonly samples: () => ReadonlyArray<Sample>
  /** What the run did, up to now or, once stopped, up to the stop. */
  readonly summary: Effect.Effect<Summary>
  /**
   * Stops the provider, the sink and the sampler at once (the provider takes
   * no more tokens) and freezes the summary's duration at this moment.
   */
  readonly stop: Effect.Effect<void>
}

/**
 * Starts the provider, the sink and the sampler in the scope. Without a
 * store the provider's items go nowhere (production mode: feedback only
 * arrives from outside).
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = (
  options: SimulationOptions,
  store: SimulatedStore | undefined
): Effect.Effect<Simulation, never, RateCoordinator | Scope.Scope> =>
  Effect.gen(function*() {
    const coordinator = yield* RateCoordinator
    const { provider } = options
    const startedAt = yield* Clock.currentTimeMillis
    const stallEvery = Duration.toMillis(Duration.fromInputUnsafe(options.stallEvery ?? "15 seconds"))
    const stallFor = Duration.toMillis(Duration.fromInputUnsafe(options.stallFor ?? "3 seconds"))
    const sampleEvery = Duration.fromInputUnsafe(options.sampleEvery ?? "100 millis")
    let produced = 0
    let written = 0
    let maxQueueDepth = 0
    const secondsInLevel: Record<BackpressureLevel, number> = { ok: 0, soft: 0, hard: 0 }
    const maxSamples = Math.max(2, Math.floor(options.maxSamples ?? 6000))
    // a ring: `ring[next]` is the oldest once it has wrapped
    const ring: Array<Sample> = []
    let next = 0
    const record = (sample: Sample): void => {
      if (ring.length < maxSamples) ring.push(sample)
      else ring[next] = sample
      next = (next + 1) % maxSamples
    }
    const samples = (): ReadonlyArray<Sample> =>
      ring.length < maxSamples ? ring.slice() : [...ring.slice(next), ...ring.slice(0, next)]

    const producer = Effect.forever(
      Effect.gen(function*() {
        yield* Effect.orDie(coordinator.acquire(provider))
        if (store !== undefined) yield* store.put
        produced++
        if (store === undefined) written++
        else if (store.size() > maxQueueDepth) maxQueueDepth = store.size()
      }),
      { disableYield: true }
    )

    const sinkInterval = Duration.millis(1000 / options.sinkRate)
    const sink = (s: SimulatedStore) =>
      Effect.forever(
        Effect.gen(function*() {
          const elapsed = (yield* Clock.currentTimeMillis) - startedAt
          const intoCycle = elapsed % stallEvery
          if (intoCycle >= stallEvery - stallFor) yield* Effect.sleep(Duration.millis(stallEvery - intoCycle))
          yield* s.take
          written++
          yield* Effect.sleep(sinkInterval)
        }),
        { disableYield: true }
      )

    const sample = Effect.gen(function*() {
      const state = yield* Effect.orDie(coordinator.state(provider))
      const now = yield* Clock.currentTimeMillis
      const current: Sample = {
        t: (now - startedAt) / 1000,
        rate: state.rate,
        scale: state.scale,
        level: state.pressure,
        queueDepth: store?.size() ?? 0,
        queueCapacity: store?.capacity ?? 0,
        produced,
        written
      }
      return current
    })

    const sampler = Effect.forever(
      Effect.gen(function*() {
        yield* Effect.sleep(sampleEvery)
        const current = yield* sample
        secondsInLevel[current.level] += Duration.toSeconds(sampleEvery)
        record(current)
      })
    )

    record(yield* sample)
    // the loop's fibers live in a scope of their own, so `stop` can end them before the caller's scope closes
    const running = yield* Scope.fork(yield* Effect.scope)
    const fork = <E>(effect: Effect.Effect<void, E>) => Effect.forkIn(effect, running)
    yield* fork(producer)
    if (store !== undefined) yield* fork(sink(store))
    yield* fork(sampler)
    let stoppedAt: number | undefined

    const stop = Effect.gen(function*() {
      if (stoppedAt !== undefined) return
      stoppedAt = yield* Clock.currentTimeMillis
      yield* Scope.close(running, Exit.void)
    })

    const summary = Effect.map(Clock.currentTimeMillis, (now): Summary => ({
      durationSec: ((stoppedAt ?? now) - startedAt) / 1000,
      produced,
      written,
      secondsInLevel: { ...secondsInLevel },
      maxQueueDepth,
      // every item produced is written or still queued, unless one was lost
      dropped: produced - written - (store?.size() ?? 0)
    }))

    return { sample, samples, summary, stop }
  })
