import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, ConfigProvider, Effect, Layer, Redacted, Schema } from "effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import { decodeJson, HealthStatus, RateCoordinator, UnifiedRuntime } from "market-data-pipeline"
import { createServer } from "node:http"
import * as HttpApi from "../../src/service/HttpApi.ts"
import { eventually } from "../feedback/helpers.ts"

const server = (token?: string, maxCoordinators?: number) =>
  HttpRouter.serve(HttpApi.routes({ token: token === undefined ? undefined : Redacted.make(token), maxCoordinators }), {
    disableLogger: true,
    disableListenLog: true
  }).pipe(
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
    Layer.provideMerge(Layer.fresh(UnifiedRuntime.layer)),
    Layer.provide(
      ConfigProvider.layer(ConfigProvider.fromEnvRecord({ MDP_RATE_CAPACITY: "100", MDP_RATE_REFILL: "100" }))
    )
  )

const baseUrl = Effect.map(
  Effect.service(HttpServer.HttpServer),
  (s) => s.address._tag === "UnixPathAddress" ? s.address.path : `http://127.0.0.1:${s.address.port}`
)

const request = (path: string, init?: RequestInit) =>
  Effect.flatMap(baseUrl, (url) =>
    Effect.promise(async () => {
      const response = await fetch(url + path, init)
      return { status: response.status, text: await response.text() }
    }))

const post = (body: string | Uint8Array, headers: Record<string, string> = {}) =>
  request("/feedback", { method: "POST", body, headers: { "content-type": "application/json", ...headers } })

const core =
  "{\"coordinator_id\":\"store_01\",\"queue_size\":800,\"capacity\":1000,\"level\":\"soft\",\"ts\":1700000000.0}"
const broadcast =
  "{\"coordinator_id\":\"bars-coord\",\"queue_size\":950,\"capacity\":1000,\"level\":\"hard\",\"reason\":\"high_watermark\",\"utilization\":0.95}"

const scaleIs = (scale: number) =>
  Effect.map(Effect.flatMap(Effect.service(RateCoordinator), (c) => c.state("ibkr")), (s) => s.scale === scale)

describe("HTTP API", () => {
  it.live("POST /feedback takes a core FeedbackEvent or the store's broadcast body, answers 202 and applies it", () =>
    Effect.gen(function*() {
      const accepted = yield* post(core)
      assert.strictEqual(accepted.status, 202)
      assert.deepStrictEqual(JSON.parse(accepted.text), { accepted: true, coordinator_id: "store_01", level: "soft" })
      yield* eventually(scaleIs(0.5))
      assert.strictEqual((yield* post(broadcast)).status, 202)
      yield* eventually(scaleIs(0)) // hard from bars-coord: the worst level wins
    }).pipe(Effect.provide(server())))

  it.live("bad input: 400 with the readable message, 413 over 64 KiB; all counted", () =>
    Effect.gen(function*() {
      const notJson = yield* post("{\"coordinator_id\":")
      assert.strictEqual(notJson.status, 400)
      assert.strictEqual(JSON.parse(notJson.text).error, "invalid_json")
      const invalid = yield* post(
        "{\"coordinator_id\":\"c\",\"queue_size\":-1,\"capacity\":0,\"level\":\"SOFT\",\"ts\":\"x\"}"
      )
      assert.strictEqual(invalid.status, 400)
      const message: string = JSON.parse(invalid.text).message
      for (const field of ["queue_size", "capacity", "level", "ts"]) assert.include(message, `${field}: `)
      assert.strictEqual((yield* post(new Uint8Array([0xff, 0xfe, 0x00]))).status, 400)
      const big = JSON.stringify({ coordinator_id: "x".repeat(70 * 1024) })
      assert.strictEqual((yield* post(big)).status, 413)
      // no content-length: the limit holds while reading
      const chunked = new ReadableStream({
        start(controller) {
          for (let i = 0; i < 80; i++) controller.enqueue(new TextEncoder().encode("x".repeat(1024)))
          controller.close()
        }
      })
      const streamed = yield* request("/feedback", { method: "POST", body: chunked, duplex: "half" } as RequestInit)
      assert.strictEqual(streamed.status, 413)
      const metrics = (yield* request("/metrics")).text
      assert.include(metrics, "pipeline_feedback_events_rejected_total{reason=\"invalid_json\"} 2")
      assert.include(metrics, "pipeline_feedback_events_rejected_total{reason=\"invalid_event\"} 1")
      assert.include(metrics, "pipeline_feedback_events_rejected_total{reason=\"too_large\"} 2")
    }).pipe(Effect.provide(server())))

  it.live("with a token: a missing or wrong bearer token is 401, the right one 202", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* post(core)).status, 401)
      assert.strictEqual((yield* post(core, { authorization: "Bearer wrong" })).status, 401)
      assert.strictEqual((yield* post(core, { authorization: "Bearer s3cret" })).status, 202)
      assert.include(
        (yield* request("/metrics")).text,
        "pipeline_feedback_events_rejected_total{reason=\"unauthorized\"} 2"
      )
    }).pipe(Effect.provide(server("s3cret"))))

  it.live("GET /healthz is a HealthStatus document, GET /metrics Prometheus text", () =>
    Effect.gen(function*() {
      const health = yield* request("/healthz")
      assert.strictEqual(health.status, 200)
      const status = yield* decodeJson(HealthStatus)(health.text)
      assert.strictEqual(status.service, "market-data-pipeline")
      assert.include(health.text, "\"components\":[{\"name\":\"rate_coordinator\"")
      const metrics = yield* request("/metrics")
      assert.strictEqual(metrics.status, 200)
      assert.include(metrics.text, "# TYPE pipeline_feedback_events_dropped_total counter")
      const coordinator = yield* RateCoordinator
      for (let i = 0; i < 5; i++) yield* coordinator.recordFailure("ibkr")
      const unhealthy = yield* request("/healthz")
      assert.strictEqual(unhealthy.status, 503)
      assert.strictEqual((yield* decodeJson(HealthStatus)(unhealthy.text)).state, "unhealthy")
    }).pipe(Effect.provide(server())))

  it.live(
    "thousands of random bodies: never a 5xx, the server keeps answering, valid events still apply",
    () =>
      Effect.gen(function*() {
        const valid = JSON.parse(core)
        const bodies = Arbitrary.all({
          kind: Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 3 }))),
          json: Arbitrary.schema(Schema.Json),
          bytes: Arbitrary.schema(Schema.Uint8Array),
          field: Arbitrary.schema(
            Schema.Literals(["coordinator_id", "queue_size", "capacity", "level", "source", "ts"])
          ),
          number: Arbitrary.schema(Schema.Number)
        }).pipe(Arbitrary.map(({ bytes, field, json, kind, number }): string | Uint8Array => {
          switch (kind) {
            case 0:
              return JSON.stringify(json) ?? "null"
            case 1:
              return bytes
            case 2:
              return JSON.stringify({ ...valid, [field]: json })
            default:
              return JSON.stringify({ ...valid, [field]: number }).replace("null", "1e999")
          }
        }))
        const statuses = new Map<number, number>()
        const result = yield* Arbitrary.checkEffect(bodies, (body) =>
          Effect.map(post(body), ({ status }) => {
            statuses.set(status, (statuses.get(status) ?? 0) + 1)
            return status < 500
          }), { runs: 3000, concurrency: 16 })
        assert.strictEqual(result._tag, "Passed", Arbitrary.formatCheckFailure(result))
        assert.isAbove(statuses.get(400) ?? 0, 1000)
        assert.isAbove(statuses.get(202) ?? 0, 10)
        // still alive and still applying
        assert.strictEqual((yield* request("/healthz")).status, 200)
        assert.strictEqual((yield* post(core.replace("store_01", "after-fuzz"))).status, 202)
        assert.strictEqual((yield* post(broadcast.replace("bars-coord", "after-fuzz"))).status, 202)
        yield* eventually(Effect.map(
          Effect.flatMap(Effect.service(RateCoordinator), (c) => c.state("ibkr")),
          (s) => s.pressure === "hard"
        ))
      }).pipe(Effect.provide(server())),
    { timeout: 120_000 }
  )

  it.live("a client inventing coordinator ids is refused past the limit (429), known ones still pass", () =>
    Effect.gen(function*() {
      const body = (id: string) => core.replace("store_01", id)
      for (let i = 0; i < 3; i++) assert.strictEqual((yield* post(body(`c${i}`))).status, 202)
      const refused = yield* post(body("c3"))
      assert.strictEqual(refused.status, 429)
      assert.strictEqual(JSON.parse(refused.text).error, "too_many_coordinators")
      assert.strictEqual((yield* post(body("c1"))).status, 202)
    }).pipe(Effect.provide(server(undefined, 3))))
})
