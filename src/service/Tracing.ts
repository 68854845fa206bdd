/**
 * OpenTelemetry traces of the feedback path, exported over OTLP/HTTP with
 * Effect's own OTLP tracer (`effect/observability/OtlpTracer`, JSON
 * encoding) when `OTEL_EXPORTER_OTLP_ENDPOINT` or
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set and `OTEL_SDK_DISABLED` is
 * not true; off otherwise.
 *
 * The spans come from the library, which looks at the tracer once, when its
 * layers are built: with Effect's native tracer (no exporter, the default)
 * it makes no span of its own and carries nothing with an event, so tracing
 * off costs nothing per event and nothing per acquire. With this layer
 * installed:
 *
 * - `POST /feedback` is the HTTP server span (`POST /feedback`, a child of
 *   the caller's W3C `traceparent` when one is sent), with
 *   `feedback.receive` in it and `feedback.decode` in that; a Pulse entry is
 *   a `feedback.receive` span of kind `consumer` (continuing a `traceparent`
 *   found in the envelope's headers).
 * - The event crosses the bus with the receive span, so `feedback.handle`
 *   (the handler's fiber) is its child and `rate.adjust` (the coordinator
 *   call) the handle's.
 * - An acquire that parked for at least `MDP_TRACE_ACQUIRE_WAIT_MS` is a
 *   `rate.acquire.wait` span over the wait; immediate grants never are.
 *
 * `GET /metrics`, `GET /healthz` and the console (`/`, `/console/*`) are
 * not traced (they are not feedback).
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as HttpClient from "effect/http/FetchHttpClient"
import * as HttpMiddleware from "effect/http/HttpMiddleware"
import type * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as Layer from "effect/Layer"
import * as OtlpSerialization from "effect/observability/OtlpSerialization"
import * as OtlpTracer from "effect/observability/OtlpTracer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { AcquireWaitSpanThreshold } from "../rate/internal/coordinator.ts"
import * as Setting from "../runtime/Setting.ts"
import { version } from "../version.ts"

const httpUrl = Schema.String.check(Schema.isPattern(/^https?:\/\/[^\s/?#]+[^\s#]*$/))

// `key=value,key2=value2`, values percent-encoded (the OpenTelemetry format)
const headerList = /^\s*[^\s=,]+\s*=[^,]*(,\s*[^\s=,]+\s*=[^,]*)*$/

/**
 * The tracing settings: the standard OpenTelemetry variables, and the
 * acquire wait from which a wait is a span.
 *
 * @since 0.1.0
 * @category settings
 */
export const settings = {
  otelSdkDisabled: Setting.make({
    env: "OTEL_SDK_DISABLED",
    group: "tracing",
    description: "true: nothing is traced, whatever the endpoints",
    schema: Setting.BooleanText,
    expected: Setting.booleanExpected,
    default: false
  }),
  otelEndpoint: Setting.optional({
    env: "OTEL_EXPORTER_OTLP_ENDPOINT",
    group: "tracing",
    description: "an OTLP/HTTP collector (e.g. http://127.0.0.1:4318): traces go to <endpoint>/v1/traces; " +
      "unset (and no traces endpoint), nothing is traced",
    schema: Schema.String.check(Schema.isPattern(/^https?:\/\/[^\s/?#]+[^\s?#]*$/)),
    expected: "an http:// or https:// URL",
    defaultText: "none: tracing off"
  }),
  otelTracesEndpoint: Setting.optional({
    env: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    group: "tracing",
    description: "the full URL spans are posted to, used as is (overrides <OTEL_EXPORTER_OTLP_ENDPOINT>/v1/traces)",
    schema: httpUrl,
    expected: "an http:// or https:// URL",
    defaultText: "<OTEL_EXPORTER_OTLP_ENDPOINT>/v1/traces"
  }),
  otelServiceName: Setting.make({
    env: "OTEL_SERVICE_NAME",
    group: "tracing",
    description: "the service.name of the exported spans",
    schema: Schema.String.check(Schema.isPattern(/\S/)),
    expected: "a non-empty name (spaces allowed)",
    default: "market-data-pipeline"
  }),
  otelHeaders: Setting.optional({
    env: "OTEL_EXPORTER_OTLP_HEADERS",
    group: "tracing",
    description: "headers sent with every export, key=value,key2=value2 (values percent-encoded)",
    schema: Schema.RedactedFromValue(Schema.String.check(Schema.isPattern(headerList))),
    expected: "key=value pairs, comma-separated",
    secret: true,
    defaultText: "none"
  }),
  otelExportDelayMs: Setting.make({
    env: "OTEL_BSP_SCHEDULE_DELAY",
    group: "tracing",
    description: "milliseconds between two exports of the spans ended meanwhile",
    schema: Setting.PositiveInt,
    expected: "a positive integer (ms)",
    default: 5000
  }),
  traceAcquireWaitMs: Setting.make({
    env: "MDP_TRACE_ACQUIRE_WAIT_MS",
    group: "tracing",
    description: "an acquire that waited this long or longer is a rate.acquire.wait span",
    schema: Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0)),
    expected: "milliseconds, a number from 0",
    default: 10
  })
}

/**
 * Where and how to export.
 *
 * @since 0.1.0
 * @category models
 */
export interface TracingOptions {
  /**
   * The OTLP/HTTP base endpoint; spans are posted to `<endpoint>/v1/traces`
   * (`http://localhost:4318`, the OpenTelemetry default, if neither this nor
   * `tracesEndpoint` is given).
   */
  readonly endpoint?: string | undefined
  /** The full URL spans are posted to, used as is; overrides `endpoint`. */
  readonly tracesEndpoint?: string | undefined
  /** `service.name`; default `market-data-pipeline`. */
  readonly serviceName?: string | undefined
  /** Headers of every export (an API key). */
  readonly headers?: Readonly<Record<string, string>> | undefined
  /** Time between exports; default 5 seconds. */
  readonly exportInterval?: Duration.Input | undefined
  /** The wait from which a parked acquire is a span; default 10 ms. */
  readonly acquireWaitThreshold?: Duration.Input | undefined
}

/** `<endpoint>/v1/traces`, as the OpenTelemetry specification derives it from the base endpoint. */
const tracesUrl = (endpoint: string): string => {
  const url = new URL(endpoint)
  url.pathname += `${url.pathname.endsWith("/") ? "" : "/"}v1/traces`
  return url.toString()
}

/** The span name of a request: the method and the route, never the coordinator id of a path. */
const spanName = (request: HttpServerRequest.HttpServerRequest): string => {
  const path = request.url.split(/[?#]/, 1)[0] ?? ""
  return `${request.method} ${path.startsWith("/feedback/") ? "/feedback/{coordinator_id}" : path}`
}

/** Scrapes, health checks and the console (its page, its live stream) are not feedback. */
const untraced = (request: HttpServerRequest.HttpServerRequest): boolean => {
  const path = request.url.split(/[?#]/, 1)[0] ?? ""
  return path === "/metrics" || path === "/healthz" || path === "/" || path === "/console" ||
    path.startsWith("/console/")
}

/**
 * Exports the spans of everything built on top of it over OTLP/HTTP (JSON),
 * with `fetch`; what is left is flushed when its scope closes. Provide it
 * below every other layer of the service: the library decides, as its
 * layers are built, whether to make spans at all.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: TracingOptions): Layer.Layer<never> =>
  Layer.mergeAll(
    OtlpTracer.layer({
      url: options.tracesEndpoint ?? tracesUrl(options.endpoint ?? "http://localhost:4318"),
      resource: { serviceName: options.serviceName ?? "market-data-pipeline", serviceVersion: version },
      headers: options.headers,
      exportInterval: options.exportInterval ?? Duration.seconds(5)
    }).pipe(
      Layer.provide(Layer.merge(OtlpSerialization.layerJson, HttpClient.layer))
    ),
    Layer.succeed(HttpMiddleware.SpanNameGenerator, spanName),
    Layer.succeed(HttpMiddleware.TracerDisabledWhen, untraced),
    Layer.succeed(
      AcquireWaitSpanThreshold,
      Duration.toSeconds(Duration.fromInputUnsafe(options.acquireWaitThreshold ?? Duration.millis(10)))
    )
  )

/** `key=value,key2=value2` → headers (values percent-decoded). */
const parseHeaders = (list: string): Record<string, string> => {
  const headers: Record<string, string> = {}
  for (const pair of list.split(",")) {
    const eq = pair.indexOf("=")
    if (eq <= 0) continue
    const value = pair.slice(eq + 1).trim()
    let decoded: string
    try {
      decoded = decodeURIComponent(value)
    } catch {
      decoded = value
    }
    headers[pair.slice(0, eq).trim().toLowerCase()] = decoded
  }
  return headers
}

/**
 * The layer the settings ask for: {@link layer} when
 * `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
 * (used as is) is set and `OTEL_SDK_DISABLED` is not true, else nothing
 * (Effect's native tracer stays, and the library makes no spans).
 *
 * @since 0.1.0
 * @category layers
 */
export const fromSettings = (values: Setting.Values<typeof settings>): Layer.Layer<never> =>
  values.otelSdkDisabled || (Option.isNone(values.otelEndpoint) && Option.isNone(values.otelTracesEndpoint))
    ? Layer.empty
    : layer({
      endpoint: Option.getOrUndefined(values.otelEndpoint),
      tracesEndpoint: Option.getOrUndefined(values.otelTracesEndpoint),
      serviceName: values.otelServiceName,
      headers: Option.getOrUndefined(Option.map(values.otelHeaders, (h) => parseHeaders(Redacted.value(h)))),
      exportInterval: Duration.millis(values.otelExportDelayMs),
      acquireWaitThreshold: Duration.millis(values.traceAcquireWaitMs)
    })
