import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { encodeEntry } from "market-data-pipeline"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { createClient } from "redis"
import { type Running, start as startCli, waitFor } from "../helpers/cli.ts"
import { pulseExamples } from "../pulse/helpers/examples.ts"

/** A span as Effect's OTLP/JSON exporter writes it (the fields the test reads). */
interface OtlpSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string | undefined
  readonly name: string
  readonly kind: number
  readonly attributes: ReadonlyArray<{ readonly key: string; readonly value: Record<string, unknown> }>
  readonly status?: { readonly code?: number | undefined } | undefined
}

interface Receiver {
  readonly url: string
  readonly spans: Array<OtlpSpan>
  readonly serviceNames: Set<string>
  readonly close: () => Promise<void>
}

/** A small OTLP/HTTP receiver: POST /v1/traces with a JSON body; every span is kept. */
const receiver = (): Promise<Receiver> =>
  new Promise((resolve) => {
    const spans: Array<OtlpSpan> = []
    const serviceNames = new Set<string>()
    const server = http.createServer((req, res) => {
      let body = ""
      req.setEncoding("utf8")
      req.on("data", (chunk) => (body += chunk))
      req.on("end", () => {
        if (req.method !== "POST" || req.url !== "/v1/traces" || !/json/.test(req.headers["content-type"] ?? "")) {
          res.writeHead(404).end()
          return
        }
        const data = JSON.parse(body) as {
          resourceSpans: Array<{
            resource: { attributes: OtlpSpan["attributes"] }
            scopeSpans: Array<{ spans: Array<OtlpSpan> }>
          }>
        }
        for (const resourceSpans of data.resourceSpans) {
          const name = resourceSpans.resource.attributes.find((a) => a.key === "service.name")
          if (name !== undefined) serviceNames.add(String(name.value["stringValue"]))
          for (const scope of resourceSpans.scopeSpans) spans.push(...scope.spans)
        }
        res.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resolve({
        url: `http://127.0.0.1:${port}`,
        spans,
        serviceNames,
        close: () => new Promise<void>((done) => server.close(() => done()))
      })
    })
  })

const start = (args: ReadonlyArray<string>, env: Record<string, string>): Running =>
  startCli(args, {
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: undefined,
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: undefined,
      OTEL_SDK_DISABLED: undefined,
      ...env
    }
  })

const attribute = (span: OtlpSpan, key: string): unknown => {
  const value = span.attributes.find((a) => a.key === key)?.value
  if (value === undefined) return undefined
  const v = value["stringValue"] ?? value["intValue"] ?? value["doubleValue"] ?? value["boolValue"]
  return typeof v === "string" && "intValue" in value ? Number(v) : v
}

const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
const callerSpan = "00f067aa0ba902b7"

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${url}/feedback`, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json", ...headers }
  }).then((r) => r.status)

describe("OpenTelemetry traces", () => {
  it.live(
    "exports the feedback path over OTLP/HTTP, continuing the caller's traceparent",
    () =>
      Effect.promise(async () => {
        const otlp = await receiver()
        const running = start(
          ["run", "--port", "0", "--no-simulated-store", "--duration", "60"],
          {
            OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
            OTEL_SERVICE_NAME: "mdp trace test",
            OTEL_BSP_SCHEDULE_DELAY: "100",
            MDP_TRACE_ACQUIRE_WAIT_MS: "1"
          }
        )
        try {
          const url = await waitFor(
            running,
            30,
            () => running.output().match(/listening on (http:\/\/[\d.]+:\d+)/)?.[1]
          )
          const status = await post(
            url,
            { coordinator_id: "store-a", queue_size: 850, capacity: 1000, level: "soft" },
            {
              traceparent: `00-${callerTrace}-${callerSpan}-01`
            }
          )
          assert.strictEqual(status, 202)
          const named = (name: string) =>
            otlp.spans.find((s) => s.name === name && s.traceId === callerTrace && s.name !== "")
          await waitFor(
            running,
            20,
            () => named("feedback.receive") && named("feedback.decode") && named("rate.adjust") ? true : undefined
          )
          const server = named("POST /feedback")!
          const receive = named("feedback.receive")!
          const decode = named("feedback.decode")!
          const handle = named("feedback.handle")!
          const adjust = named("rate.adjust")!

          // the HTTP server span continues the caller's trace; receive is in it
          assert.isDefined(server, "the server span")
          assert.strictEqual(server.parentSpanId, callerSpan)
          assert.strictEqual(server.kind, 2) // SERVER
          assert.strictEqual(attribute(server, "http.response.status_code"), 202)
          assert.strictEqual(receive.parentSpanId, server.spanId)
          assert.strictEqual(decode.parentSpanId, receive.spanId)
          // across the bus, in the handler's fiber
          assert.strictEqual(handle.parentSpanId, receive.spanId)
          assert.strictEqual(adjust.parentSpanId, handle.spanId)

          assert.strictEqual(attribute(receive, "feedback.transport"), "http")
          assert.strictEqual(attribute(receive, "feedback.coordinator_id"), "store-a")
          assert.strictEqual(attribute(receive, "feedback.level"), "soft")
          assert.strictEqual(attribute(receive, "feedback.queue_size"), 850)
          assert.strictEqual(attribute(receive, "feedback.capacity"), 1000)
          assert.strictEqual(attribute(handle, "feedback.coordinator_id"), "store-a")
          assert.strictEqual(attribute(handle, "rate.provider"), "ibkr")
          assert.strictEqual(attribute(adjust, "rate.provider"), "ibkr")
          assert.strictEqual(attribute(adjust, "feedback.level"), "soft")
          assert.strictEqual(attribute(adjust, "rate.scale"), 0.5)
          assert.deepStrictEqual([...otlp.serviceNames], ["mdp trace test"])

          // without a traceparent, a trace of its own; scrapes are not traced
          await fetch(`${url}/metrics`).then((r) => r.text())
          await fetch(`${url}/`).then((r) => r.text())
          assert.strictEqual(
            await post(url, { coordinator_id: "store-b", queue_size: 1, capacity: 1000, level: "ok" }),
            202
          )
          const own = await waitFor(
            running,
            20,
            () =>
              otlp.spans.find((s) =>
                s.name === "feedback.receive" && attribute(s, "feedback.coordinator_id") === "store-b"
              )
          )
          assert.notStrictEqual(own.traceId, callerTrace)
          assert.isUndefined(otlp.spans.find((s) => s.name === "GET /metrics"))
          assert.isUndefined(otlp.spans.find((s) => s.name === "GET /"))

          // the provider's acquires park at 100/s: waits over the threshold (1 ms here) are spans
          const wait = await waitFor(running, 20, () => otlp.spans.find((s) => s.name === "rate.acquire.wait"))
          assert.strictEqual(attribute(wait, "rate.provider"), "ibkr")
          assert.strictEqual(attribute(wait, "rate.tokens"), 1)
          assert.isAtLeast(attribute(wait, "rate.waited_seconds") as number, 0.001)
        } finally {
          running.child.kill("SIGTERM")
          await running.exited
          await otlp.close()
        }
      }),
    60_000
  )

  it.live(
    "over Pulse: one receive span per entry (decode in it), the parent of the handler's span across the bus",
    () =>
      Effect.promise(async () => {
        const otlp = await receiver()
        const namespace = `ttrace${process.pid}${Date.now()}`
        const stream = `${namespace}:${namespace}.telemetry.feedback`
        const vector = pulseExamples.consume.find((v) => v.expect.ok && v.expect.event.level !== "ok")!
        const expected = vector.expect as Extract<typeof vector.expect, { ok: true }>
        const redis = createClient({ url: "redis://127.0.0.1:6379" })
        await redis.connect()
        const running = start(
          ["run", "--port", "0", "--no-simulated-store", "--pulse", "--namespace", namespace, "--duration", "60"],
          {
            // the traces endpoint is used as is, over the base endpoint's <endpoint>/v1/traces
            OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9/unused",
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${otlp.url}/v1/traces`,
            OTEL_BSP_SCHEDULE_DELAY: "100"
          }
        )
        try {
          await waitFor(running, 30, () => /listening on/.test(running.output()) ? true : undefined)
          const entryId = await redis.sendCommand(["XADD", stream, "*", "data", vector.data])
          const receive = await waitFor(running, 20, () =>
            otlp.spans.find((s) =>
              s.name === "feedback.receive" && attribute(s, "feedback.transport") === "pulse"
            ))
          const handle = await waitFor(running, 20, () =>
            otlp.spans.find((s) =>
              s.name === "feedback.handle" && s.parentSpanId === receive.spanId
            ))
          assert.strictEqual(receive.kind, 5) // CONSUMER
          assert.strictEqual(handle.traceId, receive.traceId)
          assert.strictEqual(attribute(receive, "pulse.stream"), stream)
          assert.strictEqual(attribute(receive, "pulse.entry_id"), String(entryId))
          assert.strictEqual(attribute(receive, "feedback.coordinator_id"), expected.event.coordinator_id)
          assert.strictEqual(attribute(receive, "feedback.level"), expected.event.level)
          assert.strictEqual(attribute(handle, "rate.provider"), "ibkr")
          const adjust = await waitFor(running, 20, () =>
            otlp.spans.find((s) =>
              s.name === "rate.adjust" && s.parentSpanId === handle.spanId
            ))
          assert.strictEqual(attribute(adjust, "feedback.level"), expected.event.level)
          // decoding is in the receive span
          const decode = await waitFor(running, 20, () =>
            otlp.spans.find((s) =>
              s.name === "feedback.decode" && s.parentSpanId === receive.spanId
            ))
          assert.strictEqual(decode.traceId, receive.traceId)

          // a traceparent in the (v2) envelope's headers: the receive span continues that trace
          const ts = Date.now() / 1000
          const traced = encodeEntry(
            { coordinatorId: "traced_coord", queueSize: 900, capacity: 1000, level: "hard", source: "store", ts },
            { ts, track: "v2", headers: { traceparent: `00-${callerTrace}-${callerSpan}-01` } }
          )
          await redis.sendCommand(["XADD", stream, "*", "data", traced])
          const continued = await waitFor(running, 20, () =>
            otlp.spans.find((s) =>
              s.name === "feedback.receive" && attribute(s, "feedback.coordinator_id") === "traced_coord"
            ))
          assert.strictEqual(continued.traceId, callerTrace)
          assert.strictEqual(continued.parentSpanId, callerSpan)
          assert.strictEqual(continued.kind, 5) // CONSUMER
          const continuedDecode = await waitFor(running, 20, () =>
            otlp.spans.find((s) =>
              s.name === "feedback.decode" && s.parentSpanId === continued.spanId
            ))
          assert.strictEqual(continuedDecode.traceId, callerTrace)
          await waitFor(running, 20, () =>
            otlp.spans.find((s) =>
              s.name === "feedback.handle" && s.parentSpanId === continued.spanId
            ))

          // an entry that does not decode goes to the dead-letter stream: a receive span in error
          const deadId = await redis.sendCommand(["XADD", stream, "*", "data", "not json"])
          const dead = await waitFor(running, 20, () =>
            otlp.spans.find((s) =>
              s.name === "feedback.receive" && attribute(s, "pulse.entry_id") === String(deadId)
            ))
          assert.strictEqual(attribute(dead, "feedback.dead_letter"), true)
          assert.strictEqual(dead.status?.code, 2) // ERROR
          const deadDecode = await waitFor(running, 20, () =>
            otlp.spans.find((s) =>
              s.name === "feedback.decode" && s.parentSpanId === dead.spanId
            ))
          assert.strictEqual(deadDecode.status?.code, 2)
        } finally {
          running.child.kill("SIGTERM")
          await running.exited
          await otlp.close()
          const keys = await redis.keys(`${namespace}:*`)
          if (keys.length > 0) {
            await redis.del(keys)
          }
          await redis.quit()
        }
      }),
    60_000
  )

  it.live("refuses an endpoint that is not an http(s) URL, before anything starts", () =>
    Effect.promise(async () => {
      const running = start(["run", "--port", "0", "--no-simulated-store"], {
        OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318"
      })
      const code = await running.exited
      assert.strictEqual(code, 2)
      assert.include(running.output(), "OTEL_EXPORTER_OTLP_ENDPOINT=")
      assert.include(running.output(), "expected an http:// or https:// URL")
    }), 30_000)
})
