/**
 * The service's HTTP API: `/metrics`, `/healthz`, `POST /feedback`.
 *
 * @since 0.1.0
 */
import * as ByteSize from "effect/ByteSize"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as HttpIncomingMessage from "effect/http/HttpIncomingMessage"
import * as HttpRouter from "effect/http/HttpRouter"
import type * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { createHash, timingSafeEqual } from "node:crypto"
import { decodeUnknown, encodeJson } from "../contracts/Codec.ts"
import { FeedbackEvent } from "../contracts/FeedbackEvent.ts"
import { FeedbackPublisher } from "../contracts/FeedbackPublisher.ts"
import { HealthStatus } from "../contracts/Health.ts"
import { PipelineMetrics } from "../metrics/PipelineMetrics.ts"
import { UnifiedRuntime } from "../runtime/UnifiedRuntime.ts"

/**
 * @since 0.1.0
 * @category models
 */
export interface HttpApiOptions {
  /** When set, `POST /feedback` requires `Authorization: Bearer <token>`. */
  readonly token?: Redacted.Redacted<string> | undefined
  /** Largest accepted body; default 64 KiB. */
  readonly maxBodyBytes?: number | undefined
  /**
   * Distinct `coordinator_id`s accepted over HTTP; default 1024. Every
   * coordinator is remembered (its level, its metric series), so a client
   * inventing ids must not grow the process without bound.
   */
  readonly maxCoordinators?: number | undefined
}

const json = (status: number, body: unknown, headers?: Record<string, string>) =>
  HttpServerResponse.text(JSON.stringify(body), {
    status,
    contentType: "application/json",
    ...(headers === undefined ? {} : { headers })
  })

const digest = (value: string) => createHash("sha256").update(value).digest()

const encodeHealth = encodeJson(HealthStatus)
const decodeEvent = decodeUnknown(FeedbackEvent)
const utf8 = new TextDecoder("utf-8", { fatal: true })

/**
 * The routes, for `HttpRouter.serve`. `POST /feedback` accepts a core
 * `FeedbackEvent` or the Python store's HTTP broadcast body (no `ts`: the
 * receive time is used; no `source`: `"store"`), publishes it and answers
 * 202. Bad input is a 400 with the validation message, a body over the limit
 * 413, a missing or wrong token 401, a coordinator id beyond the
 * `maxCoordinators` distinct ones 429; each rejection is counted in
 * `pipeline_feedback_events_rejected_total{reason}`.
 *
 * @since 0.1.0
 * @category layers
 */
export const routes = (
  options: HttpApiOptions = {}
): Layer.Layer<never, never, HttpRouter.HttpRouter | FeedbackPublisher | PipelineMetrics | UnifiedRuntime> =>
  HttpRouter.use((router) =>
    Effect.gen(function*() {
      const metrics = yield* PipelineMetrics
      const publisher = yield* FeedbackPublisher
      const runtime = yield* UnifiedRuntime
      const maxBodyBytes = options.maxBodyBytes ?? 64 * 1024
      const maxCoordinators = options.maxCoordinators ?? 1024
      const coordinators = new Set<string>()
      const expected = options.token === undefined ? undefined : digest(`Bearer ${Redacted.value(options.token)}`)

      const reject = (status: number, reason: string, message: string, headers?: Record<string, string>) =>
        Effect.as(
          metrics.increment("pipeline_feedback_events_rejected_total", "Feedback bodies rejected", { reason }),
          json(status, { error: reason, message }, headers)
        )
      const tooLarge = reject(413, "too_large", `body over ${maxBodyBytes} bytes`)

      const authorized = (request: HttpServerRequest.HttpServerRequest): boolean => {
        if (expected === undefined) return true
        const given = request.headers["authorization"]
        // equal-length digests compared in constant time: no timing hint about the token
        return given !== undefined && timingSafeEqual(digest(given), expected)
      }

      const feedback = (request: HttpServerRequest.HttpServerRequest) =>
        Effect.gen(function*() {
          if (!authorized(request)) {
            return yield* reject(401, "unauthorized", "missing or wrong bearer token", {
              "www-authenticate": "Bearer"
            })
          }
          const declared = Number(request.headers["content-length"])
          if (declared > maxBodyBytes) return yield* tooLarge
          const body = yield* request.arrayBuffer.pipe(
            Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(maxBodyBytes)),
            Effect.result
          )
          if (body._tag === "Failure") {
            const overLimit =
              String((body.failure as { reason?: { reason?: string } }).reason?.reason) === "BodyTooLarge"
            return yield* overLimit ? tooLarge : reject(400, "unreadable", "the request body could not be read")
          }
          if (body.success.byteLength > maxBodyBytes) return yield* tooLarge
          let parsed: unknown
          try {
            parsed = JSON.parse(utf8.decode(body.success))
          } catch (error) {
            return yield* reject(400, "invalid_json", `body is not JSON: ${(error as Error).message}`)
          }
          // the store's HTTP broadcast body has no ts: it happened now
          if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) && !("ts" in parsed)) {
            parsed = { ...parsed, ts: (yield* Clock.currentTimeMillis) / 1000 }
          }
          const event = yield* Effect.result(decodeEvent(parsed))
          if (event._tag === "Failure") return yield* reject(400, "invalid_event", event.failure.message)
          const coordinator = event.success.coordinatorId
          if (!coordinators.has(coordinator)) {
            if (coordinators.size >= maxCoordinators) {
              return yield* reject(429, "too_many_coordinators", `already ${maxCoordinators} distinct coordinator ids`)
            }
            coordinators.add(coordinator)
          }
          yield* publisher.publish(event.success)
          return json(202, {
            accepted: true,
            coordinator_id: event.success.coordinatorId,
            level: event.success.level
          })
        })

      yield* router.add("POST", "/feedback", feedback)
      yield* router.add(
        "GET",
        "/metrics",
        Effect.map(
          metrics.prometheus,
          (text) => HttpServerResponse.text(text, { contentType: "text/plain; version=0.0.4; charset=utf-8" })
        )
      )
      yield* router.add(
        "GET",
        "/healthz",
        Effect.map(runtime.health, (health) =>
          HttpServerResponse.text(encodeHealth(health), {
            status: health.state === "unhealthy" ? 503 : 200,
            contentType: "application/json"
          }))
      )
    })
  )
