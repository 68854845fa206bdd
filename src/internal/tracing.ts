/**
 * What the library's traced code shares: whether to make spans at all, and
 * the `feedback.*` attributes of an event.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as References from "effect/References"
import * as Tracer from "effect/Tracer"
import type { FeedbackEvent } from "../contracts/FeedbackEvent.ts"

/**
 * Whether the library makes spans: a tracer other than Effect's native one
 * (which exports nothing) is installed and `References.TracerEnabled` is on.
 * Read once, when a layer is built, so that tracing off costs nothing per
 * event.
 *
 * @internal
 */
export const tracingEnabled: Effect.Effect<boolean> = Effect.gen(function*() {
  const tracer = yield* Tracer.Tracer
  return tracer !== Tracer.nativeTracer && (yield* References.TracerEnabled)
})

/**
 * The `feedback.*` span attributes of an event.
 *
 * @internal
 */
export const feedbackAttributes = (event: FeedbackEvent): Record<string, unknown> => ({
  "feedback.coordinator_id": event.coordinatorId,
  "feedback.level": event.level,
  "feedback.source": event.source,
  "feedback.queue_size": event.queueSize,
  "feedback.capacity": event.capacity
})
