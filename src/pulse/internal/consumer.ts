/**
 * The Pulse consumer's loops. One fiber reads on a reserved connection:
 * after (re)connecting it creates the group (BUSYGROUP is fine), drains its
 * own pending entries (`XREADGROUP … 0`), then blocks on new ones (`>`).
 * Another claims, every `claimInterval`, entries pending longer than
 * `claimIdle` (`XAUTOCLAIM`, on the shared connection) and refreshes the
 * pending gauge. Both hand their batches to `handleBatch`, one batch at a time
 * (a one-permit semaphore), so entries are handled strictly one after the
 * other.
 *
 * With a tracer installed (not the native one), each entry handed to the
 * handler is a `feedback.receive` span (`feedback.transport` `pulse`, the
 * entry id, coordinator, level and track), continuing the publisher's trace
 * when the envelope's headers carry a W3C `traceparent`; with the native
 * tracer no span is made.
 *
 * A batch is handled entry by entry; then its dead letters are written, then
 * one `XACK` acknowledges every entry that is done with (handled, duplicate,
 * dead-lettered). In the read loop that XACK runs while the next read is
 * already waiting (at most one XACK in flight), which is what makes 100k+
 * entries/s possible with large batches. A failed Redis call ends the
 * session: what was read and not acknowledged is still pending and read
 * again after reconnecting, and what was already handled is then a
 * duplicate (the `seen` window), not applied twice.
 *
 * Order: an entry older than the last one applied for its coordinator (a
 * claimed or redelivered straggler) is acknowledged as a duplicate without
 * being applied, so a coordinator's level never goes back in time here.
 * Two consumers of one group can still interleave one coordinator's
 * entries; that is the group's contract, not something one consumer can fix.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Headers from "effect/http/Headers"
import * as HttpTraceContext from "effect/http/HttpTraceContext"
import * as Option from "effect/Option"
import * as Redis from "effect/persistence/Redis"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import * as Tracer from "effect/Tracer"
import { hostname } from "node:os"
import * as LogLimit from "../../feedback/internal/logLimit.ts"
import {
  type Check,
  fields,
  nonEmptyString,
  optional,
  positiveDuration,
  positiveInteger
} from "../../feedback/internal/options.ts"
import { feedbackAttributes, tracingEnabled } from "../../internal/tracing.ts"
import * as Cells from "../../metrics/internal/cells.ts"
import { metricDefinitions } from "../../metrics/MetricDefinitions.ts"
import { deadLetterKey, decodeEntry, PulseDecodeError, type PulseFeedback, streamKey } from "../PulseCodec.ts"
import type { PulseConsumer, PulseConsumerOptions, PulseConsumerStats, PulseHandler } from "../PulseConsumer.ts"
import { backoff, createGroup, STREAM_LABEL } from "./streams.ts"

const groupStart: Check = (option, value) =>
  typeof value === "string" && /^(\$|0|\d+(-\d+)?)$/.test(value)
    ? undefined
    : { option, value, expected: "\"0\", \"$\" or a stream id" }

/** @internal */
export const checkOptions: Check = optional(fields({
  namespace: optional(nonEmptyString),
  group: optional(nonEmptyString),
  consumer: optional(nonEmptyString),
  groupStart: optional(groupStart),
  count: optional(positiveInteger),
  block: optional(positiveDuration),
  claimIdle: optional(positiveDuration),
  claimInterval: optional(positiveDuration),
  maxDeliveries: optional(positiveInteger),
  dedupWindow: optional(positiveInteger),
  deadLetterMaxLen: optional(positiveInteger)
}))

const millis = (input: Duration.Input | undefined, fallback: number): number =>
  input === undefined ? fallback : Math.max(1, Math.round(Duration.toMillis(Duration.fromInputUnsafe(input))))

/** Coordinators whose last applied entry id is remembered, for the order check. */
const MAX_ORDERED_COORDINATORS = 10_000

/** Entries claimed per `XAUTOCLAIM`, and calls per claim round (bounded: the next round goes on). */
const CLAIM_COUNT = 100
const CLAIM_CALLS_PER_ROUND = 10

/** An entry as read: its id and its field list (`null`: deleted from the stream while pending). */
type RawEntry = readonly [id: string, fields: unknown]

/** The entries of the single stream in an `XREADGROUP` reply, RESP2 (array) or RESP3 (map). */
const streamEntries = (reply: unknown): ReadonlyArray<RawEntry> => {
  if (reply === null || reply === undefined) return []
  let entries: unknown
  if (Array.isArray(reply)) {
    const first = reply[0]
    entries = Array.isArray(first) ? first[1] : undefined
  } else if (reply instanceof Map) {
    entries = reply.values().next().value
  } else if (typeof reply === "object") {
    entries = Object.values(reply)[0]
  }
  return Array.isArray(entries) ? entries as ReadonlyArray<RawEntry> : []
}

/** The `data` field of an entry's field list (flat array, map or object); undefined if absent. */
const dataField = (raw: unknown): string | undefined => {
  if (Array.isArray(raw)) {
    for (let i = 0; i + 1 < raw.length; i += 2) {
      if (String(raw[i]) === "data") return String(raw[i + 1])
    }
    return undefined
  }
  if (raw instanceof Map) {
    const value = raw.get("data")
    return value === undefined ? undefined : String(value)
  }
  if (typeof raw === "object" && raw !== null && "data" in raw) return String((raw as { data: unknown }).data)
  return undefined
}

/** Orders two stream ids (`ms-seq`, decimal without leading zeros). */
const compareIds = (a: string, b: string): number => {
  const da = a.indexOf("-")
  const db = b.indexOf("-")
  if (da !== db) return da - db
  const ms = a.slice(0, da)
  const msB = b.slice(0, db)
  if (ms !== msB) return ms < msB ? -1 : 1
  const seq = a.slice(da + 1)
  const seqB = b.slice(db + 1)
  if (seq.length !== seqB.length) return seq.length - seqB.length
  return seq === seqB ? 0 : seq < seqB ? -1 : 1
}

/**
 * A map of at most `size` keys that forgets the first-inserted key when full.
 * Keys are remembered in a ring, not through the map's insertion order:
 * deleting a map's first key over and over leaves holes that every
 * `keys().next()` walks again.
 */
class Window<V> {
  readonly map = new Map<string, V>()
  readonly ring: Array<string | undefined>
  readonly size: number
  next = 0
  constructor(size: number) {
    this.size = size
    this.ring = new Array(size)
  }
  get(key: string): V | undefined {
    return this.map.get(key)
  }
  set(key: string, value: V): void {
    if (!this.map.has(key)) {
      const oldest = this.ring[this.next]
      if (oldest !== undefined) this.map.delete(oldest)
      this.ring[this.next] = key
      this.next = (this.next + 1) % this.size
    }
    this.map.set(key, value)
  }
}

/** A dead letter: the entry, why, its original text and the reason bucket of the metric. */
type DeadLetter = readonly [id: string, reason: string, data: string, bucket: "decode" | "max_deliveries"]

/** @internal */
export const make = (
  options: PulseConsumerOptions,
  handler: PulseHandler
): Effect.Effect<PulseConsumer["Service"], never, Redis.Redis | Scope.Scope> =>
  Effect.gen(function*() {
    const redis = yield* Redis.Redis
    const clock = yield* Clock.Clock
    const namespace = options.namespace ?? "mdp"
    const group = options.group ?? "pipeline"
    const consumer = options.consumer ?? `${hostname()}-${process.pid}`
    const start = options.groupStart ?? "0"
    const count = String(options.count ?? 512)
    const blockMs = millis(options.block, 2000)
    const claimIdle = String(millis(options.claimIdle, 30_000))
    const claimInterval = Duration.millis(millis(options.claimInterval, 5000))
    const maxDeliveries = options.maxDeliveries ?? 3
    // at least two reads' worth: a batch read again after a failed XACK must still be recognised
    const dedupWindow = Math.max(options.dedupWindow ?? 10_000, 2 * Number(count))
    const deadLetterMaxLen = String(options.deadLetterMaxLen ?? 1000)
    const key = streamKey(namespace)
    const dlqKey = deadLetterKey(namespace)
    // a blocking read that does not come back (a frozen server) ends the session
    const readTimeout = Duration.millis(blockMs + Math.max(5000, blockMs))

    const cells = Cells.make(yield* Effect.context<never>())
    yield* Effect.addFinalizer(() => Effect.sync(cells.dispose))
    const label = { stream: STREAM_LABEL }
    const outcomes = new Map<string, Cells.Cell>()
    const outcome = (track: string, name: "success" | "error" | "duplicate"): Cells.Cell => {
      const id = track + "|" + name
      let cell = outcomes.get(id)
      if (cell === undefined) {
        cell = cells.counter(metricDefinitions.pulseConsumed, {
          stream: STREAM_LABEL,
          track,
          outcome: name
        })
        outcomes.set(id, cell)
      }
      return cell
    }
    const lag = cells.gauge(metricDefinitions.pulseLag, label)
    const acks = cells.counter(metricDefinitions.pulseAcks, label)
    const pending = cells.gauge(metricDefinitions.pulsePending, label)
    const deadLetterCounter = (reason: DeadLetter[3]): Cells.Cell =>
      cells.counter(metricDefinitions.pulseDeadLetters, {
        stream: STREAM_LABEL,
        reason
      })
    const deadLetters = { decode: deadLetterCounter("decode"), max_deliveries: deadLetterCounter("max_deliveries") }

    const stats = {
      handled: 0,
      errors: 0,
      duplicates: 0,
      deadLettered: 0,
      acked: 0,
      reconnects: 0,
      connected: false
    }
    /** Entry ids handled (with their track), the oldest forgotten first: a redelivered one is a duplicate. */
    const seen = new Window<string>(dedupWindow)
    /** Each coordinator's last applied entry id (the oldest coordinators forgotten first). */
    const lastApplied = new Window<string>(MAX_ORDERED_COORDINATORS)

    const handlerLog = LogLimit.make()
    const deadLetterLog = LogLimit.make()
    const sessionLog = LogLimit.make()
    const claimLog = LogLimit.make()
    const now = () => clock.currentTimeMillisUnsafe()
    // read once: with the native tracer (no exporter) no span is made per entry
    const tracing = yield* tracingEnabled
    const tracer = yield* Tracer.Tracer
    const fiberParent = yield* Effect.withFiber((fiber) =>
      Effect.succeed(Context.getOrUndefined(fiber.context, Tracer.ParentSpan))
    )
    // An entry's `feedback.receive` span starts before it is decoded, with
    // `feedback.decode` in it, but its parent (a `traceparent` in the
    // envelope's headers) is known only once decoded: both are made then,
    // with the start time taken before decoding.
    const openSpans = (
      id: string,
      startTime: bigint,
      decodedAt: bigint,
      decodeExit: Exit.Exit<unknown, unknown>,
      headers: Readonly<Record<string, string>> | undefined
    ): Tracer.Span => {
      const remote = headers === undefined || Object.keys(headers).length === 0
        ? undefined
        : Option.getOrUndefined(HttpTraceContext.fromHeaders(Headers.fromInput(headers)))
      const parent = remote ?? fiberParent
      const receive = tracer.span({
        name: "feedback.receive",
        parent: Option.fromUndefinedOr(parent),
        annotations: Context.empty(),
        links: [],
        startTime,
        kind: "consumer",
        root: parent === undefined,
        sampled: parent?.sampled ?? true
      })
      receive.attribute("feedback.transport", "pulse")
      receive.attribute("pulse.stream", key)
      receive.attribute("pulse.entry_id", id)
      const decode = tracer.span({
        name: "feedback.decode",
        parent: Option.some(receive),
        annotations: Context.empty(),
        links: [],
        startTime,
        kind: "internal",
        root: false,
        sampled: receive.sampled
      })
      decode.end(decodedAt, decodeExit)
      return receive
    }
    /** A dead-lettered entry (it did not decode): a receive span that failed, `feedback.dead_letter=true`. */
    const traceDeadLetter = (id: string, startTime: bigint, error: unknown): void => {
      const at = clock.currentTimeNanosUnsafe()
      const failed = Exit.fail(error)
      const receive = openSpans(id, startTime, at, failed, undefined)
      receive.attribute("feedback.dead_letter", true)
      receive.end(at, failed)
    }
    const handleEntry = (
      feedback: PulseFeedback,
      id: string,
      startTime: bigint,
      decodedAt: bigint
    ): Effect.Effect<void, unknown> => {
      if (!tracing) return handler(feedback, id)
      return Effect.suspend(() => {
        const receive = openSpans(id, startTime, decodedAt, Exit.void, feedback.headers)
        for (const [name, value] of Object.entries(feedbackAttributes(feedback.event))) receive.attribute(name, value)
        receive.attribute("pulse.track", feedback.track)
        return handler(feedback, id).pipe(
          Effect.withParentSpan(receive, { captureStackTrace: false }),
          Effect.onExit((exit) => Effect.sync(() => receive.end(clock.currentTimeNanosUnsafe(), exit)))
        )
      })
    }

    const handleBatch = (
      entries: ReadonlyArray<RawEntry>,
      deliveries: ReadonlyMap<string, number> | undefined
    ): Effect.Effect<Array<string>, Redis.RedisError> =>
      Effect.gen(function*() {
        const done: Array<string> = []
        let dead: Array<DeadLetter> | undefined
        for (const [id, raw] of entries) {
          // deleted (trimmed) while pending: nothing to handle
          if (raw === null || raw === undefined) {
            done.push(id)
            continue
          }
          const seenTrack = seen.get(id)
          if (seenTrack !== undefined) {
            outcome(seenTrack, "duplicate").value++
            stats.duplicates++
            done.push(id)
            continue
          }
          const data = dataField(raw)
          const delivered = deliveries?.get(id) ?? 1
          if (delivered > maxDeliveries) {
            ;(dead ??= []).push([id, `max deliveries exceeded (${delivered})`, data ?? "", "max_deliveries"])
            continue
          }
          const startTime = tracing ? clock.currentTimeNanosUnsafe() : 0n
          if (data === undefined) {
            outcome("unknown", "error").value++
            if (tracing) traceDeadLetter(id, startTime, new PulseDecodeError({ reason: "the entry has no data field" }))
            ;(dead ??= []).push([id, "the entry has no data field", "", "decode"])
            continue
          }
          const decoded = decodeEntry(data)
          const decodedAt = tracing ? clock.currentTimeNanosUnsafe() : 0n
          if (Result.isFailure(decoded)) {
            outcome("unknown", "error").value++
            if (tracing) traceDeadLetter(id, startTime, decoded.failure)
            ;(dead ??= []).push([id, decoded.failure.reason, data, "decode"])
            continue
          }
          const feedback = decoded.success
          const coordinatorId = feedback.event.coordinatorId
          lag.value = Math.max(0, Math.trunc(now() - feedback.envelopeTs * 1000))
          const last = lastApplied.get(coordinatorId)
          if (last !== undefined && compareIds(id, last) < 0) {
            // a late redelivery: its coordinator already reported something newer
            outcome(feedback.track, "duplicate").value++
            stats.duplicates++
            seen.set(id, feedback.track)
            done.push(id)
            continue
          }
          const exit = yield* Effect.exit(handleEntry(feedback, id, startTime, decodedAt))
          if (Exit.isSuccess(exit)) {
            outcome(feedback.track, "success").value++
            stats.handled++
            seen.set(id, feedback.track)
            lastApplied.set(coordinatorId, id)
            done.push(id)
          } else if (Cause.hasInterruptsOnly(exit.cause)) {
            // stopped while handling (the scope closes): not a failure; the entry stays pending
            return yield* Effect.interrupt
          } else {
            outcome(feedback.track, "error").value++
            stats.errors++
            const suppressed = handlerLog(now())
            if (suppressed !== undefined) {
              yield* Effect.logWarning(
                `pulse: handling entry ${id} of ${coordinatorId} failed (delivery ${delivered} of at most ` +
                  `${maxDeliveries}); it stays pending${LogLimit.suppressedNote(suppressed)}`,
                Cause.squash(exit.cause)
              )
            }
          }
        }
        if (dead !== undefined) {
          for (const [id, reason, data, bucket] of dead) {
            yield* redis.send(
              "XADD",
              dlqKey,
              "MAXLEN",
              "~",
              deadLetterMaxLen,
              "*",
              "original_id",
              id,
              "reason",
              reason,
              "data",
              data
            )
            deadLetters[bucket].value++
            stats.deadLettered++
            done.push(id)
            const suppressed = deadLetterLog(now())
            if (suppressed !== undefined) {
              yield* Effect.logWarning(
                `pulse: entry ${id} dead-lettered to ${dlqKey}: ${reason}${LogLimit.suppressedNote(suppressed)}`
              )
            }
          }
        }
        return done
      })

    /** One XACK for every entry done with. */
    const ack = (done: ReadonlyArray<string>): Effect.Effect<void, Redis.RedisError> =>
      done.length === 0 ? Effect.void : Effect.map(redis.send("XACK", key, group, ...done), (reply) => {
        const acked = Number(reply)
        acks.value += acked
        stats.acked += acked
      })

    const lock = yield* Semaphore.make(1)
    const processLocked = (
      entries: ReadonlyArray<RawEntry>,
      deliveries: ReadonlyMap<string, number> | undefined
    ): Effect.Effect<ReadonlyArray<string>, Redis.RedisError> =>
      entries.length === 0 ? Effect.succeed([]) : Semaphore.withPermit(lock, handleBatch(entries, deliveries))

    /** Delivery counts of these entries (read or claimed by this consumer just now). */
    const deliveryCounts = (entries: ReadonlyArray<RawEntry>): Effect.Effect<Map<string, number>, Redis.RedisError> =>
      Effect.map(
        redis.send<unknown>(
          "XPENDING",
          key,
          group,
          entries[0]![0],
          entries[entries.length - 1]![0],
          // this consumer may own other entries in the range (read, not yet acknowledged): room for them
          String(entries.length + 1024),
          consumer
        ),
        (reply) => {
          const counts = new Map<string, number>()
          if (Array.isArray(reply)) {
            for (const row of reply) if (Array.isArray(row)) counts.set(String(row[0]), Number(row[3]))
          }
          return counts
        }
      )

    /** Handles and acknowledges entries this consumer owns already (its own pending ones, or claimed). */
    const handleOwned = (entries: ReadonlyArray<RawEntry>): Effect.Effect<void, Redis.RedisError> =>
      Effect.flatMap(
        deliveryCounts(entries),
        (deliveries) => Effect.flatMap(processLocked(entries, deliveries), ack)
      )

    /** `XREADGROUP` of up to `count` entries after `cursor` (`>`: new ones), with `BLOCK` arguments if any. */
    const readGroup = (
      send: Redis.Connection["send"],
      cursor: string,
      ...block: ReadonlyArray<string>
    ): Effect.Effect<unknown, Redis.RedisError> =>
      send<unknown>("XREADGROUP", "GROUP", group, consumer, "COUNT", count, ...block, "STREAMS", key, cursor)

    // One connection's life: its own pending entries first, then new ones, until a call fails.
    const session = (connected: () => void) =>
      Effect.gen(function*() {
        const connection = yield* redis.reserve
        yield* createGroup(connection.send, key, group, start)
        let cursor = "0"
        for (;;) {
          const entries = streamEntries(yield* readGroup(connection.send, cursor))
          if (entries.length === 0) break
          yield* handleOwned(entries)
          cursor = entries[entries.length - 1]![0]
        }
        connected()
        // a batch's XACK (shared connection) overlaps the next read (this one); at most one in flight,
        // and a failed one ends the session: its entries are read again, as duplicates
        let acking: Fiber.Fiber<void, Redis.RedisError> | undefined
        for (;;) {
          const reply = yield* readGroup(connection.send, ">", "BLOCK", String(blockMs)).pipe(
            Effect.timeout(readTimeout)
          )
          const done = yield* processLocked(streamEntries(reply), undefined)
          if (acking !== undefined) yield* Fiber.join(acking)
          acking = done.length === 0 ? undefined : yield* Effect.forkScoped(ack(done))
        }
      })

    const readLoop = Effect.gen(function*() {
      for (let attempt = 0;; attempt++) {
        const exit = yield* Effect.exit(Effect.scoped(session(() => {
          stats.connected = true
          attempt = 0
        })))
        const wasConnected = stats.connected
        stats.connected = false
        if (wasConnected) stats.reconnects++
        const suppressed = sessionLog(now())
        if (suppressed !== undefined && Exit.isFailure(exit)) {
          yield* Effect.logWarning(
            `pulse: reading ${key} failed, reconnecting${LogLimit.suppressedNote(suppressed)}`,
            Cause.squash(exit.cause)
          )
        }
        yield* Effect.sleep(backoff(attempt, 100, 5, 3000))
      }
    })

    const claimRound = Effect.gen(function*() {
      let cursor = "0-0"
      for (let i = 0; i < CLAIM_CALLS_PER_ROUND; i++) {
        const reply = yield* redis.send<unknown>(
          "XAUTOCLAIM",
          key,
          group,
          consumer,
          claimIdle,
          cursor,
          "COUNT",
          String(CLAIM_COUNT)
        )
        if (!Array.isArray(reply)) break
        const entries = (Array.isArray(reply[1]) ? reply[1] : []) as ReadonlyArray<RawEntry>
        if (entries.length > 0) yield* handleOwned(entries)
        cursor = String(reply[0])
        if (cursor === "0-0") break
      }
      const summary = yield* redis.send<unknown>("XPENDING", key, group)
      if (Array.isArray(summary)) pending.value = Number(summary[0])
    })

    const claimLoop = Effect.gen(function*() {
      for (;;) {
        yield* Effect.sleep(claimInterval)
        const exit = yield* Effect.exit(claimRound)
        if (Exit.isFailure(exit)) {
          const suppressed = claimLog(now())
          if (suppressed !== undefined) {
            yield* Effect.logWarning(
              `pulse: claiming idle entries of ${key} failed${LogLimit.suppressedNote(suppressed)}`,
              Cause.squash(exit.cause)
            )
          }
        }
      }
    })

    yield* Effect.forkScoped(readLoop)
    yield* Effect.forkScoped(claimLoop)

    return {
      stream: key,
      group,
      consumer,
      stats: Effect.sync((): PulseConsumerStats => ({ ...stats }))
    }
  })
