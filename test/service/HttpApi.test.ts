import * as NodeRedis from "@effect/platform-node/NodeRedis"
import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, ConfigProvider, Context, Effect, Layer, Redacted, Schema } from "effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import * as Redis from "effect/persistence/Redis"
import {
  CoordinatorLevels,
  decodeJson,
  FeedbackSettings,
  HealthStatus,
  ProviderSettings,
  RateCoordinator,
  UnifiedRuntime
} from "market-data-pipeline"
import * as http from "node:http"
import * as net from "node:net"
import * as HttpApi from "../../src/service/HttpApi.ts"
import * as HttpServerNode from "../../src/service/HttpServerNode.ts"
import { eventually } from "../feedback/helpers.ts"

const server = (
  token?: string,
  env: Record<string, string> = {},
  options: HttpApi.HttpApiOptions = {},
  runtime: Layer.Layer<UnifiedRuntime | RateCoordinator, unknown> = UnifiedRuntime.layer
) =>
  HttpRouter.serve(
    HttpApi.routes({ token: token === undefined ? undefined : Redacted.make(token), ...options }),
    { disableLogger: true, disableListenLog: true }
  ).pipe(
    Layer.provideMerge(HttpServerNode.layer({ port: 0, host: "127.0.0.1" })),
    Layer.provideMerge(Layer.fresh(runtime as typeof UnifiedRuntime.layer)),
    Layer.provide(
      ConfigProvider.layer(
        ConfigProvider.fromEnvRecord({ MDP_PROVIDER_RATE: "100", MDP_PROVIDER_BURST: "100", ...env })
      )
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
      return { status: response.status, text: await response.text(), headers: response.headers }
    }))

/** A request with headers `fetch` may not set (Host). */
const raw = (method: string, path: string, headers: Record<string, string>, body?: string) =>
  Effect.flatMap(
    baseUrl,
    (url) =>
      Effect.callback<{ status: number; text: string; allow: string | undefined }>((resume) => {
        const req = http.request(url + path, { method, headers }, (res) => {
          let text = ""
          res.setEncoding("utf8")
          res.on("data", (chunk) => (text += chunk))
          res.on(
            "end",
            () => resume(Effect.succeed({ status: res.statusCode ?? 0, text, allow: res.headers["allow"] }))
          )
        })
        req.on("error", (error) => resume(Effect.die(error)))
        req.end(body)
      })
  )

const post = (body: string | Uint8Array, headers: Record<string, string> = {}) =>
  request("/feedback", { method: "POST", body, headers: { "content-type": "application/json", ...headers } })

const core =
  "{\"coordinator_id\":\"store_01\",\"queue_size\":800,\"capacity\":1000,\"level\":\"soft\",\"ts\":1700000000.0}"
const broadcast =
  "{\"coordinator_id\":\"bars-coord\",\"queue_size\":950,\"capacity\":1000,\"level\":\"hard\",\"reason\":\"high_watermark\",\"utilization\":0.95}"

/** The runtime's handler holds `id` at `level`. */
const holds = (id: string, level: string) =>
  Effect.flatMap(
    Effect.service(UnifiedRuntime),
    (runtime) =>
      Effect.map(runtime.feedback!.status, (status) =>
        status.coordinators.some((c) => c.coordinatorId === id && c.level === level))
  )

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
      const streamed = yield* request(
        "/feedback",
        {
          method: "POST",
          body: chunked,
          duplex: "half",
          headers: { "content-type": "application/json" }
        } as RequestInit
      )
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

  it.live("a full table: a new coordinator takes the longest-idle ok slot, never a soft/hard one (429)", () =>
    Effect.gen(function*() {
      const body = (id: string, level = "soft") => core.replace("store_01", id).replace("\"soft\"", `"${level}"`)
      // each report is taken by the handler (its table is the one that counts) before the next
      const report = (id: string, level = "soft") =>
        Effect.gen(function*() {
          const answer = yield* post(body(id, level))
          if (answer.status === 202) yield* eventually(holds(id, level))
          return answer
        })
      for (let i = 0; i < 3; i++) assert.strictEqual((yield* report(`c${i}`)).status, 202)
      const refused = yield* report("c3")
      assert.strictEqual(refused.status, 429)
      assert.strictEqual(JSON.parse(refused.text).error, "too_many_coordinators")
      assert.strictEqual((yield* report("c1")).status, 202) // known ones still pass
      // c2 and then c0 recover; c0 is now the most recent ok, so c3 takes c2's slot
      assert.strictEqual((yield* report("c2", "ok")).status, 202)
      assert.strictEqual((yield* report("c0", "ok")).status, 202)
      assert.strictEqual((yield* report("c3")).status, 202)
      // c2 lost its slot: it is new again, and the only ok slot left is c0's
      assert.strictEqual((yield* report("c2", "hard")).status, 202)
      assert.strictEqual((yield* report("c4")).status, 429)
    }).pipe(Effect.provide(server(undefined, { MDP_FB_MAX_COORDINATORS: "3" }))))

  it.live("with MDP_FB_LEVEL_TTL, expired coordinators free their places for new stores", () =>
    Effect.gen(function*() {
      for (const id of ["a", "b"]) {
        assert.strictEqual((yield* post(core.replace("store_01", id).replace("\"soft\"", "\"hard\""))).status, 202)
        yield* eventually(holds(id, "hard"))
      }
      assert.strictEqual((yield* post(core.replace("store_01", "c"))).status, 429)
      // no report for a second: both expire, the provider recovers, c is taken
      for (let i = 0; i < 100 && !(yield* scaleIs(1)); i++) yield* Effect.sleep("50 millis")
      assert.isTrue(yield* scaleIs(1))
      assert.strictEqual((yield* post(core.replace("store_01", "c"))).status, 202)
      assert.strictEqual((yield* post(core.replace("store_01", "d"))).status, 202)
    }).pipe(Effect.provide(server(undefined, { MDP_FB_MAX_COORDINATORS: "2", MDP_FB_LEVEL_TTL: "1" }))))

  it.live("HEAD /metrics answers without a body and never holds a scrape slot", () =>
    Effect.gen(function*() {
      for (let i = 0; i < 10; i++) assert.strictEqual((yield* request("/metrics", { method: "HEAD" })).status, 200)
      assert.strictEqual((yield* request("/metrics")).status, 200)
    }).pipe(Effect.provide(server())))

  it.live("coordinator ids: at most 128 bytes of UTF-8, no control characters; the 400 names field and limit", () =>
    Effect.gen(function*() {
      const body = (id: string) => JSON.stringify({ ...JSON.parse(core), coordinator_id: id })
      assert.strictEqual((yield* post(body("é".repeat(64)))).status, 202) // 128 bytes
      const long = yield* post(body("x".repeat(60_000)))
      assert.strictEqual(long.status, 400)
      assert.deepStrictEqual(JSON.parse(long.text), {
        error: "invalid_coordinator_id",
        message: "coordinator_id: must be at most 128 bytes of UTF-8, got 60000"
      })
      assert.strictEqual((yield* post(body("é".repeat(64) + "x"))).status, 400)
      const control = yield* post(body("store\n01"))
      assert.strictEqual(control.status, 400)
      assert.include(JSON.parse(control.text).message, "control characters, found U+000A at index 5")
      assert.strictEqual((yield* post(body("店舗 🏬 \"quoted\""))).status, 202) // any other Unicode
    }).pipe(Effect.provide(server())))

  it.live(
    "the largest table of the longest ids at every level: /metrics stays well under 1 MiB",
    () =>
      Effect.gen(function*() {
        // quotes and backslashes are escaped in label values: the worst case for the text's size
        for (let i = 0; i < 256; i++) {
          const id = `${i}"`.padEnd(128, "\\")
          for (const level of ["hard", "soft", "ok"]) {
            const body = JSON.stringify({ coordinator_id: id, queue_size: 1, capacity: 10, level, ts: 1 })
            assert.strictEqual((yield* post(body)).status, 202)
          }
        }
        assert.strictEqual((yield* post(core.replace("store_01", "one-too-many"))).status, 202) // an ok slot is reclaimed
        const metrics = yield* request("/metrics")
        assert.strictEqual(metrics.status, 200)
        assert.isBelow(Buffer.byteLength(metrics.text), 512 * 1024)
      }).pipe(Effect.provide(server())),
    { timeout: 60_000 }
  )

  it.live("a browser cannot forge feedback: JSON only (415), same origin only (403), served Host only (403)", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
        const forged = yield* post(core, { "content-type": type })
        assert.strictEqual(forged.status, 415, type)
        assert.strictEqual(JSON.parse(forged.text).error, "unsupported_media_type")
      }
      assert.strictEqual((yield* post(core, { "content-type": "Application/JSON; charset=utf-8" })).status, 202)
      for (const origin of ["http://evil.example", "null", `${url.replace("127.0.0.1", "localhost")}0`]) {
        const foreign = yield* post(core, { origin })
        assert.strictEqual(foreign.status, 403, origin)
        assert.strictEqual(JSON.parse(foreign.text).error, "forbidden_origin")
      }
      assert.strictEqual((yield* post(core, { origin: url })).status, 202)
      // DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1
      const port = new URL(url).port
      for (const host of ["evil.example", `evil.example:${port}`, "attacker.localhost.evil"]) {
        const rebound = yield* raw("POST", "/feedback", { host, "content-type": "application/json" }, core)
        assert.strictEqual(rebound.status, 403, host)
        assert.strictEqual(JSON.parse(rebound.text).error, "forbidden_host")
        assert.strictEqual((yield* raw("GET", "/metrics", { host })).status, 403)
      }
      for (const host of [`localhost:${port}`, `[::1]:${port}`, `127.0.0.1:${port}`]) {
        assert.strictEqual((yield* raw("GET", "/healthz", { host })).status, 200, host)
      }
      yield* eventually(scaleIs(0.5)) // only the accepted events applied
      const metrics = (yield* request("/metrics")).text
      assert.include(metrics, "pipeline_feedback_events_rejected_total{reason=\"unsupported_media_type\"} 3")
      assert.include(metrics, "pipeline_feedback_events_rejected_total{reason=\"forbidden_origin\"} 3")
    }).pipe(Effect.provide(server())))

  it.live("an extra allowed host (a DNS name in front) is accepted", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* raw("GET", "/healthz", { host: "mdp.internal:9108" })).status, 200)
      assert.strictEqual((yield* raw("GET", "/healthz", { host: "other.internal" })).status, 403)
    }).pipe(Effect.provide(server(undefined, {}, { allowedHosts: ["MDP.internal"] }))))

  it.live("the Bearer scheme is case-insensitive (RFC 7235); a blank token or one with spaces is refused at build", () =>
    Effect.gen(function*() {
      for (const scheme of ["Bearer", "bearer", "BEARER"]) {
        assert.strictEqual((yield* post(core, { authorization: `${scheme} s3cret` })).status, 202, scheme)
      }
      assert.strictEqual((yield* post(core, { authorization: "Basic s3cret" })).status, 401)
      assert.strictEqual((yield* post(core, { authorization: "Bearer" })).status, 401)
      for (const blank of ["", "  ", "two words"]) {
        const error = yield* Effect.flip(Layer.build(server(blank)).pipe(Effect.scoped))
        assert.strictEqual(error._tag, "InvalidHttpOptions")
      }
    }).pipe(Effect.provide(server("s3cret"))))

  it.live("DELETE /feedback/{id}: an operator clears a coordinator that stopped reporting; it needs the token", () =>
    Effect.gen(function*() {
      const auth = { authorization: "Bearer s3cret" }
      assert.strictEqual((yield* post(broadcast, auth)).status, 202) // bars-coord: hard
      yield* eventually(scaleIs(0))
      const health = yield* decodeJson(HealthStatus)((yield* request("/healthz")).text)
      assert.strictEqual(health.state, "degraded")
      const feedback = health.components.find((c) => c.name === "feedback")!
      assert.strictEqual(feedback.state, "degraded")
      assert.match(feedback.details["held_by"] ?? "", /^bars-coord: hard since \d{4}-\d\d-\d\dT/)
      assert.strictEqual((yield* request("/feedback/bars-coord", { method: "DELETE" })).status, 401)
      const cleared = yield* request("/feedback/bars-coord", { method: "DELETE", headers: auth })
      assert.strictEqual(cleared.status, 200)
      assert.deepStrictEqual(JSON.parse(cleared.text), { cleared: true, coordinator_id: "bars-coord" })
      yield* eventually(scaleIs(1))
      const after = yield* decodeJson(HealthStatus)((yield* request("/healthz")).text)
      assert.strictEqual(after.state, "healthy")
      const unknown = yield* request("/feedback/nobody", { method: "DELETE", headers: auth })
      assert.strictEqual(unknown.status, 404)
      const encoded = yield* request(`/feedback/${encodeURIComponent("店舗 1")}`, { method: "DELETE", headers: auth })
      assert.strictEqual(encoded.status, 404)
      assert.include(JSON.parse(encoded.text).message, "店舗 1")
    }).pipe(Effect.provide(server("s3cret"))))

  it.live(
    "concurrent scrapes are limited (503 busy); a slot is freed when its client leaves",
    () =>
      Effect.gen(function*() {
        // a large exposition, so that a client that does not read holds its answer in flight
        const coordinator = yield* RateCoordinator
        for (let i = 0; i < 20_000; i++) {
          yield* coordinator.registerProvider(`p${i}`, { capacity: 1, refillRate: 1 })
          yield* coordinator.tryAcquire(`p${i}`)
        }
        const url = new URL(yield* baseUrl)
        const stalled = net.connect(Number(url.port), "127.0.0.1")
        stalled.pause()
        stalled.write(`GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:${url.port}\r\n\r\n`)
        // wait until the stalled client holds the only slot
        let busy: { status: number; text: string } | undefined
        for (let i = 0; i < 200 && busy?.status !== 503; i++) {
          busy = yield* request("/metrics")
          if (busy.status !== 503) yield* Effect.sleep("20 millis")
        }
        assert.strictEqual(busy?.status, 503)
        assert.strictEqual(JSON.parse(busy!.text).error, "busy")
        stalled.destroy()
        let after = 503
        for (let i = 0; i < 200 && after !== 200; i++) {
          after = (yield* request("/metrics")).status
          if (after !== 200) yield* Effect.sleep("20 millis")
        }
        assert.strictEqual(after, 200)
      }).pipe(Effect.provide(server(undefined, {}, { maxConcurrentScrapes: 1 }))),
    { timeout: 60_000 }
  )

  it.live("a known path with a method it does not take: 405 with Allow and a JSON error; an unknown path 404", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      const host = new URL(url).host
      const cases: ReadonlyArray<readonly [method: string, path: string, allow: string]> = [
        ["GET", "/feedback", "POST"],
        ["PUT", "/feedback", "POST"],
        ["OPTIONS", "/feedback", "POST"], // no CORS preflight is ever granted
        ["HEAD", "/feedback", "POST"],
        ["DELETE", "/metrics", "GET, HEAD"],
        ["POST", "/healthz", "GET, HEAD"],
        ["PATCH", "/healthz?x=1", "GET, HEAD"],
        ["GET", "/feedback/bars-coord", "DELETE"],
        ["POST", "/feedback/bars-coord", "DELETE"],
        ["TRACE", "/metrics", "GET, HEAD"]
      ]
      for (const [method, path, allow] of cases) {
        const answer = yield* raw(method, path, { host })
        assert.strictEqual(answer.status, 405, `${method} ${path}`)
        assert.strictEqual(answer.allow, allow, `${method} ${path}`)
        if (method !== "HEAD") {
          const bare = path.split("?")[0]
          assert.deepStrictEqual(JSON.parse(answer.text), {
            error: "method_not_allowed",
            message: `${method} ${bare} is not allowed; ${bare} takes ${allow}`
          })
        }
      }
      // fetch sees the same; HEAD on a GET route is still answered as GET
      const viaFetch = yield* request("/feedback")
      assert.strictEqual(viaFetch.status, 405)
      assert.strictEqual(viaFetch.headers.get("allow"), "POST")
      assert.strictEqual(viaFetch.headers.get("content-type"), "application/json")
      assert.strictEqual((yield* request("/healthz", { method: "HEAD" })).status, 200)
      const unknown = yield* raw("GET", "/nope", { host })
      assert.strictEqual(unknown.status, 404)
      assert.deepStrictEqual(JSON.parse(unknown.text), { error: "not_found", message: "no route GET /nope" })
      assert.strictEqual((yield* raw("GET", "/feedback/a/b", { host })).status, 404)
      // the Host check comes first, everywhere
      const rebound = yield* raw("GET", "/feedback", { host: "evil.example" })
      assert.strictEqual(rebound.status, 403)
      assert.strictEqual(JSON.parse(rebound.text).error, "forbidden_host")
      // not feedback: never counted as rejected feedback
      assert.notInclude((yield* request("/metrics")).text, "method_not_allowed")
    }).pipe(Effect.provide(server())))

  it.live("DELETE clears an id of 128 bytes, however long its percent-encoding (the router's limit is 100)", () =>
    Effect.gen(function*() {
      const id = "é".repeat(64) // 128 bytes, 384 characters encoded
      const body = JSON.stringify({ ...JSON.parse(broadcast), coordinator_id: id })
      assert.strictEqual((yield* post(body)).status, 202)
      yield* eventually(holds(id, "hard"))
      const cleared = yield* request(`/feedback/${encodeURIComponent(id)}`, { method: "DELETE" })
      assert.strictEqual(cleared.status, 200)
      assert.deepStrictEqual(JSON.parse(cleared.text), { cleared: true, coordinator_id: id })
      yield* eventually(scaleIs(1))
      const again = yield* request(`/feedback/${encodeURIComponent(id)}`, { method: "DELETE" })
      assert.strictEqual(again.status, 404)
      assert.strictEqual(JSON.parse(again.text).error, "unknown_coordinator")
    }).pipe(Effect.provide(server())))
})

/** The runtime's health, read over HTTP. */
const healthz = Effect.gen(function*() {
  const answer = yield* request("/healthz")
  const status = yield* decodeJson(HealthStatus)(answer.text)
  const reasons = status.components.flatMap((c) => c.details["reason"] === undefined ? [] : [c.details["reason"]])
  return { http: answer.status, state: status.state, reasons }
})

describe("/healthz while the provider is held at scale 0", () => {
  it.live("a hard coordinator: degraded, naming who pauses it", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* post(broadcast)).status, 202)
      yield* eventually(scaleIs(0))
      const health = yield* healthz
      assert.strictEqual(health.http, 200) // degraded is still served: the process is alive
      assert.strictEqual(health.state, "degraded")
      assert.include(health.reasons, "provider paused (scale 0) by bars-coord at hard")
    }).pipe(Effect.provide(server())))

  it.live("a policy whose soft scale is 0: soft pauses it, degraded", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* post(core)).status, 202)
      yield* eventually(scaleIs(0))
      const health = yield* healthz
      assert.strictEqual(health.state, "degraded")
      assert.include(health.reasons, "provider paused (scale 0) by store_01 at soft")
    }).pipe(Effect.provide(server(undefined, { MDP_FB_SCALE_SOFT: "0" }))))

  it.live("a policy whose ok scale is 0: paused at ok by the policy itself, degraded", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* post(core.replace("\"soft\"", "\"ok\""))).status, 202)
      yield* eventually(scaleIs(0))
      const health = yield* healthz
      assert.strictEqual(health.state, "degraded")
      assert.isTrue(health.reasons.some((r) => r.startsWith("provider paused (scale 0)")), health.reasons.join("; "))
    }).pipe(Effect.provide(server(undefined, { MDP_FB_SCALE_OK: "0" }))))

  it.live("feedback disabled, the scale set to 0 by the application: degraded", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* healthz).state, "healthy")
      yield* (yield* RateCoordinator).setBudgetScale("ibkr", 0)
      const health = yield* healthz
      assert.strictEqual(health.state, "degraded")
      assert.isTrue(health.reasons.some((r) => r.startsWith("provider paused (scale 0)")), health.reasons.join("; "))
      yield* (yield* RateCoordinator).setBudgetScale("ibkr", 1)
      assert.strictEqual((yield* healthz).state, "healthy")
    }).pipe(Effect.provide(server(undefined, { MDP_FB_ENABLE_FEEDBACK: "false" }))))

  it.live(
    "shared buckets: a coordinator another process heard pauses it; degraded here too, saying so (the machine's Redis)",
    () => {
      const prefix = `hz${process.pid}x${Date.now()}`
      const redis = NodeRedis.layer({ url: "redis://127.0.0.1:6379", disableOfflineQueue: true })
      const shared = UnifiedRuntime.layerWithCoordinator(
        RateCoordinator.layerRedis({ prefix }).pipe(Layer.provide(redis))
      ).pipe(Layer.provideMerge(Layer.merge(FeedbackSettings.layerConfig, ProviderSettings.layerConfig)))
      return Effect.gen(function*() {
        const scope = yield* Effect.scope
        // another process: its own coordinator on the same Redis and prefix, whose handler heard bars-coord
        const other = yield* Layer.buildWithScope(
          RateCoordinator.layerRedis({ prefix }).pipe(Layer.provide(redis)),
          scope
        )
        yield* Effect.addFinalizer(() =>
          Effect.gen(function*() {
            const client = Context.get(yield* Layer.buildWithScope(redis, scope), Redis.Redis)
            const keys = yield* client.send<Array<string>>("KEYS", `{${prefix}:rl:*`)
            if (keys.length > 0) yield* client.send("UNLINK", ...keys)
          }).pipe(Effect.ignore)
        )
        yield* Context.get(other, RateCoordinator).registerProvider("ibkr", { capacity: 100, refillRate: 100 })
        yield* Context.get(other, CoordinatorLevels).report("ibkr", "bars-coord", "hard", 0)
        let health = yield* healthz
        for (let i = 0; i < 100 && health.state === "healthy"; i++) {
          yield* Effect.sleep("20 millis")
          health = yield* healthz
        }
        assert.strictEqual(health.state, "degraded")
        assert.isTrue(
          health.reasons.some((r) => r.startsWith("provider paused (scale 0)") && r.includes("another process")),
          health.reasons.join("; ")
        )
        // the other process's coordinator reports ok: healthy again
        yield* Context.get(other, CoordinatorLevels).report("ibkr", "bars-coord", "ok", 1)
        for (let i = 0; i < 100 && health.state !== "healthy"; i++) {
          yield* Effect.sleep("20 millis")
          health = yield* healthz
        }
        assert.strictEqual(health.state, "healthy")
      }).pipe(Effect.scoped, Effect.provide(server(undefined, {}, {}, shared)))
    },
    { timeout: 30_000 }
  )
})

/** An open `/console/events` stream: what it has sent so far, and a way to leave. */
const openConsole = Effect.flatMap(baseUrl, (url) =>
  Effect.promise(async () => {
    const controller = new AbortController()
    const response = await fetch(`${url}/console/events`, { signal: controller.signal })
    let text = ""
    if (response.status === 200) {
      void (async () => {
        const decoder = new TextDecoder()
        try {
          for await (const chunk of response.body!) text += decoder.decode(chunk as Uint8Array, { stream: true })
        } catch {
          // left
        }
      })()
    }
    return { status: response.status, headers: response.headers, text: () => text, close: () => controller.abort() }
  }))

/** The server-sent messages of a stream's text that carry a snapshot. */
const snapshotsIn = (text: string) =>
  text.split("\n\n").filter((m) => /(^|\n)data: \{"ts"/.test(m) && !/(^|\n)event: /.test(m))

/** Polls (every 20 ms, for up to 20 s) until `check` holds. */
const until = (what: string, check: () => boolean) =>
  Effect.gen(function*() {
    const deadline = Date.now() + 20_000
    while (!check()) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep("20 millis")
    }
  })

/** The open consoles, as `GET /console/snapshot` reports them. */
const consoles = Effect.map(request("/console/snapshot"), (answer) => JSON.parse(answer.text).clients as number)

describe("the live console's routes", () => {
  it.live("read-only like /healthz: GET and HEAD only (405 with Allow), the Host check first, no token needed", () =>
    Effect.gen(function*() {
      const host = new URL(yield* baseUrl).host
      for (const path of ["/", "/console/events", "/console/snapshot", "/console/app.js", "/console/app.css"]) {
        for (const method of ["POST", "DELETE"]) {
          const answer = yield* raw(method, path, { host })
          assert.strictEqual(answer.status, 405, `${method} ${path}`)
          assert.strictEqual(answer.allow, "GET, HEAD", `${method} ${path}`)
        }
        assert.strictEqual((yield* raw("GET", path, { host: "evil.example" })).status, 403, path)
      }
      const page = yield* request("/")
      assert.strictEqual(page.status, 200)
      assert.match(page.headers.get("content-type") ?? "", /^text\/html/)
      assert.include(page.headers.get("content-security-policy") ?? "", "script-src 'self'")
      assert.notInclude(page.text, "s3cret")
      assert.strictEqual((yield* request("/console/app.js")).status, 200)
      // HEAD answers at once and holds no console slot
      const head = yield* request("/console/events", { method: "HEAD" })
      assert.strictEqual(head.status, 200)
      assert.match(head.headers.get("content-type") ?? "", /^text\/event-stream/)
      // changes still need the token
      assert.strictEqual((yield* post(core)).status, 401)
    }).pipe(Effect.provide(server("s3cret"))))

  it.live("the snapshot: provider, the coordinator holding it with its queue, health reasons, rejections", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* post("{\"level\":\"loud\"}")).status, 400)
      assert.strictEqual((yield* post(broadcast)).status, 202)
      yield* eventually(holds("bars-coord", "hard"))
      yield* eventually(scaleIs(0))
      const snapshot = JSON.parse((yield* request("/console/snapshot")).text)
      const provider = snapshot.providers.find((p: { name: string }) => p.name === "ibkr")
      assert.deepInclude(provider, { baseRate: 100, rate: 0, scale: 0, level: "hard", capacity: 100, waiters: 0 })
      assert.strictEqual(typeof provider.tokens, "number")
      assert.deepInclude(snapshot.coordinators[0], {
        id: "bars-coord",
        level: "hard",
        queueSize: 950,
        capacity: 1000,
        holding: "ibkr",
        reason: "worst of 1 coordinator: hard"
      })
      assert.isAtMost(snapshot.coordinators[0].lastReportAgeSec, 5)
      assert.strictEqual(snapshot.health.state, "degraded")
      assert.match(snapshot.health.reasons.join("\n"), /paused \(scale 0\) by bars-coord at hard/)
      // what was refused, not the message (it can quote a request, and the console needs no token)
      assert.deepStrictEqual(snapshot.rejections.map((r: Record<string, unknown>) => ({ ...r, ts: 0 })), [
        { ts: 0, status: 400, reason: "invalid_event", method: "POST", path: "/feedback" }
      ])
    }).pipe(Effect.provide(server())))

  it.live("the event stream: retry and a keep-alive, the history, then snapshots; at most maxConsoleClients (503)", () =>
    Effect.gen(function*() {
      const first = yield* openConsole
      const second = yield* openConsole
      assert.strictEqual(first.status, 200)
      assert.match(first.headers.get("content-type") ?? "", /^text\/event-stream/)
      assert.strictEqual(second.status, 200)
      const third = yield* openConsole
      assert.strictEqual(third.status, 503)
      yield* until("3 snapshots", () => snapshotsIn(first.text()).length >= 3)
      const text = first.text()
      // on connect, whichever tick it joins at: retry, a keep-alive comment, the history
      assert.match(text, /^retry: \d+\n: keep-alive\n\nevent: history\ndata: (.*)\n\n/)
      assert.isObject(JSON.parse(/event: history\ndata: (.*)\n\n/.exec(text)![1]!).points)
      // a refused console is not a refused feedback event: neither counted nor listed
      const metrics = (yield* request("/metrics")).text
      assert.notInclude(metrics, "reason=\"busy\"")
      const snapshot = JSON.parse(/data: (\{"ts".*)\n\n/.exec(text)![1]!)
      assert.deepStrictEqual(snapshot.rejections, [])
      // a console that leaves gives its place back; a console opened now gets the history so far
      first.close()
      let again: { status: number; text: () => string; close: () => void } | undefined
      for (let i = 0; i < 200 && again?.status !== 200; i++) {
        yield* Effect.sleep("20 millis")
        again = yield* openConsole
        if (again.status !== 200) again.close()
      }
      assert.strictEqual(again?.status, 200)
      yield* until("the history", () => /event: history\n/.test(again!.text()))
      const history = JSON.parse(/event: history\ndata: (.*)\n\n/.exec(again!.text())![1]!)
      assert.isAtLeast(history.points.ibkr.length, 3)
      again!.close()
      second.close()
    }).pipe(Effect.provide(server(undefined, {}, { maxConsoleClients: 2 }))))

  it.live("the producer runs only while a console is open", () =>
    Effect.gen(function*() {
      const first = yield* openConsole
      yield* until("2 snapshots", () => snapshotsIn(first.text()).length >= 2)
      first.close()
      // served from the producer while it runs, read now once no console is open
      let open = 1
      for (let i = 0; i < 500 && open !== 0; i++) {
        open = yield* consoles
        if (open !== 0) yield* Effect.sleep("20 millis")
      }
      assert.strictEqual(open, 0)
      const closed = Date.now()
      // long enough for a running producer (every 500 ms) to have made two more points
      yield* Effect.sleep("1200 millis")
      const reopened = Date.now()
      const next = yield* openConsole
      yield* until("the history", () => /event: history\n/.test(next.text()))
      next.close()
      const points: Array<[number, number, number]> =
        JSON.parse(/event: history\ndata: (.*)\n\n/.exec(next.text())![1]!).points.ibkr
      assert.isAtLeast(points.length, 2)
      assert.deepStrictEqual(points.filter(([t]) => t >= closed && t < reopened), [])
    }).pipe(Effect.provide(server(undefined, {}, { maxConsoleClients: 2 }))))
})
