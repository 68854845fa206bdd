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
import type { OverflowStrategy, SimulatedStore } from "./SimulatedStore.ts"

/**
 * Options of {@link start}.
 *
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
  /**
   * Whether the runtime acts on the store's feedback
   * (`UnifiedRuntime.feedbackEnabled`); the summary says so. Unknown when
   * left out.
   */
  readonly feedback?: boolean
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
  /** The provider's configured rate, before the feedback's scale. */
  readonly baseRate: number
  readonly scale: number
  readonly level: BackpressureLevel
  readonly queueDepth: number
  readonly queueCapacity: number
  /** Items the provider made: with a store, those the store accepted or rejected. */
  readonly produced: number
  /** Items the sink wrote (without a store: every item produced). */
  readonly written: number
  /** Items the store evicted so far (`drop_oldest`). */
  readonly dropped: number
  /** Items the store refused so far (`error`). */
  readonly rejected: number
  /** Whether the sink is in one of its stalls. */
  readonly stalled: boolean
}

/**
 * The simulated store's setup, as the summary and the chart describe it.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoreSetup {
  readonly capacity: number
  readonly highWatermark: number
  readonly lowWatermark: number
  readonly overflow: OverflowStrategy
  /** Items/s the sink writes. */
  readonly sinkRate: number
  readonly stallEverySec: number
  readonly stallForSec: number
}

/**
 * What the run did. With a store, every item produced is accounted for:
 * `produced = written + dropped + rejected + queued`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Summary {
  readonly durationSec: number
  readonly produced: number
  readonly written: number
  /** Items still in the store's queue (0 without a store). */
  readonly queued: number
  /** Items the store evicted (`drop_oldest`). */
  readonly dropped: number
  /** Items the store refused (`error`). */
  readonly rejected: number
  /** Seconds the provider spent waiting on a full queue (`block`). */
  readonly blockedSec: number
  /** Seconds the provider spent at each level (what the feedback told it). */
  readonly secondsInLevel: Readonly<Record<BackpressureLevel, number>>
  /** Seconds the store spent at each level it reported (undefined without a store). */
  readonly secondsInStoreLevel: Readonly<Record<BackpressureLevel, number>> | undefined
  readonly maxQueueDepth: number
  /** Whether the runtime acted on feedback, when known. */
  readonly feedback: boolean | undefined
  /** The simulated store, or undefined in production mode. */
  readonly store: StoreSetup | undefined
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
    // without a store, the provider's own count (every item is "written" at once)
    let produced = 0
    const secondsInLevel: Record<BackpressureLevel, number> = { ok: 0, soft: 0, hard: 0 }
    const secondsInStoreLevel: Record<BackpressureLevel, number> = { ok: 0, soft: 0, hard: 0 }
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

    // the sink stalls for the last `stallFor` of every `stallEvery`
    const stallEndsIn = (now: number): number => {
      const intoCycle = (now - startedAt) % stallEvery
      return intoCycle >= stallEvery - stallFor ? stallEvery - intoCycle : 0
    }

    const counts = () => {
      if (store === undefined) return { produced, written: produced, queued: 0, dropped: 0, rejected: 0 }
      const stats = store.stats()
      return {
        produced: stats.accepted + stats.rejected,
        written: stats.taken,
        queued: stats.size,
        dropped: stats.dropped,
        rejected: stats.rejected
      }
    }

    const producer = Effect.forever(
      Effect.gen(function*() {
        yield* Effect.orDie(coordinator.acquire(provider))
        // a refused item is counted by the store; the provider goes on
        if (store !== undefined) yield* Effect.catchTag(store.put, "QueueFull", () => Effect.void)
        else produced++
      }),
      { disableYield: true }
    )

    const sinkInterval = Duration.millis(1000 / options.sinkRate)
    const sink = (s: SimulatedStore) =>
      Effect.forever(
        Effect.gen(function*() {
          const stall = stallEndsIn(yield* Clock.currentTimeMillis)
          if (stall > 0) yield* Effect.sleep(Duration.millis(stall))
          yield* s.take
          yield* Effect.sleep(sinkInterval)
        }),
        { disableYield: true }
      )

    const sample = Effect.gen(function*() {
      const state = yield* Effect.orDie(coordinator.state(provider))
      const now = yield* Clock.currentTimeMillis
      const c = counts()
      const current: Sample = {
        t: (now - startedAt) / 1000,
        rate: state.rate,
        baseRate: state.baseRate,
        scale: state.scale,
        level: state.pressure,
        queueDepth: c.queued,
        queueCapacity: store?.capacity ?? 0,
        produced: c.produced,
        written: c.written,
        dropped: c.dropped,
        rejected: c.rejected,
        stalled: store !== undefined && stallEndsIn(now) > 0
      }
      return current
    })

    // each sample's level counts for the time since the previous one (timers may fire late)
    let sampledAt = 0
    const sampler = Effect.forever(
      Effect.gen(function*() {
        yield* Effect.sleep(sampleEvery)
        // the store's level before this sample's reading, like the provider's below
        const storeLevel = store?.level()
        const current = yield* sample
        secondsInLevel[current.level] += current.t - sampledAt
        if (storeLevel !== undefined) secondsInStoreLevel[storeLevel] += current.t - sampledAt
        sampledAt = current.t
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

    const setup: StoreSetup | undefined = store === undefined ? undefined : {
      capacity: store.capacity,
      highWatermark: store.highWatermark,
      lowWatermark: store.lowWatermark,
      overflow: store.overflow,
      sinkRate: options.sinkRate,
      stallEverySec: stallEvery / 1000,
      stallForSec: stallFor / 1000
    }

    const summary = Effect.map(Clock.currentTimeMillis, (now): Summary => {
      const stats = store?.stats()
      return {
        durationSec: ((stoppedAt ?? now) - startedAt) / 1000,
        ...counts(),
        blockedSec: (stats?.blockedMillis ?? 0) / 1000,
        secondsInLevel: { ...secondsInLevel },
        secondsInStoreLevel: store === undefined ? undefined : { ...secondsInStoreLevel },
        maxQueueDepth: stats?.maxSize ?? 0,
        feedback: options.feedback,
        store: setup
      }
    })

    return { sample, samples, summary, stop }
  })
