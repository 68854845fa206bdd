/**
 * The running FeedbackHandler: worst level across coordinators, policy,
 * optional recovery ramp, level TTL, metrics.
 *
 * The coordinators' levels live in a bounded `Table`, which keeps a count
 * per level, so the worst level costs the same at 10 coordinators as at
 * 10,000. Every decision (an event, a clear, an expiry) reads the table and
 * applies its worst level; the consumer, `clear` and the expiry fiber may
 * decide concurrently, so a decision whose apply finishes after a later
 * decision was made decides again: the last apply is always of the current
 * worst.
 *
 * With a tracer installed, each event is handled in a `feedback.handle`
 * span, a child of the span the event was published under (the bus carries
 * it); with the native one, no span is made.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberHandle from "effect/FiberHandle"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { BackpressureLevel } from "../../contracts/BackpressureLevel.ts"
import type { FeedbackEvent } from "../../contracts/FeedbackEvent.ts"
import { RateController } from "../../contracts/RateController.ts"
import { feedbackAttributes, tracingEnabled } from "../../internal/tracing.ts"
import * as Cells from "../../metrics/internal/cells.ts"
import { metricDefinitions } from "../../metrics/MetricDefinitions.ts"
import { CoordinatorLevels } from "../../rate/CoordinatorLevels.ts"
import { FeedbackBus } from "../FeedbackBus.ts"
import type { CoordinatorLevel, FeedbackHandle, FeedbackHandlerOptions } from "../FeedbackHandler.ts"
import type { FeedbackPolicy } from "../FeedbackPolicy.ts"
import * as LogLimit from "./logLimit.ts"
import {
  arrayOf,
  type Check,
  fields,
  nonEmptyString,
  optional,
  positiveDuration,
  positiveInteger,
  unitInterval
} from "./options.ts"
import { Entry, Table } from "./table.ts"

const levels: ReadonlyArray<BackpressureLevel> = ["ok", "soft", "hard"]

/** @internal */
export const checkOptions: Check = fields({
  provider: nonEmptyString,
  policy: fields({ ok: unitInterval, soft: unitInterval, hard: unitInterval }),
  coordinators: optional(arrayOf(nonEmptyString)),
  recovery: optional(fields({ duration: positiveDuration, steps: optional(positiveInteger) })),
  maxCoordinators: optional(positiveInteger),
  levelTtl: optional(positiveDuration)
})

/** A coordinator the handler holds. */
class Slot extends Entry {
  since: number
  lastReport: number
  /** The capacity it last reported (its queue size is its depth gauge's value). */
  capacity = 0
  readonly gauges: SlotGauges
  constructor(coordinatorId: string, level: BackpressureLevel, now: number, gauges: SlotGauges) {
    super(coordinatorId, level)
    this.since = now
    this.lastReport = now
    this.gauges = gauges
  }
}

/** A coordinator's series: its queue depth, its level and when it last reported. */
interface SlotGauges {
  readonly depth: Cells.Cell
  readonly level: Cells.Cell
  readonly lastReport: Cells.Cell
}

const levelValue: Record<BackpressureLevel, number> = { ok: 0, soft: 1, hard: 2 }

const view = (slot: Slot): CoordinatorLevel => ({
  coordinatorId: slot.coordinatorId,
  level: slot.level,
  since: slot.since,
  lastReport: slot.lastReport
})

const byId = (a: CoordinatorLevel, b: CoordinatorLevel): number =>
  a.coordinatorId < b.coordinatorId ? -1 : a.coordinatorId > b.coordinatorId ? 1 : 0

/** Runs the handler with options `checkOptions` accepted. @internal */
export const run = (
  options: FeedbackHandlerOptions
): Effect.Effect<FeedbackHandle, never, FeedbackBus | RateController | Scope.Scope> =>
  Effect.gen(function*() {
    const bus = yield* FeedbackBus
    const controller = yield* RateController
    const clock = yield* Clock.Clock
    const { provider } = options
    // a copy: the caller's object, once checked, cannot change under us
    const policy: FeedbackPolicy = { ok: options.policy.ok, soft: options.policy.soft, hard: options.policy.hard }
    const cells = Cells.make(yield* Effect.context<never>())
    yield* Effect.addFinalizer(() => Effect.sync(cells.dispose))
    const processed = Object.fromEntries(levels.map((level) => [
      level,
      cells.counter(metricDefinitions.eventsProcessed, { provider, level })
    ])) as Record<BackpressureLevel, Cells.Cell>
    const adjustments = Object.fromEntries(levels.map((reason) => [
      reason,
      cells.counter(metricDefinitions.rateAdjustments, { provider, reason })
    ])) as Record<BackpressureLevel, Cells.Cell>
    // built once: counting an event allocates nothing
    const countProcessed = Object.fromEntries(levels.map((level) => [
      level,
      Effect.sync(() => {
        processed[level].value++
      })
    ])) as Record<BackpressureLevel, Effect.Effect<void>>
    const refused = cells.counter(metricDefinitions.eventsRefused, { provider, reason: "too_many_coordinators" })
    const gaugesOf = (source: string): SlotGauges => ({
      depth: cells.gauge(metricDefinitions.queueDepth, { source }),
      level: cells.gauge(metricDefinitions.coordinatorLevel, { provider, source }),
      lastReport: cells.gauge(metricDefinitions.coordinatorLastReport, { provider, source })
    })
    const removeGauges = ({ gauges }: Slot): void => {
      cells.remove(gauges.depth)
      cells.remove(gauges.level)
      cells.remove(gauges.lastReport)
    }

    const filter = options.coordinators === undefined ? undefined : new Set(options.coordinators)
    // With shared buckets, levels are kept where every process sees them: the
    // worst-of spans coordinators heard by other processes too.
    const shared = Option.getOrUndefined(yield* Effect.serviceOption(CoordinatorLevels))
    const runFork = yield* FiberSet.makeRuntime<never, void, never>()
    const table = new Table<Slot>(options.maxCoordinators ?? 256, (evicted) => {
      removeGauges(evicted)
      if (shared !== undefined) runFork(shared.forget(provider, evicted.coordinatorId))
    })
    const drop = (slot: Slot): void => {
      if (table.remove(slot)) removeGauges(slot)
    }
    // cleared or expired: the bus's cache lets go of them too, so no table keeps a dead store's place
    const forgetInBus = (slots: ReadonlyArray<Slot>): Effect.Effect<void> =>
      Effect.forEach(slots, (slot) => bus.forget(slot.coordinatorId), { discard: true })
    const ramp = yield* FiberHandle.make<void, never>()
    const rampDuration = options.recovery === undefined
      ? undefined
      : Duration.fromInputUnsafe(options.recovery.duration)
    const rampSteps = options.recovery?.steps ?? 10
    // the scale last applied, and where a running ramp is heading
    let applied: number | undefined
    let rampTarget: number | undefined
    let decisions = 0

    const rise = (from: number, to: number, reason: BackpressureLevel, ts: number) =>
      Effect.gen(function*() {
        const step = Duration.divideUnsafe(rampDuration!, rampSteps)
        for (let i = 1; i <= rampSteps; i++) {
          yield* Effect.sleep(step)
          const scale = i === rampSteps ? to : from + (to - from) * i / rampSteps
          yield* controller.apply({ provider, scale, reason, ts })
          applied = scale
          adjustments[reason].value++
        }
        rampTarget = undefined
      })

    // Applies the table's worst level now, then runs `then`.
    const settle = (ts: number, then: Effect.Effect<void>): Effect.Effect<void> => {
      const decision = ++decisions
      const level = table.worst()
      const target = policy[level]
      if (rampDuration !== undefined && applied !== undefined && target > applied) {
        if (rampTarget === target) return then
        rampTarget = target
        return Effect.andThen(FiberHandle.run(ramp, rise(applied, target, level, ts)), then)
      }
      rampTarget = undefined
      const step = Effect.flatMap(controller.apply({ provider, scale: target, reason: level, ts }), () => {
        applied = target
        adjustments[level].value++
        // another decision was made while this one applied: it may have been overtaken
        return decision === decisions ? then : settle(ts, then)
      })
      return rampDuration === undefined ? step : Effect.andThen(FiberHandle.clear(ramp), step)
    }
    // a decision not made on an event: clear and expiry, stamped with the Clock
    // (with shared levels, forgetting the coordinator there was the whole decision)
    const settleNow = shared !== undefined
      ? Effect.void
      : Effect.suspend(() => settle(clock.currentTimeMillisUnsafe() / 1000, Effect.void))

    const refusals = LogLimit.make()
    const refuse = (event: FeedbackEvent, now: number): Effect.Effect<void> => {
      refused.value++
      const suppressed = refusals(now)
      return suppressed === undefined ? Effect.void : Effect.logWarning(
        `FeedbackHandler(${provider}) refused ${event.level} from coordinator ${
          JSON.stringify(event.coordinatorId)
        }: it already holds ${table.max} coordinators, none at ok${LogLimit.suppressedNote(suppressed)}`
      )
    }

    const handle = (event: FeedbackEvent): Effect.Effect<void> =>
      Effect.suspend(() => {
        const id = event.coordinatorId
        if (filter !== undefined && !filter.has(id)) return Effect.void
        const now = clock.currentTimeMillisUnsafe()
        let slot = table.get(id)
        if (slot !== undefined) {
          if (slot.level !== event.level) slot.since = now
          slot.lastReport = now
          table.report(slot, event.level)
        } else if (table.makeRoom()) {
          slot = new Slot(id, event.level, now, gaugesOf(id))
          table.add(slot)
        } else {
          return refuse(event, now)
        }
        slot.gauges.depth.value = event.queueSize
        slot.capacity = event.capacity
        slot.gauges.level.value = levelValue[event.level]
        slot.gauges.lastReport.value = now / 1000
        if (shared !== undefined) {
          const level = event.level
          return Effect.andThen(
            Effect.tap(shared.report(provider, id, level, policy[level]), () =>
              Effect.sync(() => {
                adjustments[level].value++
              })),
            countProcessed[level]
          )
        }
        return settle(event.ts, countProcessed[event.level])
      })

    const clear = (coordinatorId: string): Effect.Effect<boolean> =>
      Effect.uninterruptible(Effect.suspend(() => {
        const slot = table.get(coordinatorId)
        if (shared !== undefined) {
          // shared levels: an operator clears the coordinator for every process, whichever heard it
          if (slot !== undefined) drop(slot)
          return Effect.map(
            Effect.all([
              Effect.forEach(slot === undefined ? [] : [slot], (s) => bus.forget(s.coordinatorId)),
              shared.clear(provider, coordinatorId)
            ]),
            ([, cleared]) => cleared || slot !== undefined
          )
        }
        if (slot === undefined) return Effect.succeed(false)
        drop(slot)
        return Effect.andThen(
          forgetInBus([slot]),
          Effect.andThen(
            Effect.logInfo(
              `FeedbackHandler(${provider}): coordinator ${JSON.stringify(coordinatorId)} cleared at ${slot.level}`
            ),
            Effect.as(settleNow, true)
          )
        )
      }))

    if (options.levelTtl !== undefined) {
      const ttl = Duration.toMillis(Duration.fromInputUnsafe(options.levelTtl))
      const expireDue = Effect.suspend(() => {
        const now = clock.currentTimeMillisUnsafe()
        const expired: Array<Slot> = []
        for (let slot = table.idlest(); slot !== undefined && slot.lastReport + ttl <= now; slot = table.idlest()) {
          drop(slot)
          expired.push(slot)
        }
        const warnings = expired.filter((slot) => slot.level !== "ok").map((slot) =>
          Effect.logWarning(
            `FeedbackHandler(${provider}): coordinator ${
              JSON.stringify(slot.coordinatorId)
            } forgotten at ${slot.level}: ` +
              `no report for ${Duration.format(Duration.millis(now - slot.lastReport))} (levelTtl ${
                Duration.format(Duration.millis(ttl))
              })`
          )
        )
        const forgotten = shared === undefined
          ? forgetInBus(expired)
          : Effect.andThen(
            forgetInBus(expired),
            Effect.forEach(expired, (slot) => shared.forget(provider, slot.coordinatorId), { discard: true })
          )
        return Effect.andThen(
          Effect.all([forgotten, ...warnings], { discard: true }),
          Effect.uninterruptible(settleNow)
        )
      })
      // Sleeps until the least recently reported coordinator is due. A report
      // only ever pushes its coordinator's expiry later, so waking early and
      // looking again is enough; an empty table waits one TTL (nothing added
      // meanwhile can be due sooner).
      const expiry = Effect.gen(function*() {
        for (;;) {
          const idlest = table.idlest()
          const wait = idlest === undefined ? ttl : idlest.lastReport + ttl - clock.currentTimeMillisUnsafe()
          if (wait > 0) yield* Effect.sleep(wait)
          else yield* expireDue
        }
      })
      yield* Effect.forkScoped(expiry)
    }

    // read once: with the native tracer (no exporter) no span is made per event
    const tracing = yield* tracingEnabled
    const handleTraced = (event: FeedbackEvent): Effect.Effect<void> =>
      Effect.withSpan(handle(event), "feedback.handle", {
        attributes: { ...feedbackAttributes(event), "rate.provider": provider },
        captureStackTrace: false
      })
    // its steps do not wait (unless the controller does): handled inside publish, no scheduler hop
    yield* bus.consume(`FeedbackHandler(${provider})`, tracing ? handleTraced : handle, { delivery: "inline" })

    const status = Effect.sync(() => {
      const coordinators = Array.from(table.values(), view).sort(byId)
      const level = table.worst()
      return { level, holders: level === "ok" ? [] : coordinators.filter((c) => c.level === level), coordinators }
    })
    const admits = (coordinatorId: string): Effect.Effect<boolean> =>
      Effect.sync(() =>
        (filter !== undefined && !filter.has(coordinatorId)) || table.get(coordinatorId) !== undefined ||
        table.hasRoom()
      )
    const queue = (coordinatorId: string) => {
      const slot = table.get(coordinatorId)
      return slot === undefined ? undefined : { queueSize: slot.gauges.depth.value, capacity: slot.capacity }
    }
    return { provider, status, clear, admits, queue }
  })
