/**
 * FeedbackBus on a sliding `PubSub` plus a "latest event per coordinator"
 * cache. Every envelope carries a sequence number; a subscriber that finds
 * a gap (the PubSub slid past events it had not read) first receives, from
 * the cache, the latest event of every coordinator whose latest fell in the
 * gap. So dropping is safe: what is lost is only ever superseded.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as PubSub from "effect/PubSub"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { FeedbackEvent } from "../../contracts/FeedbackEvent.ts"
import * as Cells from "../../metrics/internal/cells.ts"
import type { FeedbackBus, FeedbackBusOptions, FeedbackSubscription } from "../FeedbackBus.ts"

interface Envelope {
  readonly seq: number
  readonly event: FeedbackEvent
}

/** @internal */
export const make = (
  options: FeedbackBusOptions = {}
): Effect.Effect<FeedbackBus["Service"], never, Scope.Scope> =>
  Effect.gen(function*() {
    const bufferSize = options.bufferSize ?? 1024
    const pubsub = yield* PubSub.sliding<Envelope>(bufferSize)
    const latest = new Map<string, Envelope>()
    let seq = 0
    const cells = Cells.make(yield* Effect.context<never>())
    yield* Effect.addFinalizer(() => Effect.sync(cells.dispose))
    const dropped = cells.counter(
      "pipeline_feedback_events_dropped_total",
      "Feedback events a slow subscriber never received (superseded by a later event of the same coordinator)",
      {}
    )
    const receivedBySource = new Map<string, Record<string, Cells.Cell>>()
    const received = (event: FeedbackEvent): Cells.Cell => {
      let byLevel = receivedBySource.get(event.coordinatorId)
      if (byLevel === undefined) {
        byLevel = {}
        receivedBySource.set(event.coordinatorId, byLevel)
      }
      return byLevel[event.level] ??= cells.counter(
        "pipeline_feedback_events_received_total",
        "Feedback events published on this runtime's bus",
        { source: event.coordinatorId, level: event.level }
      )
    }

    const publish = (event: FeedbackEvent): Effect.Effect<void> =>
      Effect.suspend(() => {
        const envelope: Envelope = { seq: ++seq, event }
        latest.set(event.coordinatorId, envelope)
        received(event).value++
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
          for (const candidate of latest.values()) {
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

    const errors = (name: string) =>
      cells.counter(
        "pipeline_feedback_subscriber_errors_total",
        "Feedback events whose subscriber failed (the subscriber keeps receiving)",
        { subscriber: name }
      )

    const consume = <E>(
      name: string,
      handler: (event: FeedbackEvent) => Effect.Effect<void, E>
    ): Effect.Effect<void, never, Scope.Scope> =>
      Effect.flatMap(subscribe, (subscription) => {
        const failures = errors(name)
        const step = Effect.flatMap(subscription.take, (event) =>
          handler(event).pipe(
            Effect.catchCause((cause) =>
              Cause.hasInterruptsOnly(cause) ? Effect.failCause(cause) : Effect.suspend(() => {
                failures.value++
                return Effect.logError(`feedback subscriber ${name} failed on ${event.coordinatorId}`, cause)
              })
            )
          ))
        // take suspends when there is nothing to do; no need to yield between events as well
        return Effect.asVoid(Effect.forkScoped(Effect.forever(step, { disableYield: true })))
      })

    return { publish, subscribe, consume }
  })
