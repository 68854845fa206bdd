/**
 * market-data-pipeline: backpressure-aware rate control on Effect 4.
 *
 * @since 0.1.0
 */
export * from "./contracts/BackpressureLevel.ts"
export * from "./contracts/Codec.ts"
export * from "./contracts/Control.ts"
export * from "./contracts/FeedbackEvent.ts"
export * from "./contracts/FeedbackPublisher.ts"
export * from "./contracts/Health.ts"
export * from "./contracts/MetricSeries.ts"
export * from "./contracts/RateAdjustment.ts"
export * from "./contracts/RateController.ts"
export * from "./feedback/FeedbackBus.ts"
export * as FeedbackHandler from "./feedback/FeedbackHandler.ts"
export * from "./feedback/FeedbackPolicy.ts"
export * from "./feedback/FeedbackSettings.ts"
export * as RateCoordinatorAdapter from "./feedback/RateCoordinatorAdapter.ts"
export * from "./metrics/PipelineMetrics.ts"
export * from "./pulse/PulseCodec.ts"
export * from "./pulse/PulseConsumer.ts"
export * from "./pulse/PulsePublisher.ts"
export * from "./rate/CoordinatorLevels.ts"
export * from "./rate/RateCoordinator.ts"
export * from "./rate/RateError.ts"
export * from "./runtime/UnifiedRuntime.ts"
export * from "./version.ts"
