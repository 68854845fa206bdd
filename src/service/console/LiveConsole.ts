/**
 * The live console's server side: one producer fiber that, every 500 ms while
 * at least one console is open (parked otherwise: nothing is read when no one
 * looks), reads every provider's pacing, the feedback handler's
 * coordinators, the health document and the recent rejections at the edge
 * into one {@link ConsoleSnapshot}, serializes it once and publishes it to
 * every open console (server-sent events); and a history ring (5 minutes at
 * one point per tick) so a page opened now draws the last minutes at once
 * (of the times a console was open: the producer does not run otherwise).
 *
 * The cost does not grow with the number of consoles: the snapshot is built
 * and serialized once per tick whoever listens; a client only receives the
 * last serialized text (a slow one skips stale snapshots, never queues
 * them). Open streams are bounded (`maxClients`); they end when the scope
 * closes, so a server shutting down does not wait for open consoles.
 *
 * Gotcha: the page (`page.ts`) is static and never sees a token; every route
 * of the console is read-only, like `/healthz`.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Latch from "effect/Latch"
import * as PubSub from "effect/PubSub"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { BackpressureLevel } from "../../contracts/BackpressureLevel.ts"
import { RateCoordinator } from "../../rate/RateCoordinator.ts"
import { UnifiedRuntime } from "../../runtime/UnifiedRuntime.ts"
import { version } from "../../version.ts"

/**
 * One request refused at the edge, as the console lists it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Rejection {
  /** epoch ms (Clock) */
  readonly ts: number
  readonly status: number
  readonly reason: string
  readonly method: string
  /** Without the query string. */
  readonly path: string
}

/**
 * The last rejections at the edge, in a ring of fixed size (oldest dropped).
 *
 * @since 0.1.0
 * @category models
 */
export interface RejectionLog {
  readonly record: (status: number, reason: string, method: string, path: string) => Effect.Effect<void>
  /** Newest first. */
  readonly recent: () => ReadonlyArray<Rejection>
}

/**
 * A ring of the last `size` (default 20) rejections.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeRejectionLog = (size = 20): RejectionLog => {
  const ring: Array<Rejection> = []
  return {
    record: (status, reason, method, path) =>
      Effect.map(Clock.currentTimeMillis, (ts) => {
        // no message: the console needs no token, and a message may quote a request's body or
        // headers; the path is the client's, kept short (the page shows it as text only)
        const shortPath = path.length > 120 ? `${path.slice(0, 117)}...` : path
        ring.push({ ts, status, reason, method: method.slice(0, 16), path: shortPath })
        if (ring.length > size) ring.shift()
      }),
    recent: () => ring.slice().reverse()
  }
}

/**
 * One provider in a snapshot.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProviderView {
  readonly name: string
  readonly baseRate: number
  readonly rate: number
  readonly scale: number
  readonly level: BackpressureLevel
  readonly tokens: number
  readonly capacity: number
  readonly waiters: number
  readonly circuit: string
  readonly inCooldown: boolean
}

/**
 * One coordinator in a snapshot: its last level, its last reported queue,
 * how long ago it reported, and whether it is (one of) the worst-of holding
 * the provider down.
 *
 * @since 0.1.0
 * @category models
 */
export interface CoordinatorView {
  readonly id: string
  readonly level: BackpressureLevel
  /** What it last reported (the handler holds it with its level); null only without a handler. */
  readonly queueSize: number | null
  readonly capacity: number | null
  readonly sinceMs: number
  readonly lastReportAgeSec: number
  /** The provider it holds down, or null. */
  readonly holding: string | null
  /** Why, when holding: the worst-of it sets. */
  readonly reason: string | null
}

/**
 * What a console shows at one instant.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConsoleSnapshot {
  readonly ts: number
  readonly version: string
  readonly providers: ReadonlyArray<ProviderView>
  readonly feedback: { readonly enabled: boolean; readonly provider: string; readonly level: BackpressureLevel | null }
  readonly coordinators: ReadonlyArray<CoordinatorView>
  readonly health: { readonly state: string; readonly reasons: ReadonlyArray<string> }
  readonly rejections: ReadonlyArray<Rejection>
  readonly clients: number
}

/**
 * Options of {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface LiveConsoleOptions {
  readonly rejections: RejectionLog
  /** Between snapshots; default 500 ms. */
  readonly intervalMs?: number | undefined
  /** Points kept per provider; default 600 (5 minutes at 500 ms). */
  readonly historyPoints?: number | undefined
  /** Open event streams at once; default 64. */
  readonly maxClients?: number | undefined
}

/**
 * A running console producer.
 *
 * @since 0.1.0
 * @category models
 */
export interface LiveConsole {
  /** The snapshot of now (computed on demand, not the last published). */
  readonly snapshot: Effect.Effect<ConsoleSnapshot>
  /**
   * The last published snapshot while the producer runs (a console is open),
   * else `undefined`.
   */
  readonly latest: () => ConsoleSnapshot | undefined
  /** Open event streams. */
  readonly clients: () => number
  readonly maxClients: number
  /**
   * A client's event stream (`retry:` and a keep-alive comment line, the
   * history, then every snapshot, and a keep-alive comment line at least
   * every 15 s), or `undefined` when `maxClients` are open. The slot is
   * taken now and given back by `release` (call it once, when the response
   * closes); the first slot taken starts the producer, the last given back
   * parks it.
   */
  readonly open: () => Effect.Effect<
    { readonly body: Stream.Stream<Uint8Array>; readonly release: () => void } | undefined
  >
}

type Point = readonly [t: number, rate: number, scale: number]

/**
 * Starts the producer in the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: LiveConsoleOptions
): Effect.Effect<LiveConsole, never, RateCoordinator | UnifiedRuntime | Scope.Scope> =>
  Effect.gen(function*() {
    const coordinator = yield* RateCoordinator
    const runtime = yield* UnifiedRuntime
    const intervalMs = options.intervalMs ?? 500
    const historyPoints = options.historyPoints ?? 600
    const keepAliveTicks = Math.max(1, Math.round(15_000 / intervalMs))
    const maxClients = options.maxClients ?? 64
    let clients = 0

    const snapshot: Effect.Effect<ConsoleSnapshot> = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const providers: Array<ProviderView> = []
      for (const name of yield* coordinator.providers) {
        const state = yield* Effect.option(coordinator.state(name))
        if (state._tag === "None") continue
        const s = state.value
        providers.push({
          name,
          baseRate: s.baseRate,
          rate: s.rate,
          scale: s.scale,
          level: s.pressure,
          tokens: Math.round(s.available * 100) / 100,
          capacity: s.capacity,
          waiters: s.waiters,
          circuit: s.circuit,
          inCooldown: s.inCooldown
        })
      }
      const status = runtime.feedback === undefined ? undefined : yield* runtime.feedback.status
      const holders = new Set(status?.holders.map((holder) => holder.coordinatorId) ?? [])
      const total = status?.coordinators.length ?? 0
      const coordinators: Array<CoordinatorView> = (status?.coordinators ?? []).map((c) => {
        const queue = runtime.feedback?.queue(c.coordinatorId)
        const holding = holders.has(c.coordinatorId)
        return {
          id: c.coordinatorId,
          level: c.level,
          queueSize: queue?.queueSize ?? null,
          capacity: queue?.capacity ?? null,
          sinceMs: c.since,
          lastReportAgeSec: Math.max(0, Math.round((now - c.lastReport) / 100) / 10),
          holding: holding ? runtime.provider : null,
          reason: holding
            ? `worst of ${total} coordinator${total === 1 ? "" : "s"}: ${c.level}` +
              (holders.size > 1 ? ` (with ${holders.size - 1} more)` : "")
            : null
        }
      })
      // each provider's state is read once above; the health document reads the runtime's provider
      // once more (its API takes no state: with shared buckets that is one more Redis EVAL per tick)
      const health = yield* runtime.health
      const reasons = health.components.flatMap((component) =>
        component.state === "healthy"
          ? []
          : [`${component.name} ${component.state}: ${component.details["reason"] ?? "no reason given"}`]
      )
      return {
        ts: now,
        version,
        providers,
        feedback: { enabled: runtime.feedbackEnabled, provider: runtime.provider, level: status?.level ?? null },
        coordinators,
        health: { state: health.state, reasons },
        rejections: options.rejections.recent(),
        clients
      }
    })

    const history = new Map<string, Array<Point>>()
    // replay 1: a client that subscribes gets the last snapshot at once, then every next one.
    // Each item carries the run it was made in: a console opened after none was keeps no
    // snapshot left from the last run (the replayed one would be minutes old).
    const pubsub = yield* PubSub.sliding<Published>({ capacity: 2, replay: 1 })
    const closing = yield* Deferred.make<void>()
    yield* Effect.addFinalizer(() => Effect.andThen(Deferred.succeed(closing, undefined), PubSub.shutdown(pubsub)))

    // open while a console is: the producer waits on it before every tick
    const running = yield* Latch.make(false)
    let run = 0
    let ticks = 0
    let latest: ConsoleSnapshot | undefined

    const encoder = new TextEncoder()
    const keepAlive = ": keep-alive\n\n"
    const tick = Effect.gen(function*() {
      const snap = yield* snapshot
      if (clients === 0) return // the last console left while it was read
      latest = snap
      for (const provider of snap.providers) {
        let points = history.get(provider.name)
        if (points === undefined) history.set(provider.name, points = [])
        points.push([snap.ts, provider.rate, provider.scale])
        if (points.length > historyPoints) points.shift()
      }
      // a snapshot every 500 ms keeps the stream busy; the comment line is for proxies that want to see
      // one (every client also gets one when it connects, so at most 15 s apart whenever it joined)
      const comment = ++ticks % keepAliveTicks === 0 ? keepAlive : ""
      yield* PubSub.publish(pubsub, { run, bytes: encoder.encode(`${comment}data: ${JSON.stringify(snap)}\n\n`) })
    })
    yield* Effect.forkScoped(
      Effect.forever(Effect.andThen(running.await, Effect.andThen(tick, Effect.sleep(intervalMs))))
    )

    const preamble = Effect.sync(() =>
      encoder.encode(
        `retry: 2000\n${keepAlive}event: history\ndata: ${
          JSON.stringify({ intervalMs, points: Object.fromEntries(history) })
        }\n\n`
      )
    )
    const open = () =>
      Effect.sync(() => {
        if (clients >= maxClients) return undefined
        if (clients++ === 0) {
          // the first console: a new run, the producer ticks at once
          run++
          ticks = 0
          latest = undefined
          running.openUnsafe()
        }
        const mine = run
        let released = false
        const release = () => {
          if (released) return
          released = true
          if (--clients === 0) {
            running.closeUnsafe()
            latest = undefined
          }
        }
        const body = Stream.concat(
          Stream.fromEffect(preamble),
          Stream.fromPubSub(pubsub).pipe(
            Stream.filter((item) => item.run === mine),
            Stream.map((item) => item.bytes)
          )
        ).pipe(
          Stream.interruptWhen(Deferred.await(closing)),
          Stream.ensuring(Effect.sync(release))
        )
        return { body, release }
      })

    return { snapshot, latest: () => latest, clients: () => clients, maxClients, open }
  })

interface Published {
  readonly run: number
  readonly bytes: Uint8Array
}
