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
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as References from "effect/References"
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
    series(metricDefinitions.tokensGranted, (b) => ({ count: B.stats(b).granted, incremental: true })),
    series(metricDefinitions.tokensReturned, (b) => ({ count: B.stats(b).returned, incremental: true })),
    series(metricDefinitions.waiters, (b) => ({ value: b.waiting })),
    // immediate grants waited 0 s: they count in every bucket
    series(metricDefinitions.waitSeconds, (b) => {
      const stats = B.stats(b)
      return Histogram.state(stats.waits, B.WAIT_BOUNDARIES, stats.immediate)
    })
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

// the global `performance` is a getter in Node: read it once
const performance_ = globalThis.performance
const exitTrue = Exit.succeed(true)
const exitFalse = Exit.succeed(false)

/** @internal */
export const make: Effect.Effect<RateCoordinator["Service"], never, Scope.Scope> = Effect.gen(function*() {
  const clock = yield* Clock.Clock
  // Effect's own live clock is read through `performance.now()`, the same
  // monotonic time without the BigInt `monotonicTimeNanosUnsafe` allocates on
  // every call; and its timers can be made precise (see `timer`). Any other
  // clock (a `TestClock`, an application's own) is read and slept on as given.
  const live = clock === Context.get(Context.empty(), Clock.Clock)
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
        for (const waiter of B.withdraw(b, () => true)) waiter.resume(Exit.interrupt())
      }
      for (const remove of unregister.values()) remove()
    })
  )

  const now: () => number = live
    ? () => performance_.now() / 1000
    : () => Number(clock.monotonicTimeNanosUnsafe()) / 1e9

  // A provider's series are registered when it is first used or adjusted:
  // its series cost far more memory than an idle bucket.
  const meter = (b: B.Bucket, provider: string): B.Bucket => {
    if (b.stats === undefined) {
      B.stats(b)
      unregister.set(provider, registerMetrics(metrics, b, provider, context))
    }
    return b
  }

  // The waiter being parked right now, while its registration runs.
  let registering: B.Waiter | undefined

  // Resumed only once the drain is done: a waiter resumes at once, and must
  // find the line as it now is. A waiter granted while it registers resumes
  // a microtask later instead, once its withdrawal is in place: resumed in
  // its registration, it would have none, and an earlier waiter resumed
  // before it could interrupt it with its tokens taken.
  const complete = (granted: Array<B.Waiter> | undefined): void => {
    if (granted === undefined) return
    for (const waiter of granted) {
      if (waiter === registering) queueMicrotask(() => waiter.resume(Exit.void))
      else waiter.resume(Exit.void)
    }
  }

  // Serves a line until it is empty: grants what is due, then sleeps until the
  // head waiter's tokens have accrued or something changes (`line.wake`).
  // When a late wake-up would cost tokens (too little room in the bucket, see
  // `B.PRECISE_WINDOW_SEC`), the live clock's timer sleeps only to the window,
  // then waits for the deadline turn by turn of the event loop (`preciseWait`).
  const timer = (b: B.Bucket, line: B.Line): Effect.Effect<void> => {
    const step: Effect.Effect<void> = Effect.suspend(() => serve(b, line, step))
    return step
  }

  // Resumes at `due` (seconds of `now`), or at once when the line is woken:
  // polls the clock once per turn of the event loop (`setImmediate`, so I/O
  // and other fibers go on), and reads it without yielding for the last
  // `B.BUSY_WINDOW_SEC`, as a turn takes longer than the microsecond a grant
  // may be late without costing the rate. Plain callbacks rather than a fiber
  // yielding per turn: a turn then allocates next to nothing, where a
  // fiber's yield allocates enough to make the garbage collector pause
  // (and every pause is a late grant). Only on Effect's live clock.
  const preciseWait = (line: B.Line, due: number): Effect.Effect<void> =>
    Effect.callback<void>((resume) => {
      let handle: ReturnType<typeof setImmediate> | undefined
      const done = () => {
        line.wake = undefined
        resume(Exit.void)
      }
      const poll = () => {
        handle = undefined
        if (due - now() > B.BUSY_WINDOW_SEC) {
          handle = setImmediate(poll)
          return
        }
        while (now() < due) {
          // a few dozen microseconds at most
        }
        done()
      }
      line.wake = () => {
        if (handle !== undefined) clearImmediate(handle)
        done()
      }
      handle = setImmediate(poll)
      return Effect.sync(() => {
        if (handle !== undefined) clearImmediate(handle)
        line.wake = undefined
      })
    })

  const serve = (b: B.Bucket, line: B.Line, step: Effect.Effect<void>): Effect.Effect<void> => {
    complete(B.drain(b, now()))
    if (b.waiting === 0 || b.line !== line) {
      line.timer = false
      if (b.line === line && b.waiting === 0) b.line = undefined
      return Effect.void
    }
    let deadline = B.nextDeadline(b)
    if (deadline !== undefined && live && B.lateTolerance(b) < B.PRECISE_WINDOW_SEC) {
      // the deadline counts from the last refill
      if (deadline <= B.PRECISE_WINDOW_SEC) return Effect.andThen(preciseWait(line, b.last + deadline), step)
      deadline -= B.PRECISE_WINDOW_SEC
    }
    const wake = Deferred.makeUnsafe<void>()
    line.wake = () => Deferred.doneUnsafe(wake, Exit.void)
    const sleep = deadline === undefined
      ? Deferred.await(wake)
      : Effect.raceFirst(clock.sleep(Duration.seconds(deadline)), Deferred.await(wake))
    return Effect.andThen(sleep, step)
  }

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
      if (line.wake !== undefined) line.wake()
    } else {
      line.timer = true
      runFork(timer(b, line))
    }
  }

  // Parks the caller in line: one callback, whose registration and withdrawal
  // are each atomic, and nothing else per waiter (a parked waiter is its fiber,
  // this callback and a four-field record).
  const park = (
    b: B.Bucket,
    provider: string,
    tokens: number,
    since: number
  ): Effect.Effect<void, B.Withdrawn | CoordinatorClosed> => {
    const waited = Effect.callback<void, B.Withdrawn | CoordinatorClosed>((resume) => {
      // the scope may have closed since `admit`, if the fiber yielded in between
      if (closed) return resume(Exit.fail(new CoordinatorClosed({ provider })))
      const waiter: B.Waiter = { tokens, since, resume, status: B.Status.Waiting }
      B.enqueue(b, waiter)
      registering = waiter
      try {
        reschedule(b, since)
      } finally {
        registering = undefined
      }
      // interrupted while parked: leave the line, or give back a grant not yet taken up
      return Effect.sync(() => {
        const at = now()
        B.cancel(b, waiter, at)
        reschedule(b, at)
      })
    })
    return tracing ? Effect.onExit(waited, recordWait(provider, tokens, since)) : waited
  }

  // Checks shared by acquire and tryAcquire; returns the bucket or an error.
  const admit = (
    b: B.Bucket | undefined,
    provider: string,
    tokens: number,
    at: number
  ): B.Bucket | AcquireError => {
    if (closed) return new CoordinatorClosed({ provider })
    if (b === undefined) return new UnknownProvider({ provider })
    if (b.stats === undefined) meter(b, provider)
    return admitLocal(b, provider, tokens, at) ?? b
  }

  // `b` is the provider's bucket when the effect was built, or undefined if it was not registered then.
  const acquiring = (b: B.Bucket | undefined, provider: string, tokens: number): Effect.Effect<void, AcquireError> => {
    const at = now()
    const admitted = admit(b ?? buckets.get(provider), provider, tokens, at)
    if (!(admitted instanceof B.Bucket)) return Exit.fail(admitted)
    if (admitted.openUntil === undefined) {
      return B.take(admitted, tokens, at) ? Exit.void : park(admitted, provider, tokens, at)
    }
    // half-open with the trial slot free: this call is the trial; if it is
    // interrupted before its grant, it never made the call
    const claim = B.claimProbe(admitted, at)
    return B.take(admitted, tokens, at)
      ? Exit.void
      : Effect.onInterrupt(
        park(admitted, provider, tokens, at),
        () => Effect.sync(() => B.releaseProbe(admitted, claim))
      )
  }

  const trying = (b: B.Bucket | undefined, provider: string, tokens: number): Effect.Effect<boolean, AcquireError> => {
    const at = now()
    const admitted = admit(b ?? buckets.get(provider), provider, tokens, at)
    if (!(admitted instanceof B.Bucket)) return Exit.fail(admitted)
    const granted = B.take(admitted, tokens, at)
    // half-open: a granted try is the trial call
    if (granted && admitted.openUntil !== undefined) B.claimProbe(admitted, at)
    return granted ? exitTrue : exitFalse
  }

  // The effects of the commonest calls, `acquire(p)` and `tryAcquire(p)`, are
  // built once per registered provider (an effect is only a description; it
  // reads the bucket each time it runs), so calling them allocates nothing.
  // Running one first tries the plain case (open, no breaker or cooldown, a
  // token there and nobody waiting) with nothing but the bucket arithmetic.
  const plain = (b: B.Bucket, at: number): boolean =>
    !closed && b.openUntil === undefined && b.cooldowns === undefined && b.stats !== undefined && B.take(b, 1, at)
  // One such effect per registered provider, with the last provider asked
  // for in front, as most calls in a row name the same one. A provider not
  // registered yet gets a fresh effect that looks it up when run.
  const perProvider = <A>(
    build: (b: B.Bucket, provider: string) => Effect.Effect<A, AcquireError>,
    unregistered: (provider: string) => Effect.Effect<A, AcquireError>
  ) => {
    const built = new Map<string, Effect.Effect<A, AcquireError>>()
    let lastName: string | undefined
    let last: Effect.Effect<A, AcquireError> | undefined
    return (provider: string): Effect.Effect<A, AcquireError> => {
      if (provider === lastName) return last!
      let effect = built.get(provider)
      if (effect === undefined) {
        const b = buckets.get(provider)
        if (b === undefined) return unregistered(provider)
        effect = build(b, provider)
        built.set(provider, effect)
      }
      lastName = provider
      last = effect
      return effect
    }
  }
  const acquireOnce = perProvider(
    (b, provider) => Effect.suspend(() => plain(b, now()) ? Exit.void : acquiring(b, provider, 1)),
    (provider) => Effect.suspend(() => acquiring(undefined, provider, 1))
  )
  const tryOnce = perProvider(
    (b, provider) => Effect.suspend(() => plain(b, now()) ? exitTrue : trying(b, provider, 1)),
    (provider) => Effect.suspend(() => trying(undefined, provider, 1))
  )

  const ignored = (provider: string, what: string) =>
    Effect.logWarning(`provider ${JSON.stringify(provider)} is not registered, ignoring ${what}`)

  // `debug`: whether a debug line would be logged, so the hot setters build none otherwise
  const withBucket = <E>(
    provider: string,
    what: string,
    f: (b: B.Bucket, at: number, debug: boolean) => Effect.Effect<void, E> | void
  ): Effect.Effect<void, E> =>
    Effect.withFiber((fiber) => {
      const b = buckets.get(provider)
      if (b === undefined) return ignored(provider, what)
      const debug = !LogLevel.isGreaterThan(fiber.getRef(References.MinimumLogLevel), "Debug")
      return f(meter(b, provider), now(), debug) ?? Exit.void
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
        b.tokens = config.capacity
        b.last = at
        b.pressure = "ok"
        b.failures = 0
        b.openUntil = undefined
        b.cooldowns = undefined
        b.probeUntil = undefined
        for (const waiter of B.withdraw(b, (waiter) => waiter.tokens > config.capacity)) {
          waiter.resume(
            Exit.fail(new ExceedsCapacity({ provider: name, tokens: waiter.tokens, capacity: config.capacity }))
          )
        }
        reschedule(b, at)
        return Effect.logInfo(`re-registered provider ${name}: capacity ${config.capacity}, ${config.refillRate}/s`)
      }),

    acquire: (provider, tokens = 1) =>
      tokens === 1 ? acquireOnce(provider) : Effect.suspend(() => acquiring(undefined, provider, tokens)),

    tryAcquire: (provider, tokens = 1) =>
      tokens === 1 ? tryOnce(provider) : Effect.suspend(() => trying(undefined, provider, tokens)),

    setBudgetScale: (provider, scale) =>
      Number.isFinite(scale)
        ? withBucket(provider, "scale adjustment", (b, at, debug) => {
          const clamped = clampScale(scale)
          if (clamped === b.scale) return
          const before = b.rate
          B.rescale(b, clamped, at)
          reschedule(b, at)
          if (debug) {
            return Effect.logDebug(`scaled ${provider} rate: ${before} → ${b.rate} tokens/s (scale ${clamped})`)
          }
        })
        : Effect.fail(new InvalidScale({ provider, scale })),

    setGlobalPressure: (provider, level) => {
      const apply = (next: BackpressureLevel) =>
        withBucket(provider, "pressure state", (b, _at, debug) => {
          const before: BackpressureLevel = b.pressure
          if (before === next) return
          b.pressure = next
          if (debug) return Effect.logDebug(`provider ${provider} backpressure: ${before} → ${next}`)
        })
      // a level as the handler sends it needs no parsing
      if (level === "ok" || level === "soft" || level === "hard") return apply(level)
      const parsed = parseLevel(level)
      return Result.isFailure(parsed) ? Effect.fail(parsed.failure) : apply(parsed.success)
    },

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
          waiter.resume(Exit.fail(new CircuitOpen({ provider, retryAfterSec, probing: false })))
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
              waiter.resume(
                Exit.fail(new ProviderInCooldown({ provider, remainingSec: B.cooldownRemaining(b, "global", at) }))
              )
            }
            reschedule(b, at)
          }
          return Effect.logWarning(`provider ${provider} cooldown ${scope} for ${duration} s`)
        })
  }
})
