/**
 * The in-memory RateCoordinator: a map of buckets, a timer fiber per
 * provider while it has parked waiters, and metrics read at scrape time.
 *
 * With a tracer installed (not the native one), an acquire that parked and
 * waited at least {@link AcquireWaitSpanThreshold} is recorded, once it is
 * granted (or fails, or is interrupted), as a `rate.acquire.wait` span over
 * the wait. The fast path (an immediate grant) never looks at the tracer.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import { type BackpressureLevel, levelOrdinal, parseLevel } from "../../contracts/BackpressureLevel.ts"
import { tracingEnabled } from "../../internal/tracing.ts"
import * as Cells from "../../metrics/internal/cells.ts"
import * as Histogram from "../../metrics/internal/histogram.ts"
import { type MetricDefinition, metricDefinitions, type MetricType } from "../../metrics/MetricDefinitions.ts"
import type { ProviderOptions, ProviderState, RateCoordinator } from "../RateCoordinator.ts"
import {
  type AcquireError,
  CircuitOpen,
  CoordinatorClosed,
  ExceedsCapacity,
  InvalidCooldown,
  InvalidProviderOptions,
  InvalidScale,
  InvalidTokenCount,
  ProviderInCooldown,
  UnknownProvider
} from "../RateError.ts"
import * as B from "./bucket.ts"

const defaults = {
  capacity: 60,
  refillRate: 60,
  cooldownSec: 600,
  breakerThreshold: 5,
  breakerTimeoutSec: 60
} as const

/**
 * The wait, in seconds, from which a parked acquire is recorded as a
 * `rate.acquire.wait` span (when a tracer is installed); read when the
 * coordinator is built. Default 10 ms.
 *
 * @internal
 */
export const AcquireWaitSpanThreshold: Context.Reference<number> = Context.Reference<number>(
  "market-data-pipeline/RateCoordinator/AcquireWaitSpanThreshold",
  { defaultValue: () => 0.01 }
)

/** @internal */
export const positive = (v: number): boolean => Number.isFinite(v) && v > 0

/** A finite scale clamped to [0, 1]. @internal */
export const clampScale = (scale: number): number => scale < 0 ? 0 : scale > 1 ? 1 : scale

/** @internal */
export const validate = (
  name: string,
  options: ProviderOptions
): Result.Result<B.BucketOptions, InvalidProviderOptions> => {
  // providers registered alike share one configuration object
  const resolved = Object.keys(options).length === 0 ? defaults : { ...defaults, ...options }
  const check = (option: keyof typeof defaults, ok: (value: number) => boolean, expected: string) =>
    ok(resolved[option]) ? undefined : new InvalidProviderOptions({
      provider: name,
      option,
      value: resolved[option],
      expected
    })
  const positiveInteger = (v: number) => Number.isSafeInteger(v) && v > 0
  const error = check("capacity", positiveInteger, "a positive integer") ??
    check("refillRate", positive, "a positive finite number") ??
    check("cooldownSec", positive, "a positive finite number") ??
    check("breakerThreshold", positiveInteger, "a positive integer") ??
    check("breakerTimeoutSec", positive, "a positive finite number")
  return error === undefined ? Result.succeed(resolved) : Result.fail(error)
}

/**
 * One metric value per series kind; each provider's series reads its bucket
 * at scrape time, so the hot path updates plain numbers only.
 */
/** @internal */
export const makeMetrics = () => {
  const series = <Type extends MetricType>(
    definition: MetricDefinition<"provider", Type>,
    get: (b: B.Bucket) => Cells.StateOf<Type>
  ) => ({ definition, get }) as Series
  return [
    series(metricDefinitions.rateScaleFactor, (b) => ({ value: b.scale })),
    series(metricDefinitions.rateBase, (b) => ({ value: b.config.refillRate })),
    series(metricDefinitions.rateCurrent, (b) => ({ value: b.rate })),
    series(metricDefinitions.backpressureState, (b) => ({ value: levelOrdinal(b.pressure) })),
    series(metricDefinitions.tokensGranted, (b) => ({ count: b.granted, incremental: true })),
    series(metricDefinitions.tokensReturned, (b) => ({ count: b.returned, incremental: true })),
    series(metricDefinitions.waiters, (b) => ({ value: b.waiting })),
    // immediate grants waited 0 s: they count in every bucket
    series(metricDefinitions.waitSeconds, (b) => Histogram.state(b.waits, B.WAIT_BOUNDARIES, b.immediate))
  ] as const
}

// one series kind, its type erased so the kinds fit in one array
interface Series {
  readonly definition: MetricDefinition<"provider">
  readonly get: (b: B.Bucket) => Cells.StateOf<MetricType>
}

/** @internal */
export const registerMetrics = (
  metrics: ReturnType<typeof makeMetrics>,
  b: B.Bucket,
  provider: string,
  context: Context.Context<never>
): () => void => {
  const registrations = metrics.map(({ definition, get }) =>
    Cells.registerReading(context, definition, { provider }, () => get(b))
  )
  return () => {
    for (const registration of registrations) registration.remove()
  }
}

/**
 * The checks of a registered provider's bucket that need no waiting: the
 * token count, the capacity, the breaker and a global cooldown.
 *
 * @internal
 */
export const admitLocal = (
  b: B.Bucket,
  provider: string,
  tokens: number,
  at: number
): InvalidTokenCount | ExceedsCapacity | CircuitOpen | ProviderInCooldown | undefined => {
  if (!Number.isSafeInteger(tokens) || tokens <= 0) return new InvalidTokenCount({ provider, tokens })
  if (tokens > b.config.capacity) return new ExceedsCapacity({ provider, tokens, capacity: b.config.capacity })
  if (b.openUntil !== undefined) {
    const retryAfterSec = B.breakerWait(b, at)
    if (retryAfterSec > 0) return new CircuitOpen({ provider, retryAfterSec, probing: at >= b.openUntil })
  }
  if (b.cooldowns !== undefined) {
    const remainingSec = B.cooldownRemaining(b, "global", at)
    if (remainingSec > 0) return new ProviderInCooldown({ provider, remainingSec })
  }
  return undefined
}

/** @internal */
export const make: Effect.Effect<RateCoordinator["Service"], never, Scope.Scope> = Effect.gen(function*() {
  const clock = yield* Clock.Clock
  const context = yield* Effect.context<never>()
  // read once: with the native tracer (no exporter) a wait is never recorded
  const tracer = yield* Tracer.Tracer
  const tracing = yield* tracingEnabled
  const waitThreshold = yield* AcquireWaitSpanThreshold
  const metrics = makeMetrics()
  const runFork = yield* FiberSet.makeRuntime<never, void, never>()
  const buckets = new Map<string, B.Bucket>()
  const unregister = new Map<string, () => void>()
  let closed = false
  // Runs before the timers are interrupted (finalizers run in reverse order).
  // Like a shut-down Queue: parked waiters are interrupted, and nothing can
  // park any more, as no timer could serve it.
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      closed = true
      for (const b of buckets.values()) {
        for (const waiter of B.withdraw(b, () => true)) Deferred.doneUnsafe(waiter.deferred, Exit.interrupt())
      }
      for (const remove of unregister.values()) remove()
    })
  )

  const now = (): number => Number(clock.monotonicTimeNanosUnsafe()) / 1e9

  // A provider's series are registered when it is first used or adjusted:
  // its series cost far more memory than an idle bucket.
  const meter = (b: B.Bucket, provider: string): B.Bucket => {
    if (!b.metered) {
      b.metered = true
      unregister.set(provider, registerMetrics(metrics, b, provider, context))
    }
    return b
  }

  const complete = (granted: Array<B.Waiter> | undefined): void => {
    if (granted !== undefined) { for (const waiter of granted) Deferred.doneUnsafe(waiter.deferred, Exit.void) }
  }

  const timer = (b: B.Bucket, line: B.Line): Effect.Effect<void> =>
    Effect.suspend(() => {
      complete(B.drain(b, now()))
      if (b.waiting === 0 || b.line !== line) {
        line.timer = false
        if (b.line === line && b.waiting === 0) b.line = undefined
        return Effect.void
      }
      const wake = Deferred.makeUnsafe<void>()
      line.wake = wake
      const deadline = B.nextDeadline(b)
      const sleep = deadline === undefined
        ? Deferred.await(wake)
        : Effect.raceFirst(clock.sleep(Duration.seconds(deadline)), Deferred.await(wake))
      return Effect.flatMap(sleep, () => timer(b, line))
    })

  // A wait over the threshold, recorded after the fact as a span over the wait
  // (its start is known only once it has lasted long enough to matter).
  const recordWait =
    (provider: string, tokens: number, since: number) => (exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> =>
      Effect.withFiber((fiber) => {
        const waited = now() - since
        if (waited < waitThreshold) return Effect.void
        const end = clock.currentTimeNanosUnsafe()
        const parent = Context.getOrUndefined(fiber.context, Tracer.ParentSpan)
        const span = tracer.span({
          name: "rate.acquire.wait",
          parent: Option.fromUndefinedOr(parent),
          annotations: Context.empty(),
          links: [],
          startTime: end - BigInt(Math.round(waited * 1e9)),
          kind: "internal",
          root: parent === undefined,
          sampled: parent?.sampled ?? true
        })
        span.attribute("rate.provider", provider)
        span.attribute("rate.tokens", tokens)
        span.attribute("rate.waited_seconds", waited)
        span.end(end, exit)
        return Effect.void
      })

  // Something changed the head of the line or the rate: grant what can be
  // granted now and have the timer (started if needed) recompute.
  const reschedule = (b: B.Bucket, at: number): void => {
    complete(B.drain(b, at))
    const line = b.line
    if (b.waiting === 0 || line === undefined) return
    if (line.timer) {
      if (line.wake !== undefined) Deferred.doneUnsafe(line.wake, Exit.void)
    } else {
      line.timer = true
      runFork(timer(b, line))
    }
  }

  const park = (
    b: B.Bucket,
    provider: string,
    tokens: number,
    since: number
  ): Effect.Effect<void, ExceedsCapacity | CircuitOpen | ProviderInCooldown | CoordinatorClosed> =>
    Effect.uninterruptibleMask((
      restore
    ): Effect.Effect<void, ExceedsCapacity | CircuitOpen | ProviderInCooldown | CoordinatorClosed> => {
      // the scope may have closed since `admit`, if this fiber yielded in between
      if (closed) return Effect.fail(new CoordinatorClosed({ provider }))
      const waiter: B.Waiter = {
        tokens,
        since,
        deferred: Deferred.makeUnsafe<void, ExceedsCapacity | CircuitOpen | ProviderInCooldown>(),
        status: B.Status.Waiting
      }
      B.enqueue(b, waiter)
      reschedule(b, since)
      const waited = restore(Deferred.await(waiter.deferred)).pipe(
        Effect.onInterrupt(() =>
          Effect.sync(() => {
            const at = now()
            B.cancel(b, waiter, at)
            reschedule(b, at)
          })
        )
      )
      return tracing ? Effect.onExit(waited, recordWait(provider, tokens, since)) : waited
    })

  // Checks shared by acquire and tryAcquire; returns the bucket or an error.
  const admit = (
    provider: string,
    tokens: number,
    at: number
  ): B.Bucket | AcquireError => {
    if (closed) return new CoordinatorClosed({ provider })
    const b = buckets.get(provider)
    if (b === undefined) return new UnknownProvider({ provider })
    if (!b.metered) meter(b, provider)
    return admitLocal(b, provider, tokens, at) ?? b
  }

  const ignored = (provider: string, what: string) =>
    Effect.logWarning(`provider ${JSON.stringify(provider)} is not registered, ignoring ${what}`)

  const withBucket = <E>(
    provider: string,
    what: string,
    f: (b: B.Bucket, at: number) => Effect.Effect<void, E> | void
  ): Effect.Effect<void, E> =>
    Effect.suspend(() => {
      const b = buckets.get(provider)
      if (b === undefined) return ignored(provider, what)
      return f(meter(b, provider), now()) ?? Effect.void
    })

  return {
    registerProvider: (name, options = {}) =>
      Effect.suspend(() => {
        const validated = validate(name, options)
        if (Result.isFailure(validated)) return Effect.fail(validated.failure)
        const config = validated.success
        const at = now()
        const existing = buckets.get(name)
        if (existing === undefined) {
          buckets.set(name, new B.Bucket(config, at))
          return Effect.logDebug(`registered provider ${name}: capacity ${config.capacity}, ${config.refillRate}/s`)
        }
        // Replace configuration and state in place, so parked waiters keep their place in line.
        const b = existing
        b.config = config
        b.scale = 1
        b.rate = config.refillRate
        b.tokens = config.capacity
        b.last = at
        b.pressure = "ok"
        b.failures = 0
        b.openUntil = undefined
        b.cooldowns = undefined
        b.probeUntil = undefined
        for (const waiter of B.withdraw(b, (waiter) => waiter.tokens > config.capacity)) {
          Deferred.doneUnsafe(
            waiter.deferred,
            Exit.fail(new ExceedsCapacity({ provider: name, tokens: waiter.tokens, capacity: config.capacity }))
          )
        }
        reschedule(b, at)
        return Effect.logInfo(`re-registered provider ${name}: capacity ${config.capacity}, ${config.refillRate}/s`)
      }),

    acquire: (provider, tokens = 1) =>
      Effect.suspend(() => {
        const at = now()
        const b = admit(provider, tokens, at)
        if (!(b instanceof B.Bucket)) return Effect.fail(b)
        if (b.openUntil === undefined) return B.take(b, tokens, at) ? Effect.void : park(b, provider, tokens, at)
        // half-open with the trial slot free: this call is the trial; if it is
        // interrupted before its grant, it never made the call
        const claim = B.claimProbe(b, at)
        return B.take(b, tokens, at)
          ? Effect.void
          : Effect.onInterrupt(park(b, provider, tokens, at), () => Effect.sync(() => B.releaseProbe(b, claim)))
      }),

    tryAcquire: (provider, tokens = 1) =>
      Effect.suspend(() => {
        const at = now()
        const b = admit(provider, tokens, at)
        if (!(b instanceof B.Bucket)) return Effect.fail(b)
        const granted = B.take(b, tokens, at)
        // half-open: a granted try is the trial call
        if (granted && b.openUntil !== undefined) B.claimProbe(b, at)
        return Effect.succeed(granted)
      }),

    setBudgetScale: (provider, scale) =>
      Number.isFinite(scale)
        ? withBucket(provider, "scale adjustment", (b, at) => {
          const clamped = clampScale(scale)
          if (clamped === b.scale) return
          const before = b.rate
          B.rescale(b, clamped, at)
          reschedule(b, at)
          return Effect.logDebug(`scaled ${provider} rate: ${before} → ${b.rate} tokens/s (scale ${clamped})`)
        })
        : Effect.fail(new InvalidScale({ provider, scale })),

    setGlobalPressure: (provider, level) =>
      Effect.suspend(() => {
        const parsed = parseLevel(level)
        if (Result.isFailure(parsed)) return Effect.fail(parsed.failure)
        const next = parsed.success
        return withBucket(provider, "pressure state", (b) => {
          const before: BackpressureLevel = b.pressure
          if (before === next) return
          b.pressure = next
          return Effect.logDebug(`provider ${provider} backpressure: ${before} → ${next}`)
        })
      }),

    state: (provider) =>
      Effect.suspend(() => {
        const b = buckets.get(provider)
        if (b === undefined) return Effect.fail(new UnknownProvider({ provider }))
        const at = now()
        B.refill(b, at)
        const state: ProviderState = {
          provider,
          capacity: b.config.capacity,
          baseRate: b.config.refillRate,
          rate: b.rate,
          scale: b.scale,
          pressure: b.pressure,
          available: Math.max(0, b.tokens),
          waiters: b.waiting,
          circuit: B.circuitState(b, at),
          inCooldown: B.cooldownRemaining(b, "global", at) > 0
        }
        return Effect.succeed(state)
      }),

    providers: Effect.sync(() => Array.from(buckets.keys())),

    recordFailure: (provider) =>
      withBucket(provider, "failure", (b, at) => {
        if (!B.recordFailure(b, at)) return
        // waiters already in line would otherwise be granted through the open breaker
        const retryAfterSec = b.config.breakerTimeoutSec
        for (const waiter of B.withdraw(b, () => true)) {
          Deferred.doneUnsafe(waiter.deferred, Exit.fail(new CircuitOpen({ provider, retryAfterSec, probing: false })))
        }
        reschedule(b, at)
        return Effect.logWarning(`circuit opened for provider ${provider} for ${retryAfterSec} s`)
      }),

    recordSuccess: (provider) =>
      Effect.suspend(() => {
        const b = buckets.get(provider)
        if (b !== undefined) B.recordSuccess(b, now())
        return Effect.void
      }),

    triggerCooldown: (provider, scope, durationSec) =>
      durationSec !== undefined && !positive(durationSec)
        ? Effect.fail(new InvalidCooldown({ provider, scope, durationSec }))
        : withBucket(provider, "cooldown", (b, at) => {
          const duration = durationSec ?? b.config.cooldownSec
          ;(b.cooldowns ??= new Map()).set(scope, at + duration)
          if (scope === "global") {
            // waiters already in line would otherwise be granted during the cooldown
            for (const waiter of B.withdraw(b, () => true)) {
              Deferred.doneUnsafe(
                waiter.deferred,
                Exit.fail(new ProviderInCooldown({ provider, remainingSec: B.cooldownRemaining(b, "global", at) }))
              )
            }
            reschedule(b, at)
          }
          return Effect.logWarning(`provider ${provider} cooldown ${scope} for ${duration} s`)
        })
  }
})
