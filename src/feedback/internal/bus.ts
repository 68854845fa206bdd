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
 * `consume` delivers in one of two ways. Queued (the default): a fiber per
 * consumer takes from its PubSub subscription. Inline: `publish` runs the
 * handler at once in a fiber started synchronously (no PubSub, no scheduler
 * hop); only a run that has to wait makes later envelopes queue, in a sliding
 * buffer of the consumer's own, read through the same gap recovery.
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
import type * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as PubSub from "effect/PubSub"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import type { BackpressureLevel } from "../../contracts/BackpressureLevel.ts"
import type { FeedbackEvent } from "../../contracts/FeedbackEvent.ts"
import { tracingEnabled } from "../../internal/tracing.ts"
import * as Cells from "../../metrics/internal/cells.ts"
import { metricDefinitions } from "../../metrics/MetricDefinitions.ts"
import type { FeedbackBus, FeedbackBusOptions, FeedbackConsumeOptions, FeedbackSubscription } from "../FeedbackBus.ts"
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

/**
 * A consumer in inline delivery. `publish` hands it each envelope; while no
 * run of its handler is in flight, the handler runs at once in a fiber
 * started synchronously, so a handler that never waits is done before
 * `publish` returns. A run that has to wait (an async step, a yield) carries
 * on in its fiber without the publisher; the envelopes published meanwhile
 * queue in a sliding buffer of `bufferSize`, and are handed to the handler in
 * order (gaps filled from the latest-event cache, like a PubSub subscriber's)
 * when the run completes.
 */
class InlineConsumer {
  readonly #runFork: <E>(effect: Effect.Effect<void, E>) => Fiber.Fiber<void, E>
  readonly #step: Step<unknown>
  readonly #cursor: Cursor
  readonly #capacity: number
  #backlog: Array<Envelope | undefined> = []
  #head = 0
  #size = 0
  /** A run of the handler is in progress (inline, or waiting in `#waiting`). */
  #running = false
  #waiting: Fiber.Fiber<void, unknown> | undefined = undefined
  /** The envelope the waiting run handles. */
  #waitingFor: Envelope | undefined = undefined
  #closed = false

  constructor(
    runFork: <E>(effect: Effect.Effect<void, E>) => Fiber.Fiber<void, E>,
    step: Step<unknown>,
    cursor: Cursor,
    capacity: number
  ) {
    this.#runFork = runFork
    this.#step = step
    this.#cursor = cursor
    this.#capacity = capacity
  }

  offer(envelope: Envelope): void {
    // a consumer added while an envelope is handed out is not offered what came before it
    if (this.#closed || !this.#cursor.isNew(envelope)) return
    if (this.#running) this.#enqueue(envelope)
    else this.#run(this.#cursor.deliver(envelope))
  }

  /** Stops handing out envelopes; answers the run still waiting, to interrupt. */
  close(): Fiber.Fiber<void, unknown> | undefined {
    this.#closed = true
    this.#backlog = []
    this.#size = 0
    return this.#waiting
  }

  #run(first: Envelope): void {
    this.#running = true
    for (let next: Envelope | undefined = first; next !== undefined && !this.#closed; next = this.#next()) {
      const fiber = this.#runFork(this.#effectOf(next))
      const exit = fiber.pollUnsafe()
      if (exit === undefined) {
        this.#waiting = fiber
        this.#waitingFor = next
        fiber.addObserver(this.#resume)
        return
      }
      if (exit._tag === "Failure") this.#failed(next, exit.cause)
    }
    this.#running = false
  }

  // a handler that throws instead of returning an effect fails this run, never `publish`
  #effectOf(envelope: Envelope): Effect.Effect<void, unknown> {
    try {
      return this.#step.run(envelope)
    } catch (defect) {
      return Effect.die(defect)
    }
  }

  readonly #resume = (exit: Exit.Exit<void, unknown>): void => {
    const envelope = this.#waitingFor!
    this.#waiting = this.#waitingFor = undefined
    if (exit._tag === "Failure") this.#failed(envelope, exit.cause)
    const next = this.#closed ? undefined : this.#next()
    if (next === undefined) this.#running = false
    else this.#run(next)
  }

  // counted and logged like a queued consumer's failure; an interrupted run (the
  // consumer closing) is no failure of the handler
  #failed(envelope: Envelope, cause: Cause.Cause<unknown>): void {
    if (Cause.hasInterruptsOnly(cause)) return
    const log = this.#step.failed(envelope, cause)
    if (log !== undefined) this.#runFork(log)
  }

  #next(): Envelope | undefined {
    const recovered = this.#cursor.pending()
    if (recovered !== undefined) return recovered
    if (this.#size === 0) return undefined
    const envelope = this.#backlog[this.#head]!
    this.#backlog[this.#head] = undefined
    this.#head = (this.#head + 1) % this.#capacity
    this.#size--
    return this.#cursor.deliver(envelope)
  }

  // sliding: when full, the oldest gives way (the cursor sees the gap)
  #enqueue(envelope: Envelope): void {
    const tail = (this.#head + this.#size) % this.#capacity
    this.#backlog[tail] = envelope
    if (this.#size < this.#capacity) this.#size++
    else this.#head = (this.#head + 1) % this.#capacity
  }
}

/** What a consumer does with an envelope, and with the failure of a run. */
interface Step<E> {
  readonly run: (envelope: Envelope) => Effect.Effect<void, E>
  /** Counts a failure; the log line to write, if this one is not suppressed. */
  readonly failed: (envelope: Envelope, cause: Cause.Cause<E>) => Effect.Effect<void> | undefined
}

/** A subscriber's position in the sequence of envelopes. */
interface Cursor {
  /** The envelope to hand out when `envelope` is the next one read (a gap first yields what the cache recovers). */
  readonly deliver: (envelope: Envelope) => Envelope
  /** An envelope recovered for an earlier gap, still to be handed out. */
  readonly pending: () => Envelope | undefined
  /** Whether `envelope` was published after this subscriber came. */
  readonly isNew: (envelope: Envelope) => boolean
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

    // The consumers in inline delivery, handed every envelope in `publish`. A
    // handler publishing from inside an inline run does not overtake the event
    // being handed out: its envelope waits here until every consumer has had
    // the current one, so each consumer still sees the sequence in order.
    const inline = new Set<InlineConsumer>()
    const handOut: Array<Envelope> = []
    let handingOut = false
    const deliverInline = (envelope: Envelope): void => {
      if (handingOut) {
        handOut.push(envelope)
        return
      }
      handingOut = true
      try {
        for (const consumer of inline) consumer.offer(envelope)
        for (let next = handOut.shift(); next !== undefined; next = handOut.shift()) {
          for (const consumer of inline) consumer.offer(next)
        }
      } finally {
        handingOut = false
      }
    }

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
        const published = PubSub.publishUnsafe(pubsub, envelope)
        if (inline.size > 0) deliverInline(envelope)
        return published ? Effect.void : Effect.asVoid(PubSub.publish(pubsub, envelope))
      })
    const publish: (event: FeedbackEvent) => Effect.Effect<void> = tracing
      ? (event) =>
        Effect.withFiber((fiber) => publishUnder(event, Context.getOrUndefined(fiber.context, Tracer.ParentSpan)))
      : (event) => publishUnder(event, undefined)

    // One subscriber's position in the sequence: the next envelope to hand it,
    // with the cache's latest filling any gap (events the buffer slid past).
    const makeCursor = (): Cursor => {
      const from = seq
      let lastSeq = seq
      let recovered: Array<Envelope> = []
      const deliver = (envelope: Envelope): Envelope => {
        const gapStart = lastSeq
        lastSeq = envelope.seq
        if (envelope.seq === gapStart + 1) return envelope
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
      return {
        deliver,
        pending: () => recovered.length > 0 ? recovered.shift() : undefined,
        isNew: (envelope) => envelope.seq > from
      }
    }

    // a subscriber's envelopes in order, with the cache's latest filling any gap
    const subscribeEnvelopes: Effect.Effect<Effect.Effect<Envelope>, never, Scope.Scope> = Effect.map(
      PubSub.subscribe(pubsub),
      (subscription) => {
        const cursor = makeCursor()
        return Effect.suspend(() => {
          const pending = cursor.pending()
          return pending !== undefined ? Effect.succeed(pending) : Effect.map(PubSub.take(subscription), cursor.deliver)
        })
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

    // What a consumer does with one envelope: the handler, in the trace the event was
    // published under; and with a failure: count it, and log it (at most once per interval).
    const makeStep = <E>(
      name: string,
      handler: (event: FeedbackEvent) => Effect.Effect<void, E>
    ): Step<E> => {
      const failures = errors(name)
      // a subscriber failing on every event must not write a line per event
      const logLimit = LogLimit.make()
      return {
        run: (envelope) =>
          envelope.span === undefined
            ? handler(envelope.event)
            : Effect.withParentSpan(handler(envelope.event), envelope.span, { captureStackTrace: false }),
        failed: (envelope, cause) => {
          failures.value++
          const suppressed = logLimit(clock.currentTimeMillisUnsafe())
          return suppressed === undefined ? undefined : Effect.logError(
            `feedback subscriber ${name} failed on ${envelope.event.coordinatorId}${
              LogLimit.suppressedNote(suppressed)
            }`,
            cause
          )
        }
      }
    }

    const consume = <E>(
      name: string,
      handler: (event: FeedbackEvent) => Effect.Effect<void, E>,
      consumeOptions?: FeedbackConsumeOptions
    ): Effect.Effect<void, never, Scope.Scope> => {
      const step = makeStep(name, handler)
      if (consumeOptions?.delivery === "inline") {
        return Effect.flatMap(Effect.context<Scope.Scope>(), (context) => {
          const consumer = new InlineConsumer(
            Effect.runForkWith(context),
            step as Step<unknown>,
            makeCursor(),
            bufferSize
          )
          inline.add(consumer)
          return Effect.addFinalizer(() =>
            Effect.suspend(() => {
              inline.delete(consumer)
              const running = consumer.close()
              return running === undefined ? Effect.void : Fiber.interrupt(running)
            })
          )
        })
      }
      return Effect.flatMap(subscribeEnvelopes, (take) => {
        const loop = Effect.flatMap(take, (envelope) =>
          Effect.catchCause(step.run(envelope), (cause) =>
            // only interrupts: the consumer itself is being stopped
            Cause.hasInterruptsOnly(cause)
              ? Effect.failCause(cause)
              : Effect.suspend(() => step.failed(envelope, cause) ?? Effect.void)))
        // take suspends when there is nothing to do; no need to yield between events as well
        return Effect.asVoid(Effect.forkScoped(Effect.forever(loop, { disableYield: true })))
      })
    }

    return { publish, forget, subscribe, consume }
  })
