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
 * When a tracer is installed (not the native one), each envelope also
 * carries the span it was published under, so the subscribers of `consume`
 * (the handler, in another fiber) continue the trace of the receipt. Without
 * one, nothing is looked up or carried.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as PubSub from "effect/PubSub"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import type { BackpressureLevel } from "../../contracts/BackpressureLevel.ts"
import type { FeedbackEvent } from "../../contracts/FeedbackEvent.ts"
import { tracingEnabled } from "../../internal/tracing.ts"
import * as Cells from "../../metrics/internal/cells.ts"
import { metricDefinitions } from "../../metrics/MetricDefinitions.ts"
import type { FeedbackBus, FeedbackBusOptions, FeedbackSubscription } from "../FeedbackBus.ts"
import * as LogLimit from "./logLimit.ts"
import { type Check, fields, optional, positiveInteger } from "./options.ts"
import { Entry, Table } from "./table.ts"

interface Envelope {
  readonly seq: number
  readonly event: FeedbackEvent
  /** The span the event was published under; only when tracing is on. */
  readonly span: Tracer.AnySpan | undefined
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
    // read once: with the native tracer (no exporter) spans are never looked up or carried
    const tracing = yield* tracingEnabled
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

    const publishUnder = (event: FeedbackEvent, span: Tracer.AnySpan | undefined): Effect.Effect<void> =>
      Effect.suspend(() => {
        const envelope: Envelope = { seq: ++seq, event, span }
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
    const publish: (event: FeedbackEvent) => Effect.Effect<void> = tracing
      ? (event) =>
        Effect.withFiber((fiber) => publishUnder(event, Context.getOrUndefined(fiber.context, Tracer.ParentSpan)))
      : (event) => publishUnder(event, undefined)

    // a subscriber's envelopes in order, with the cache's latest filling any gap
    const subscribeEnvelopes: Effect.Effect<Effect.Effect<Envelope>, never, Scope.Scope> = Effect.map(
      PubSub.subscribe(pubsub),
      (subscription) => {
        let lastSeq = seq
        let recovered: Array<Envelope> = []
        const deliver = (envelope: Envelope): Envelope => {
          const gapStart = lastSeq
          lastSeq = envelope.seq
          if (envelope.seq === gapStart + 1) return envelope
          // the PubSub slid past events this subscriber had not read
          const missed: Array<Envelope> = []
          for (const { envelope: candidate } of latest.values()) {
            if (candidate.seq > gapStart && candidate.seq < envelope.seq) missed.push(candidate)
          }
          missed.sort((a, b) => a.seq - b.seq)
          dropped.value += envelope.seq - gapStart - 1 - missed.length
          if (missed.length === 0) return envelope
          recovered = missed
          recovered.push(envelope)
          return recovered.shift()!
        }
        return Effect.suspend(() =>
          recovered.length > 0 ? Effect.succeed(recovered.shift()!) : Effect.map(PubSub.take(subscription), deliver)
        )
      }
    )

    const subscribe: Effect.Effect<FeedbackSubscription, never, Scope.Scope> = Effect.map(
      subscribeEnvelopes,
      (takeEnvelope) => {
        const take: Effect.Effect<FeedbackEvent> = Effect.map(takeEnvelope, (envelope) => envelope.event)
        return { take, stream: Stream.fromEffectRepeat(take) }
      }
    )

    const errors = (name: string) => cells.counter(metricDefinitions.subscriberErrors, { subscriber: name })

    const consume = <E>(
      name: string,
      handler: (event: FeedbackEvent) => Effect.Effect<void, E>
    ): Effect.Effect<void, never, Scope.Scope> =>
      Effect.flatMap(subscribeEnvelopes, (take) => {
        const failures = errors(name)
        // a subscriber failing on every event must not write a line per event
        const logLimit = LogLimit.make()
        // the handler continues the trace the event was published under
        const run = (envelope: Envelope): Effect.Effect<void, E> =>
          envelope.span === undefined
            ? handler(envelope.event)
            : Effect.withParentSpan(handler(envelope.event), envelope.span, { captureStackTrace: false })
        const step = Effect.flatMap(take, (envelope) =>
          run(envelope).pipe(
            Effect.catchCause((cause) =>
              Cause.hasInterruptsOnly(cause) ? Effect.failCause(cause) : Effect.suspend(() => {
                failures.value++
                const suppressed = logLimit(clock.currentTimeMillisUnsafe())
                return suppressed === undefined ? Effect.void : Effect.logError(
                  `feedback subscriber ${name} failed on ${envelope.event.coordinatorId}${
                    LogLimit.suppressedNote(suppressed)
                  }`,
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
