/**
 * Composing the feedback loop into your own Effect application.
 *
 * Run it with `npx node --conditions=market-data-pipeline:source examples/compose-runtime.ts`
 * (or import from "market-data-pipeline" after `npm run build`).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Clock, ConfigProvider, Console, Effect, Layer } from "effect"
import {
  type FeedbackEvent,
  FeedbackPublisher,
  PipelineMetrics,
  RateCoordinator,
  UnifiedRuntime
} from "market-data-pipeline"

// Your provider client: every call goes through the provider's token bucket.
const fetchQuote = (symbol: string) =>
  Effect.gen(function*() {
    const rate = yield* RateCoordinator
    yield* rate.acquire("ibkr")
    return { symbol, bid: 100, ask: 100.01 }
  })

// Your store (or anything else) publishes backpressure feedback on the bus.
const storeFeedback = (level: FeedbackEvent["level"], queueSize: number) =>
  Effect.map(Clock.currentTimeMillis, (millis): FeedbackEvent => ({
    coordinatorId: "bars-coord",
    queueSize,
    capacity: 1000,
    level,
    source: "store",
    ts: millis / 1000
  }))

const program = Effect.gen(function*() {
  const publisher = yield* FeedbackPublisher
  const rate = yield* RateCoordinator

  yield* Effect.forEach(["AAPL", "MSFT", "NVDA"], fetchQuote)
  yield* publisher.publish(yield* storeFeedback("soft", 820))
  // the handler ran inside publish: the scale soft asks for is in force
  const state = yield* rate.state("ibkr")
  yield* Console.log(`after soft: ${state.rate} tokens/s (scale ${state.scale}, pressure ${state.pressure})`)

  yield* Console.log(yield* UnifiedRuntime.health)
  const metrics = yield* (yield* PipelineMetrics).prometheus
  yield* Console.log(metrics.split("\n").filter((line) => line.startsWith("pipeline_rate_scale_factor")).join("\n"))
})

// Settings come from Config: here a fixed map instead of the environment.
const settings = ConfigProvider.layer(ConfigProvider.fromUnknown({
  MDP_FB_PROVIDER_NAME: "ibkr",
  MDP_PROVIDER_RATE: "50",
  MDP_PROVIDER_BURST: "50",
  MDP_FB_SCALE_SOFT: "0.6"
}))

program.pipe(
  Effect.provide(UnifiedRuntime.layer.pipe(Layer.provide(settings))),
  NodeRuntime.runMain
)
