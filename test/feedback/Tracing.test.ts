import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, type Duration, Effect, Fiber, Layer, Option, References, Tracer } from "effect"
import { TestClock } from "effect/testing"
import { FeedbackPublisher, RateCoordinator, UnifiedRuntime } from "market-data-pipeline"
import { AcquireWaitSpanThreshold } from "../../src/rate/internal/coordinator.ts"
import * as Setting from "../../src/runtime/Setting.ts"
import * as Tracing from "../../src/service/Tracing.ts"
import { event, eventually, letOthersRun } from "./helpers.ts"

/** A tracer that keeps every span it makes (Effect's own in-memory spans). */
const recording = () => {
  const spans: Array<Tracer.NativeSpan> = []
  const tracer = Tracer.make({
    span: (options) => {
      const span = new Tracer.NativeSpan(options)
      spans.push(span)
      return span
    }
  })
  const named = (name: string) => spans.filter((s) => s.name === name)
  return { spans, tracer, named }
}

type Recording = ReturnType<typeof recording>

/**
 * The runtime built under the recording tracer, with tracing on or off, an
 * acquire wait threshold of 10 ms; the test's own fiber traces with it too.
 */
const withRuntime =
  (recorder: Recording, enabled: boolean, vars: Record<string, string> = {}) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    effect.pipe(
      Effect.provide(
        Layer.fresh(UnifiedRuntime.layer).pipe(
          Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({
            MDP_PROVIDER_BURST: "100",
            MDP_PROVIDER_RATE: "100",
            ...vars
          })))
        )
      ),
      Effect.provideService(Tracer.Tracer, recorder.tracer),
      Effect.provideService(References.TracerEnabled, enabled),
      Effect.provideService(AcquireWaitSpanThreshold, 0.01)
    )

const scaleIs = (scale: number) =>
  Effect.gen(function*() {
    return (yield* (yield* RateCoordinator).state("ibkr")).scale === scale
  })

const feedbackOrRate = (span: Tracer.NativeSpan) => /^(feedback|rate)\./.test(span.name)

/** Acquires one token in a fiber of its own, moves the test clock by `advance`, and waits for the grant. */
const acquireAdvancing = (advance: Duration.Input) =>
  Effect.gen(function*() {
    const coordinator = yield* RateCoordinator
    const fiber = yield* Effect.forkChild(coordinator.acquire("ibkr"))
    yield* letOthersRun
    yield* TestClock.adjust(advance)
    yield* Fiber.join(fiber)
  })

describe("tracing in process (UnifiedRuntime.layer under a recording tracer)", () => {
  it.effect("TracerEnabled false: no feedback.* or rate.* span, not even for a long acquire wait", () => {
    const recorder = recording()
    return Effect.gen(function*() {
      const publisher = yield* FeedbackPublisher
      yield* Effect.withSpan(publisher.publish(event("store_01", "soft")), "test.publish")
      yield* eventually(scaleIs(0.5))
      // at 50/s with a burst of 1: the second acquire waits 20 ms, over the threshold
      const coordinator = yield* RateCoordinator
      yield* coordinator.acquire("ibkr")
      yield* acquireAdvancing("30 millis")
      yield* letOthersRun
      assert.deepStrictEqual(recorder.spans.filter(feedbackOrRate).map((s) => s.name), [])
    }).pipe(withRuntime(recorder, false, { MDP_PROVIDER_BURST: "1" }))
  })

  it.effect("enabled: feedback.handle is the publisher's span's child, rate.adjust the handle's", () => {
    const recorder = recording()
    return Effect.gen(function*() {
      const publisher = yield* FeedbackPublisher
      yield* Effect.withSpan(publisher.publish(event("store_01", "soft")), "test.publish")
      yield* eventually(scaleIs(0.5))
      yield* eventually(Effect.sync(() => recorder.named("rate.adjust").length > 0))
      const [publish] = recorder.named("test.publish")
      const handles = recorder.named("feedback.handle")
      const adjusts = recorder.named("rate.adjust")
      assert.strictEqual(handles.length, 1)
      assert.strictEqual(adjusts.length, 1)
      const handle = handles[0]!
      const adjust = adjusts[0]!
      assert.strictEqual(Option.getOrUndefined(handle.parent), publish)
      assert.strictEqual(handle.traceId, publish!.traceId)
      assert.strictEqual(Option.getOrUndefined(adjust.parent), handle)
      assert.strictEqual(handle.attributes.get("feedback.coordinator_id"), "store_01")
      assert.strictEqual(handle.attributes.get("feedback.level"), "soft")
      assert.strictEqual(handle.attributes.get("feedback.queue_size"), 800)
      assert.strictEqual(handle.attributes.get("rate.provider"), "ibkr")
      assert.strictEqual(adjust.attributes.get("rate.scale"), 0.5)
      assert.strictEqual(adjust.attributes.get("feedback.level"), "soft")
    }).pipe(withRuntime(recorder, true))
  })

  it.effect("acquire waits, threshold 10 ms: an immediate grant or a 5 ms wait is no span, a 50 ms wait is one", () => {
    const recorder = recording()
    return Effect.gen(function*() {
      const coordinator = yield* RateCoordinator
      const waits = () => recorder.named("rate.acquire.wait")
      // 20/s, burst 1: the bucket starts full, the first acquire is granted at once
      yield* coordinator.acquire("ibkr")
      assert.strictEqual(waits().length, 0)
      // 45 ms later 0.9 tokens: the next acquire waits 5 ms
      yield* TestClock.adjust("45 millis")
      yield* acquireAdvancing("6 millis")
      assert.strictEqual(waits().length, 0)
      // the bucket is empty: the next one waits 50 ms
      yield* acquireAdvancing("60 millis")
      assert.strictEqual(waits().length, 1)
      const wait = waits()[0]!
      assert.strictEqual(wait.attributes.get("rate.provider"), "ibkr")
      assert.strictEqual(wait.attributes.get("rate.tokens"), 1)
      const waited = wait.attributes.get("rate.waited_seconds") as number
      assert.isAtLeast(waited, 0.049)
      assert.isAtMost(waited, 0.06)
      assert.strictEqual(wait.status._tag, "Ended")
    }).pipe(withRuntime(recorder, true, { MDP_PROVIDER_BURST: "1", MDP_PROVIDER_RATE: "20" }))
  })
})

describe("tracing settings", () => {
  const read = (vars: Record<string, string>) =>
    Setting.readAll(Tracing.settings).pipe(
      Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromUnknown(vars))
    )

  it.effect("off without an endpoint, or with OTEL_SDK_DISABLED=true whatever the endpoints", () =>
    Effect.gen(function*() {
      assert.strictEqual(Tracing.fromSettings(yield* read({})), Layer.empty)
      const endpoint = "http://127.0.0.1:4318"
      assert.notStrictEqual(Tracing.fromSettings(yield* read({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint })), Layer.empty)
      assert.notStrictEqual(
        Tracing.fromSettings(yield* read({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${endpoint}/v1/traces` })),
        Layer.empty
      )
      const disabled = yield* read({
        OTEL_SDK_DISABLED: "true",
        OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${endpoint}/v1/traces`
      })
      assert.isTrue(disabled.otelSdkDisabled)
      assert.strictEqual(Tracing.fromSettings(disabled), Layer.empty)
    }))

  it.effect("OTEL_SERVICE_NAME takes any non-blank name, spaces included; the traces endpoint must be a URL", () =>
    Effect.gen(function*() {
      assert.strictEqual(
        (yield* read({ OTEL_SERVICE_NAME: "market data pipeline" })).otelServiceName,
        "market data pipeline"
      )
      // empty is unset (the OpenTelemetry rule): the default
      assert.strictEqual((yield* read({ OTEL_SERVICE_NAME: "" })).otelServiceName, "market-data-pipeline")
      const blank = yield* Effect.flip(read({ OTEL_SERVICE_NAME: "   " }))
      assert.include(blank.message, "OTEL_SERVICE_NAME")
      const bad = yield* Effect.flip(read({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "collector:4318/v1/traces" }))
      assert.include(bad.message, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
      assert.include(bad.message, "expected an http:// or https:// URL")
    }))
})
