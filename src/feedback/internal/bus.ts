/**
 * FeedbackBus on a sliding `PubSub` plus a "latest event per coordinator"
 * cache. Every envelope carries a sequence number; a subscriber that finds
 * a gap (the PubSub slid past events it had not read) first receives, from
 * the cache, the latest event of every coordinator whose latest fell in the
 * gap. So dropping is safe: what is lost is only ever superseded.
 *
 * The cache holds at most `maxCoordinators` coordinators (a `Table`): a new
 * one takes the place of the longest-idle one at `ok`, or, when every place
 * holds `soft` or `hard`, is not cached at all (its events are still
 * delivered live). A coordinator leaves with its metric series.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as PubSub from "effect/PubSub"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { BackpressureLevel } from "../../contracts/BackpressureLevel.ts"
import type { FeedbackEvent } from "../../contracts/FeedbackEvent.ts"
import * as Cells from "../../metrics/internal/cells.ts"
import { metricDefinitions } from "../../metrics/MetricDefinitions.ts"
import type { FeedbackBus, FeedbackBusOptions, FeedbackSubscription } from "../FeedbackBus.ts"
import * as LogLimit from "./logLimit.ts"
import { type Check, fields, optional, positiveInteger } from "./options.ts"
import { Entry, Table } from "./table.ts"

interface Envelope {
  readonly seq: number
  readonly event: FeedbackEvent
}

/** A coordinator in the cache: its latest event and its received series. */
class Cached extends Entry {
  envelope: Envelope
  readonly received: Partial<Record<BackpressureLevel, Cells.Cell>> = {}
  constructor(envelope: Envelope) {
    super(envelope.event.coordinatorId, envelope.event.level)
    this.envelope = envelope
  }
}

/** @internal */
export const checkOptions: Check = optional(fields({
  bufferSize: optional(positiveInteger),
  maxCoordinators: optional(positiveInteger)
}))

/** @internal */
export const make = (
  options: FeedbackBusOptions = {}
): Effect.Effect<FeedbackBus["Service"], never, Scope.Scope> =>
  Effect.gen(function*() {
    const bufferSize = options.bufferSize ?? 1024
    const pubsub = yield* PubSub.sliding<Envelope>(bufferSize)
    const clock = yield* Clock.Clock
    let seq = 0
    const cells = Cells.make(yield* Effect.context<never>())
    yield* Effect.addFinalizer(() => Effect.sync(cells.dispose))
    const dropped = cells.counter(metricDefinitions.eventsDropped, {})
    const uncached = cells.counter(metricDefinitions.eventsUncached, {})
    const removeSeries = (cached: Cached): void => {
      for (const level in cached.received) cells.remove(cached.received[level as BackpressureLevel]!)
    }
    const latest = new Table<Cached>(options.maxCoordinators ?? 256, removeSeries)
    const forget = (coordinatorId: string): Effect.Effect<boolean> =>
      Effect.sync(() => {
        const cached = latest.get(coordinatorId)
        if (cached === undefined || !latest.remove(cached)) return false
        removeSeries(cached)
        return true
      })
    const received = (cached: Cached, level: BackpressureLevel): Cells.Cell =>
      cached.received[level] ??= cells.counter(
        metricDefinitions.eventsReceived,
        { source: cached.coordinatorId, level }
      )

    const publish = (event: FeedbackEvent): Effect.Effect<void> =>
      Effect.suspend(() => {
        const envelope: Envelope = { seq: ++seq, event }
        const cached = latest.get(event.coordinatorId)
        if (cached !== undefined) {
          cached.envelope = envelope
          latest.report(cached, event.level)
          received(cached, event.level).value++
        } else if (latest.makeRoom()) {
          const added = new Cached(envelope)
          latest.add(added)
          received(added, event.level).value++
        } else {
          uncached.value++
        }
        return PubSub.publishUnsafe(pubsub, envelope) ? Effect.void : Effect.asVoid(PubSub.publish(pubsub, envelope))
      })

    const subscribe: Effect.Effect<FeedbackSubscription, never, Scope.Scope> = Effect.map(
      PubSub.subscribe(pubsub),
      (subscription) => {
        let lastSeq = seq
        let recovered: Array<FeedbackEvent> = []
        const deliver = (envelope: Envelope): FeedbackEvent => {
          const gapStart = lastSeq
          lastSeq = envelope.seq
          if (envelope.seq === gapStart + 1) return envelope.event
          // the PubSub slid past events this subscriber had not read
          const missed: Array<Envelope> = []
          for (const { envelope: candidate } of latest.values()) {
            if (candidate.seq > gapStart && candidate.seq < envelope.seq) missed.push(candidate)
          }
          missed.sort((a, b) => a.seq - b.seq)
          dropped.value += envelope.seq - gapStart - 1 - missed.length
          if (missed.length === 0) return envelope.event
          recovered = missed.map((m) => m.event)
          recovered.push(envelope.event)
          return recovered.shift()!
        }
        const take: Effect.Effect<FeedbackEvent> = Effect.suspend(() =>
          recovered.length > 0 ? Effect.succeed(recovered.shift()!) : Effect.map(PubSub.take(subscription), deliver)
        )
        return { take, stream: Stream.fromEffectRepeat(take) }
      }
    )

    const errors = (name: string) => cells.counter(metricDefinitions.subscriberErrors, { subscriber: name })

    const consume = <E>(
      name: string,
      handler: (event: FeedbackEvent) => Effect.Effect<void, E>
    ): Effect.Effect<void, never, Scope.Scope> =>
      Effect.flatMap(subscribe, (subscription) => {
        const failures = errors(name)
        // a subscriber failing on every event must not write a line per event
        const logLimit = LogLimit.make()
        const step = Effect.flatMap(subscription.take, (event) =>
          handler(event).pipe(
            Effect.catchCause((cause) =>
              Cause.hasInterruptsOnly(cause) ? Effect.failCause(cause) : Effect.suspend(() => {
                failures.value++
                const suppressed = logLimit(clock.currentTimeMillisUnsafe())
                return suppressed === undefined ? Effect.void : Effect.logError(
                  `feedback subscriber ${name} failed on ${event.coordinatorId}${LogLimit.suppressedNote(suppressed)}`,
                  cause
                )
              })
            )
          ))
        // take suspends when there is nothing to do; no need to yield between events as well
        return Effect.asVoid(Effect.forkScoped(Effect.forever(step, { disableYield: true })))
      })

    return { publish, forget, subscribe, consume }
  })
