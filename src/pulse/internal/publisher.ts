/**
 * The Pulse publisher's queue and drain fiber. The queue is a map from
 * coordinator id to its latest unsent event, in first-queued order: a newer
 * event of a queued coordinator replaces the older one in place (so a busy
 * coordinator does not lose its turn). The fiber takes up to `batchSize`
 * events at a time, writes them concurrently (node-redis pipelines them on
 * one connection, in order), and puts a failed one back unless its
 * coordinator has queued a newer one meanwhile. A coordinator is never in
 * two writes at once, so its entries reach the stream in publish order.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Redis from "effect/persistence/Redis"
import type * as Scope from "effect/Scope"
import type { FeedbackEvent } from "../../contracts/FeedbackEvent.ts"
import * as LogLimit from "../../feedback/internal/logLimit.ts"
import {
  arrayOf,
  type Check,
  fields,
  nonEmptyString,
  optional,
  positiveDuration,
  positiveInteger
} from "../../feedback/internal/options.ts"
import * as Cells from "../../metrics/internal/cells.ts"
import * as Histogram from "../../metrics/internal/histogram.ts"
import { metricDefinitions } from "../../metrics/MetricDefinitions.ts"
import { encodeEntry, streamKey } from "../PulseCodec.ts"
import type { PulsePublisher, PulsePublisherOptions } from "../PulsePublisher.ts"
import { backoff, createGroup, STREAM_LABEL } from "./streams.ts"

/** Python's `pulse_publish_latency_ms` buckets (defined with the metric). @internal */
export const LATENCY_BOUNDARIES_MS: ReadonlyArray<number> = metricDefinitions.pulsePublishLatency.boundaries

const track: Check = (option, value) =>
  value === "v1" || value === "v2" ? undefined : { option, value, expected: "\"v1\" or \"v2\"" }

const fn: Check = (option, value) => typeof value === "function" ? undefined : { option, value, expected: "a function" }

/** @internal */
export const checkOptions: Check = optional(fields({
  namespace: optional(nonEmptyString),
  track: optional(track),
  maxLen: optional(positiveInteger),
  groups: optional(arrayOf(nonEmptyString)),
  headers: optional(fn),
  maxQueued: optional(positiveInteger),
  batchSize: optional(positiveInteger),
  timeout: optional(positiveDuration),
  closeTimeout: optional(positiveDuration)
}))

/** The Python store's headers: the queue's fill ratio, 6 decimals (`f"{u:.6f}"`). */
const utilization = (event: FeedbackEvent): Readonly<Record<string, string>> => ({
  utilization: (event.queueSize / event.capacity).toFixed(6)
})

interface Item {
  readonly event: FeedbackEvent
  /** Epoch ms of `publish`: the envelope `ts`. */
  readonly ts: number
  /** Monotonic ms of `publish`, for the latency histogram. */
  readonly at: number
}

/** @internal */
export const make = (
  options: PulsePublisherOptions
): Effect.Effect<PulsePublisher["Service"], never, Redis.Redis | Scope.Scope> =>
  Effect.gen(function*() {
    const redis = yield* Redis.Redis
    const clock = yield* Clock.Clock
    const context = yield* Effect.context<never>()
    const key = streamKey(options.namespace ?? "mdp")
    const schemaTrack = options.track ?? "v1"
    const maxLen = String(options.maxLen ?? 10_000)
    const groups = options.groups ?? ["pipeline"]
    const headersOf = options.headers ?? utilization
    const maxQueued = options.maxQueued ?? 10_000
    const batchSize = options.batchSize ?? 256
    const writeTimeout = Duration.fromInputUnsafe(options.timeout ?? "5 seconds")
    const closeTimeout = Duration.fromInputUnsafe(options.closeTimeout ?? "2 seconds")

    const cells = Cells.make(context)
    const outcome = (name: "success" | "error" | "superseded" | "dropped") =>
      cells.counter(metricDefinitions.pulsePublished, {
        stream: STREAM_LABEL,
        track: schemaTrack,
        outcome: name
      })
    const succeeded = outcome("success")
    const failed = outcome("error")
    let superseded: Cells.Cell | undefined
    let dropped: Cells.Cell | undefined
    const latency = Histogram.make(LATENCY_BOUNDARIES_MS)
    const histogram = Cells.registerReading(
      context,
      metricDefinitions.pulsePublishLatency,
      { stream: STREAM_LABEL, track: schemaTrack },
      () => Histogram.state(latency, LATENCY_BOUNDARIES_MS)
    )
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        histogram.remove()
        cells.dispose()
      })
    )
    const observe = (ms: number): void => Histogram.observe(latency, LATENCY_BOUNDARIES_MS, ms)

    const nowMs = (): number => Number(clock.monotonicTimeNanosUnsafe()) / 1e6
    const queue = new Map<string, Item>()
    let inFlight = 0
    let wake: Deferred.Deferred<void> | undefined
    let idle: Array<Deferred.Deferred<void>> = []
    let closed = false
    const dropLog = LogLimit.make()
    const errorLog = LogLimit.make()
    const groupLog = LogLimit.make()

    const createGroups = Effect.forEach(
      groups,
      (group) => Effect.timeout(createGroup(redis.send, key, group, "0"), writeTimeout),
      { discard: true }
    )
    let groupsCreated = groups.length === 0
    const ensureGroups = Effect.suspend(() =>
      groupsCreated ? Effect.void : Effect.exit(createGroups).pipe(
        Effect.flatMap((exit) => {
          if (Exit.isSuccess(exit)) {
            groupsCreated = true
            return Effect.void
          }
          const suppressed = groupLog(clock.currentTimeMillisUnsafe())
          return suppressed === undefined ? Effect.void : Effect.logWarning(
            `pulse: could not create group(s) ${groups.join(", ")} on ${key} yet; retrying before the next write` +
              LogLimit.suppressedNote(suppressed),
            Cause.squash(exit.cause)
          )
        })
      )
    )

    const write = (body: string) =>
      redis.send("XADD", key, "MAXLEN", "~", maxLen, "*", "data", body).pipe(Effect.timeout(writeTimeout))

    const drain = Effect.gen(function*() {
      let attempt = 0
      for (;;) {
        if (queue.size === 0) {
          // armed before the flushers resume: one of them may publish at once
          const next = Deferred.makeUnsafe<void>()
          wake = next
          const flushed = idle
          idle = []
          for (const waiter of flushed) Deferred.doneUnsafe(waiter, Exit.void)
          yield* Deferred.await(next)
          continue
        }
        yield* ensureGroups
        const batch: Array<Item> = []
        const bodies: Array<string> = []
        for (const [id, item] of queue) {
          queue.delete(id)
          let body: string
          try {
            body = encodeEntry(item.event, {
              ts: item.ts / 1000,
              track: schemaTrack,
              headers: headersOf(item.event),
              key: item.event.coordinatorId
            })
          } catch (error) {
            // not an event of the contract (a non-finite ts): it can never be written
            failed.value++
            yield* Effect.logError(`pulse: cannot encode the event of ${id}, not published`, error)
            continue
          }
          batch.push(item)
          bodies.push(body)
          if (batch.length >= batchSize) break
        }
        inFlight = batch.length
        const exits = yield* Effect.forEach(bodies, (body) => Effect.exit(write(body)), { concurrency: "unbounded" })
        inFlight = 0
        let failures = 0
        let firstFailure: Cause.Cause<unknown> | undefined
        const now = nowMs()
        for (let i = 0; i < batch.length; i++) {
          const item = batch[i]!
          const exit = exits[i]!
          if (Exit.isSuccess(exit)) {
            succeeded.value++
            observe(Math.max(0, now - item.at))
            continue
          }
          failed.value++
          failures++
          firstFailure ??= exit.cause
          const id = item.event.coordinatorId
          // retried unless its coordinator has queued a newer event meanwhile
          if (queue.has(id)) (superseded ??= outcome("superseded")).value++
          else queue.set(id, item)
        }
        if (failures === 0) {
          attempt = 0
          continue
        }
        // the server may have come back empty: create the groups again before the next write
        groupsCreated = groups.length === 0
        const suppressed = errorLog(clock.currentTimeMillisUnsafe())
        if (suppressed !== undefined) {
          yield* Effect.logWarning(
            `pulse: ${failures} of ${batch.length} writes to ${key} failed; retrying` +
              LogLimit.suppressedNote(suppressed),
            Cause.squash(firstFailure!)
          )
        }
        yield* Effect.sleep(backoff(attempt++, 50, 6, 2000))
      }
    })

    yield* Effect.exit(createGroups).pipe(Effect.map((exit) => {
      groupsCreated ||= Exit.isSuccess(exit)
    }))
    yield* Effect.forkScoped(drain)

    const flush: Effect.Effect<void> = Effect.suspend(() => {
      if (queue.size === 0 && inFlight === 0) return Effect.void
      const waiter = Deferred.makeUnsafe<void>()
      idle.push(waiter)
      return Deferred.await(waiter)
    })

    // runs before the drain fiber is interrupted (finalizers run in reverse order)
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        return Effect.ignore(Effect.timeout(flush, closeTimeout))
      })
    )

    const publish = (event: FeedbackEvent): Effect.Effect<void> =>
      Effect.suspend(() => {
        const id = event.coordinatorId
        if (!closed) {
          const item: Item = { event, ts: clock.currentTimeMillisUnsafe(), at: nowMs() }
          if (queue.has(id)) {
            ;(superseded ??= outcome("superseded")).value++
            queue.set(id, item)
          } else if (queue.size < maxQueued) {
            queue.set(id, item)
          } else {
            return dropping(id, `the queue holds ${maxQueued} coordinators`)
          }
          if (wake !== undefined) {
            Deferred.doneUnsafe(wake, Exit.void)
            wake = undefined
          }
          return Effect.void
        }
        return dropping(id, "the publisher is closed")
      })

    const dropping = (id: string, why: string): Effect.Effect<void> => {
      ;(dropped ??= outcome("dropped")).value++
      const suppressed = dropLog(clock.currentTimeMillisUnsafe())
      return suppressed === undefined ? Effect.void : Effect.logWarning(
        `pulse: event of ${JSON.stringify(id)} not published: ${why}${LogLimit.suppressedNote(suppressed)}`
      )
    }

    return { publish, flush, stream: key }
  })
