/**
 * The golden Pulse vectors: a copy of shared/reference/pulse-examples.json,
 * the bodies produced by the Python models, with their types and the
 * conversion of a vector's (snake_case) event to ours.
 */
import type { FeedbackEvent } from "market-data-pipeline"
import { readFileSync } from "node:fs"

/** An event as a vector spells it. */
export interface WireEvent {
  readonly coordinator_id: string
  readonly queue_size: number
  readonly capacity: number
  readonly level: "ok" | "soft" | "hard"
  readonly source: string
  readonly ts: number
}

/** One `consume` vector: a body and what a consumer makes of it (an event, or a dead letter). */
export interface ConsumeVector {
  readonly name: string
  readonly data: string
  readonly expect:
    | {
      readonly ok: true
      readonly event: WireEvent
      readonly envelope_ts: number
      readonly headers: Record<string, string>
    }
    | { readonly ok: false; readonly dlq: true; readonly fields?: ReadonlyArray<string> }
}

/** One `publish` vector: the body a publisher writes for this event, envelope time and headers. */
export interface PublishVector {
  readonly name: string
  readonly event: WireEvent
  readonly envelope_ts: number
  readonly headers: Record<string, string>
  readonly data: string
}

/** The golden bodies produced by the Python models. */
export const pulseExamples: {
  readonly consume: ReadonlyArray<ConsumeVector>
  readonly publish: ReadonlyArray<PublishVector>
} = JSON.parse(readFileSync(new URL("../../fixtures/pulse-examples.json", import.meta.url), "utf8"))

/** A vector's event in our type. */
export const toEvent = (e: WireEvent): FeedbackEvent => ({
  coordinatorId: e.coordinator_id,
  queueSize: e.queue_size,
  capacity: e.capacity,
  level: e.level,
  source: e.source,
  ts: e.ts
})
