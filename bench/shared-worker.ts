/**
 * One process of the `shared` benchmark (started by bench/shared.ts): builds
 * one limiter on the shared Redis, reports ready, starts at the common time
 * the parent sends, runs its acquirers for the given seconds and reports its
 * grants. It exits by itself at a hard deadline and when the parent goes away.
 */
import { Duration, Effect, Exit, Fiber, Layer, Scope } from "effect"
import type { Redis } from "effect/persistence/Redis"
import type { RateCoordinator as RateCoordinatorService } from "market-data-pipeline"
import { runFork, runPromise, runSync } from "./harness.ts"
import type { CaseId, Mode, ToParent, ToWorker, WorkerConfig } from "./shared-protocol.ts"
import { redisHost, redisPort, redisUrl, unlimited } from "./shared-protocol.ts"

const config = JSON.parse(process.argv[2] ?? "{}") as WorkerConfig

// never outlive the benchmark: a hard deadline, and the parent's death closes the IPC channel
setTimeout(() => process.exit(3), config.hardDeadlineMs).unref()
process.on("disconnect", () => process.exit(4))

const send = (message: ToParent): Promise<void> =>
  new Promise((resolve) => {
    if (process.send === undefined || !process.connected) return resolve()
    process.send(message, undefined, {}, () => resolve())
  })

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)))

/** Resolves with the promise's value, or `undefined` after `ms`. */
const bounded = <A>(promise: Promise<A>, ms: number): Promise<A | undefined> =>
  Promise.race([promise, sleep(ms).then(() => undefined)])

const describe = (cause: unknown): string =>
  cause instanceof Error
    ? `${cause.name}: ${cause.message}`
    : typeof cause === "object"
    ? JSON.stringify(cause)
    : String(cause)

/**
 * A limiter under test: either a promise-returning acquire or an Effect
 * acquire run in fibers.
 */
type Driver =
  | {
    readonly kind: "promise"
    readonly acquire: () => Promise<unknown>
    /** The acquire resolves with the grant time (epoch ms) itself. */
    readonly stamped?: boolean
    /** Used instead of `acquire` for the warm-up before the start. */
    readonly warmUp?: () => Promise<unknown>
    readonly close: () => Promise<unknown>
  }
  | {
    readonly kind: "effect"
    readonly acquire: Effect.Effect<unknown, unknown>
    readonly close: () => Promise<unknown>
  }

/** Builds a layer's services in a scope of their own; `close` closes it. */
const buildLayer = async <ROut, A>(
  layer: Layer.Layer<ROut, unknown>,
  use: Effect.Effect<A, unknown, ROut>
): Promise<{ readonly value: A; readonly close: () => Promise<unknown> }> => {
  const scope = runSync(Scope.make())
  const close = () => runPromise(Scope.close(scope, Exit.void))
  try {
    const context = await runPromise(Layer.buildWithScope(layer, scope))
    const value = await runPromise(Effect.provideContext(use, context))
    return { value, close }
  } catch (cause) {
    await bounded(close(), 1000)
    throw cause
  }
}

const setup = async (caseId: CaseId, mode: Mode, token: string): Promise<Driver | { readonly skip: string }> => {
  const throughput = mode === "throughput"
  switch (caseId) {
    case "floor": {
      const { createClient } = await import("redis")
      const client = createClient({ url: redisUrl, disableOfflineQueue: true })
      client.on("error", () => {})
      await client.connect()
      const sha = await client.scriptLoad("return 1")
      return { kind: "promise", acquire: () => client.evalSha(sha), close: () => client.close() }
    }
    case "rlf-node-redis":
    case "rlf-ioredis": {
      const { RateLimiterQueue, RateLimiterRedis } = await import("rate-limiter-flexible")
      let storeClient: unknown
      let closeClient: () => Promise<unknown>
      let useRedisPackage = false
      if (caseId === "rlf-node-redis") {
        const { createClient } = await import("redis")
        const client = createClient({ url: redisUrl, disableOfflineQueue: true })
        client.on("error", () => {})
        await client.connect()
        storeClient = client
        closeClient = () => client.close()
        // node-redis 5/6 is not recognised (constructor.name is not "Commander"): without this every consume throws
        useRedisPackage = true
      } else {
        const { Redis } = await import("ioredis")
        const client = new Redis({ host: redisHost, port: redisPort, enableOfflineQueue: false, lazyConnect: true })
        client.on("error", () => {})
        await client.connect()
        storeClient = client
        closeClient = () => client.quit()
      }
      // a fixed window: throughput 1e9 per 1 s; accuracy 1000 per 1 s (its smallest expiring window, no burst)
      const limiter = new RateLimiterRedis({
        storeClient,
        useRedisPackage,
        keyPrefix: token,
        points: throughput ? unlimited : 1000,
        duration: 1
      })
      // the per-process FIFO: a rejected consume waits for the window to reset instead of failing
      const queue = new RateLimiterQueue(limiter)
      return {
        kind: "promise",
        acquire: () => queue.removeTokens(1, "p"),
        // on another key: a warm-up on "p" would open the measured fixed window before the start
        warmUp: () => queue.removeTokens(1, "warm-up"),
        close: closeClient
      }
    }
    case "bottleneck": {
      const Bottleneck = (await import("bottleneck")).default
      const limiter = new Bottleneck({
        id: token,
        datastore: "ioredis",
        clientOptions: { host: redisHost, port: redisPort },
        clearDatastore: false,
        // a safety net besides the parent's cleanup: the keys expire after 60 s idle
        timeout: 60_000,
        maxConcurrent: null,
        // unlimited, or one job per 1 ms cluster-wide (bottleneck has no burst)
        minTime: throughput ? 0 : 1
      })
      limiter.on("error", () => {})
      await limiter.ready()
      // the grant is when the job starts running; its promise settles only after the "free" round trip
      const job = () => Promise.resolve(Date.now())
      return {
        kind: "promise",
        acquire: () => limiter.schedule(job),
        stamped: true,
        close: () => limiter.disconnect(true)
      }
    }
    case "effect": {
      const RateLimiter = await import("effect/persistence/RateLimiter")
      const NodeRedis = await import("@effect/platform-node/NodeRedis")
      const layer = RateLimiter.layer.pipe(
        Layer.provide(RateLimiter.layerStoreRedis({ prefix: `${token}:` })),
        Layer.provide(NodeRedis.layer({ url: redisUrl, disableOfflineQueue: true }))
      )
      const built = await buildLayer(
        layer,
        Effect.gen(function*() {
          return yield* RateLimiter.RateLimiter
        })
      )
      // token bucket; accuracy: 10 tokens per 10 ms = 1000/s with burst 10
      const consume = built.value.consume({
        algorithm: "token-bucket",
        onExceeded: "delay",
        window: throughput ? "1 second" : "10 millis",
        limit: throughput ? unlimited : 10,
        key: "p"
      }).pipe(Effect.flatMap((result) => Duration.isZero(result.delay) ? Effect.void : Effect.sleep(result.delay)))
      return { kind: "effect", acquire: consume, close: built.close }
    }
    case "ours": {
      const { RateCoordinator } = await import("market-data-pipeline")
      const NodeRedis = await import("@effect/platform-node/NodeRedis")
      // written against the API of issue 9; cast so this file compiles before and after it lands
      const layerRedis = (RateCoordinator as unknown as {
        readonly layerRedis?: (
          options: { readonly prefix: string }
        ) => Layer.Layer<RateCoordinatorService, unknown, Redis>
      }).layerRedis
      if (typeof layerRedis !== "function") return { skip: "RateCoordinator.layerRedis does not exist yet" }
      const layer = layerRedis({ prefix: token }).pipe(
        Layer.provide(NodeRedis.layer({ url: redisUrl, disableOfflineQueue: true }))
      )
      const built = await buildLayer(
        layer,
        Effect.gen(function*() {
          const coordinator = yield* RateCoordinator
          yield* coordinator.registerProvider(
            "p",
            throughput ? { capacity: unlimited, refillRate: unlimited } : { capacity: 10, refillRate: 1000 }
          )
          return coordinator
        })
      )
      return { kind: "effect", acquire: built.value.acquire("p"), close: built.close }
    }
  }
}

const main = async () => {
  const { caseId, concurrency, mode, seconds, token } = config
  let driver: Driver
  try {
    const made = await setup(caseId, mode, token)
    if ("skip" in made) {
      await send({ type: "skip", reason: made.skip })
      return process.exit(0)
    }
    driver = made
    // one acquire before the start: connections, scripts loaded, code paths warm
    if (driver.kind === "promise") await (driver.warmUp ?? driver.acquire)()
    else await runPromise(driver.acquire)
  } catch (cause) {
    await send({ type: "failed", message: describe(cause) })
    return process.exit(1)
  }

  const go = new Promise<number>((resolve) => {
    process.on("message", (message: ToWorker) => {
      if (message.type === "go") resolve(message.at)
    })
  })
  await send({ type: "ready" })
  const at = await go
  const end = at + seconds * 1000
  await sleep(at - Date.now())

  const stamps: Array<number> = []
  const keep = mode === "accuracy"
  let grants = 0
  let errors = 0
  let firstError: string | undefined
  const granted = (time: number) => {
    if (time < at || time >= end) return
    grants++
    if (keep) stamps.push(time)
  }
  const failed = (cause: unknown) => {
    errors++
    firstError ??= describe(cause)
  }

  if (driver.kind === "promise") {
    const { acquire, stamped } = driver
    const acquirer = async () => {
      while (Date.now() < end) {
        try {
          const result = await acquire()
          granted(stamped === true ? result as number : Date.now())
        } catch (cause) {
          failed(cause)
        }
      }
    }
    // waiters still parked at the end (e.g. for the next fixed window) are not waited for long
    await bounded(Promise.all(Array.from({ length: concurrency }, acquirer)), end - Date.now() + 300)
  } else {
    const acquire = Effect.exit(driver.acquire)
    const acquirer = Effect.gen(function*() {
      while (Date.now() < end) {
        const exit = yield* acquire
        if (Exit.isSuccess(exit)) granted(Date.now())
        else failed(exit.cause)
      }
    })
    const fiber = runFork(
      Effect.forEach(Array.from({ length: concurrency }), () => acquirer, {
        concurrency: "unbounded",
        discard: true
      })
    )
    await bounded(runPromise(Fiber.await(fiber)), end - Date.now() + 300)
    // interrupted waiters give their tokens back (ours), bounded
    await bounded(runPromise(Fiber.interrupt(fiber)), 1000)
  }
  await send(
    firstError === undefined
      ? { type: "result", grants, errors, stamps }
      : { type: "result", grants, errors, firstError, stamps }
  )
  await bounded(driver.close().catch(() => undefined), 1500)
  process.exit(0)
}

await main()
