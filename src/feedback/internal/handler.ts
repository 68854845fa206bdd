/**
 * The running FeedbackHandler: worst level across coordinators, policy,
 * optional recovery ramp, metrics.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberHandle from "effect/FiberHandle"
import type * as Scope from "effect/Scope"
import { type BackpressureLevel, levelOrdinal } from "../../contracts/BackpressureLevel.ts"
import type { FeedbackEvent } from "../../contracts/FeedbackEvent.ts"
import { RateController } from "../../contracts/RateController.ts"
import * as Cells from "../../metrics/internal/cells.ts"
import { FeedbackBus } from "../FeedbackBus.ts"
import type { FeedbackHandlerOptions } from "../FeedbackHandler.ts"

const levels: ReadonlyArray<BackpressureLevel> = ["ok", "soft", "hard"]

/** @internal */
export const run = (
  options: FeedbackHandlerOptions
): Effect.Effect<void, never, FeedbackBus | RateController | Scope.Scope> =>
  Effect.gen(function*() {
    const bus = yield* FeedbackBus
    const controller = yield* RateController
    const { policy, provider } = options
    const cells = Cells.make(yield* Effect.context<never>())
    yield* Effect.addFinalizer(() => Effect.sync(cells.dispose))
    const processed = Object.fromEntries(levels.map((level) => [
      level,
      cells.counter("feedback_events_processed_total", "Feedback events processed", { provider, level })
    ])) as Record<BackpressureLevel, Cells.Cell>
    const adjustments = Object.fromEntries(levels.map((reason) => [
      reason,
      cells.counter("pipeline_rate_adjustments_total", "Rate adjustments applied", { provider, reason })
    ])) as Record<BackpressureLevel, Cells.Cell>
    const depths = new Map<string, Cells.Cell>()
    const queueDepth = (source: string): Cells.Cell => {
      let cell = depths.get(source)
      if (cell === undefined) {
        cell = cells.gauge(
          "pipeline_feedback_queue_depth",
          "Queue depth reported by feedback (label source = coordinator id)",
          { source }
        )
        depths.set(source, cell)
      }
      return cell
    }

    const filter = options.coordinators === undefined ? undefined : new Set(options.coordinators)
    const current = new Map<string, BackpressureLevel>()
    const ramp = yield* FiberHandle.make<void, never>()
    const rampDuration = options.recovery === undefined
      ? undefined
      : Duration.fromInputUnsafe(options.recovery.duration)
    const rampSteps = Math.max(1, Math.floor(options.recovery?.steps ?? 10))
    // the scale last applied, and where a running ramp is heading
    let applied: number | undefined
    let rampTarget: number | undefined

    const apply = (scale: number, reason: BackpressureLevel, ts: number) =>
      Effect.tap(controller.apply({ provider, scale, reason, ts }), () =>
        Effect.sync(() => {
          applied = scale
          adjustments[reason].value++
        }))

    const rise = (from: number, to: number, reason: BackpressureLevel, ts: number) =>
      Effect.gen(function*() {
        const step = Duration.divideUnsafe(rampDuration!, rampSteps)
        for (let i = 1; i <= rampSteps; i++) {
          yield* Effect.sleep(step)
          yield* apply(i === rampSteps ? to : from + (to - from) * i / rampSteps, reason, ts)
        }
        rampTarget = undefined
      })

    const worst = (): BackpressureLevel => {
      let level: BackpressureLevel = "ok"
      for (const l of current.values()) if (levelOrdinal(l) > levelOrdinal(level)) level = l
      return level
    }

    const handle = (event: FeedbackEvent): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (filter !== undefined && !filter.has(event.coordinatorId)) return Effect.void
        queueDepth(event.coordinatorId).value = event.queueSize
        current.set(event.coordinatorId, event.level)
        const level = worst()
        const target = policy[level]
        const done = Effect.sync(() => {
          processed[event.level].value++
        })
        if (rampDuration !== undefined && applied !== undefined && target > applied) {
          if (rampTarget === target) return done
          rampTarget = target
          return Effect.andThen(FiberHandle.run(ramp, rise(applied, target, level, event.ts)), done)
        }
        rampTarget = undefined
        const step = apply(target, level, event.ts)
        return Effect.andThen(rampDuration === undefined ? step : Effect.andThen(FiberHandle.clear(ramp), step), done)
      })

    yield* bus.consume(`FeedbackHandler(${provider})`, handle)
  })
