/**
 * The shared coordinator when its Redis fails: each test runs a private
 * `redis-server` of its own, kills it (SIGKILL) and starts it again on the
 * same port, empty. Bounds are generous: these are wall-clock tests.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Metric, References, Scope } from "effect"
import type { RateCoordinator } from "market-data-pipeline"
import { metricValue } from "../feedback/helpers.ts"
import {
  bucketKey,
  buildCoordinator,
  deleteKeysAtEnd,
  plainClient,
  privateRedis,
  uniquePrefix
} from "./shared/redis.ts"

const TEST_TIMEOUT = 30_000

/** Runs `body` with a metric registry of its own (the coordinator's series register there). */
const isolatedMetrics = <A, E, R>(body: Effect.Effect<A, E, R>) =>
  Effect.provideService(body, Metric.MetricRegistry, new Map())

/** Keeps the expected connection warnings out of the output (MDP_TEST_LOGS=1 shows them). */
const quiet = <A, E, R>(body: Effect.Effect<A, E, R>) =>
  process.env.MDP_TEST_LOGS ? body : Effect.provideService(body, References.MinimumLogLevel, "Error")

/** Polls `check` every `everyMs` until it holds; false if `withinMs` passed first. */
const waitUntil = <E, R>(check: Effect.Effect<boolean, E, R>, withinMs: number, everyMs = 50) =>
  Effect.gen(function*() {
    const deadline = Date.now() + withinMs
    while (Date.now() < deadline) {
      if (yield* check) return true
      yield* Effect.sleep(everyMs)
    }
    return yield* check
  })

/** Forks an acquire that pushes its grant time (epoch ms) to `log`. */
const forkAcquire = (coordinator: RateCoordinator["Service"], provider: string, log: Array<number>) =>
  coordinator.acquire(provider).pipe(
    Effect.tap(() => Effect.sync(() => log.push(Date.now()))),
    Effect.forkChild
  )

/** `n` fibers acquiring in a loop until `untilMs` (epoch); grant times and failures. */
const acquireLoop = (coordinator: RateCoordinator["Service"], provider: string, n: number, untilMs: number) =>
  Effect.gen(function*() {
    const grants: Array<number> = []
    const failures: Array<unknown> = []
    const one = Effect.gen(function*() {
      while (Date.now() < untilMs) {
        const exit = yield* Effect.exit(coordinator.acquire(provider))
        if (Exit.isSuccess(exit)) grants.push(Date.now())
        else {
          failures.push(exit.cause)
          yield* Effect.sleep(10)
        }
      }
    })
    const fibers = yield* Effect.forEach(Array.from({ length: n }), () => Effect.forkChild(one))
    return { grants, failures, fibers }
  })

const countIn = (times: ReadonlyArray<number>, from: number, to: number) =>
  times.filter((t) => t >= from && t < to).length

describe("shared buckets: Redis faults", () => {
  it.live(
    "closing the scope while a reservation is in flight (Redis frozen) interrupts its waiter; nothing hangs",
    () =>
      quiet(Effect.gen(function*() {
        const server = yield* privateRedis
        const prefix = uniquePrefix("close")
        yield* deleteKeysAtEnd(server.url, prefix)
        const scope = yield* Scope.make()
        const { coordinator } = yield* Scope.provide(
          buildCoordinator(server.url, { prefix, timeout: "5 seconds" }),
          scope
        )
        yield* coordinator.registerProvider("c", { capacity: 1, refillRate: 1 })
        yield* server.freeze
        const waiter = yield* Effect.forkChild(Effect.exit(coordinator.acquire("c")))
        yield* Effect.sleep("100 millis")
        // the Redis client's own close waits for the frozen server: close in the background
        const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
        const exit = yield* Fiber.join(waiter).pipe(Effect.timeout("3 seconds"), Effect.exit)
        yield* server.thaw
        yield* Fiber.join(closing)
        assert.isTrue(Exit.isSuccess(exit), "the waiter was not interrupted within 3 s of the close")
        if (Exit.isSuccess(exit)) assert.isTrue(Exit.isFailure(exit.value))
      })),
    TEST_TIMEOUT
  )

  it.live(
    "allow (an explicit fail-open): with Redis down every acquire is granted at once",
    () =>
      quiet(Effect.gen(function*() {
        const server = yield* privateRedis
        const prefix = uniquePrefix("allow")
        yield* deleteKeysAtEnd(server.url, prefix)
        const { coordinator } = yield* buildCoordinator(server.url, {
          prefix,
          onUnavailable: "allow",
          timeout: "200 millis"
        })
        yield* coordinator.registerProvider("a", { capacity: 1, refillRate: 1 })
        yield* coordinator.acquire("a")
        yield* server.kill
        // at 1/s these 5 would take 5 s; fail-open grants them as the calls fail
        const started = Date.now()
        for (let i = 0; i < 5; i++) yield* coordinator.acquire("a")
        assert.isTrue(yield* coordinator.tryAcquire("a"))
        assert.isAtMost(Date.now() - started, 5 * 1000 - 1)
      })),
    TEST_TIMEOUT
  )

  it.live(
    "wait (default): waiters parked while Redis is down keep waiting, then are granted after a restart",
    () =>
      quiet(Effect.gen(function*() {
        const server = yield* privateRedis
        const prefix = uniquePrefix("wait")
        yield* deleteKeysAtEnd(server.url, prefix)
        const { coordinator } = yield* buildCoordinator(server.url, { prefix, timeout: "200 millis" })
        yield* coordinator.registerProvider("w", { capacity: 1, refillRate: 10 })
        yield* coordinator.acquire("w")

        yield* server.kill
        // tryAcquire never waits: under "wait" it fails with the typed error
        assert.strictEqual((yield* Effect.flip(coordinator.tryAcquire("w")))._tag, "SharedBucketUnavailable")
        const log: Array<number> = []
        const fibers = yield* Effect.forEach(Array.from({ length: 5 }), () => forkAcquire(coordinator, "w", log))
        yield* Effect.sleep("1500 millis")
        // still in line: neither granted (nothing can reserve) nor failed
        for (const fiber of fibers) assert.isUndefined(fiber.pollUnsafe())
        assert.strictEqual((yield* coordinator.state("w")).waiters, 5)

        const restartedAt = Date.now()
        yield* server.start
        const exits = yield* Fiber.awaitAll(fibers).pipe(Effect.timeoutOption("15 seconds"))
        assert.isTrue(exits._tag === "Some", "the waiters were not granted within 15 s of the restart")
        if (exits._tag === "Some") { for (const exit of exits.value) assert.isTrue(Exit.isSuccess(exit), String(exit)) }
        assert.strictEqual(log.length, 5)
        for (const t of log) assert.isAtLeast(t, restartedAt)

        // the bucket was recreated from the registered configuration: capacity 1 at 10/s paces the five
        const sorted = [...log].sort((a, b) => a - b)
        assert.isAtLeast(sorted[4]! - sorted[0]!, 300, `grants ${sorted.map((t) => t - restartedAt)}`)
        const client = yield* plainClient(server.url)
        const [base, burst] = yield* Effect.promise(() => client.hmGet(bucketKey(prefix, "w"), ["base", "burst"]))
        assert.strictEqual(Number(base), 10)
        assert.strictEqual(Number(burst), 1)
        assert.isAbove(yield* Effect.promise(() => client.pTTL(bucketKey(prefix, "w"))), 0)
      })),
    TEST_TIMEOUT
  )

  it.live(
    "fail: with Redis down acquire fails with SharedBucketUnavailable within about the timeout",
    () =>
      quiet(Effect.gen(function*() {
        const server = yield* privateRedis
        const prefix = uniquePrefix("fail")
        yield* deleteKeysAtEnd(server.url, prefix)
        const { coordinator } = yield* buildCoordinator(server.url, {
          prefix,
          onUnavailable: "fail",
          timeout: "200 millis"
        })
        yield* coordinator.registerProvider("f", { capacity: 5, refillRate: 50 })
        yield* coordinator.acquire("f")

        // killed: the link is down, calls fail fast
        yield* server.kill
        for (let i = 0; i < 3; i++) {
          const started = Date.now()
          const error = yield* Effect.flip(coordinator.acquire("f"))
          assert.strictEqual(error._tag, "SharedBucketUnavailable")
          assert.isAtMost(Date.now() - started, 200 + 800)
        }
        const tryError = yield* Effect.flip(coordinator.tryAcquire("f"))
        assert.strictEqual(tryError._tag, "SharedBucketUnavailable")

        // restarted: acquires succeed again once the client has reconnected
        yield* server.start
        const back = yield* waitUntil(
          Effect.map(Effect.exit(coordinator.acquire("f")), Exit.isSuccess),
          15_000,
          100
        )
        assert.isTrue(back, "acquire did not succeed within 15 s of the restart")
        for (let i = 0; i < 5; i++) yield* coordinator.acquire("f")

        // frozen (SIGSTOP: the connection stays open, nothing answers): the per-call timeout bounds the failure
        yield* server.freeze
        const started = Date.now()
        const frozen = yield* Effect.flip(coordinator.acquire("f"))
        const elapsed = Date.now() - started
        yield* server.thaw
        assert.strictEqual(frozen._tag, "SharedBucketUnavailable")
        assert.isAtLeast(elapsed, 150)
        assert.isAtMost(elapsed, 200 + 800)
        const thawed = yield* waitUntil(
          Effect.map(Effect.exit(coordinator.acquire("f")), Exit.isSuccess),
          10_000,
          100
        )
        assert.isTrue(thawed, "acquire did not succeed after SIGCONT")
      })),
    TEST_TIMEOUT
  )

  it.live(
    "local fallback at half the rate while Redis is down; pipeline_rate_shared_degraded reads 1, then 0",
    () =>
      quiet(isolatedMetrics(Effect.gen(function*() {
        const server = yield* privateRedis
        const prefix = uniquePrefix("local")
        yield* deleteKeysAtEnd(server.url, prefix)
        const { coordinator } = yield* buildCoordinator(server.url, {
          prefix,
          onUnavailable: { local: 0.5 },
          timeout: "200 millis"
        })
        yield* coordinator.registerProvider("l", { capacity: 10, refillRate: 20 })
        yield* coordinator.acquire("l")
        assert.strictEqual(yield* metricValue("pipeline_rate_shared_degraded", { provider: "l" }), 0)

        yield* server.kill
        const started = Date.now()
        const run = yield* acquireLoop(coordinator, "l", 4, started + 2000)
        yield* Fiber.awaitAll(run.fibers)
        const elapsed = (Date.now() - started) / 1000
        assert.deepStrictEqual(run.failures, [])
        // the fallback: burst 5, 10/s (the shared bucket would allow 10 + 20/s)
        assert.isAtMost(run.grants.length, 5 + 10 * elapsed + 3, `${run.grants.length} grants in ${elapsed} s`)
        assert.isAtLeast(run.grants.length, 12, `${run.grants.length} grants in ${elapsed} s`)
        assert.strictEqual(yield* metricValue("pipeline_rate_shared_degraded", { provider: "l" }), 1)
        assert.isAtLeast((yield* metricValue("pipeline_rate_redis_errors_total", { provider: "l" })) ?? 0, 1)

        yield* server.start
        const recovered = yield* waitUntil(
          Effect.map(metricValue("pipeline_rate_shared_degraded", { provider: "l" }), (v) => v === 0),
          15_000,
          100
        )
        assert.isTrue(recovered, "still degraded 15 s after the restart")
        // back on the shared bucket: it is in Redis again, with the registered configuration
        yield* coordinator.acquire("l")
        const client = yield* plainClient(server.url)
        const [base, burst] = yield* Effect.promise(() => client.hmGet(bucketKey(prefix, "l"), ["base", "burst"]))
        assert.strictEqual(Number(base), 20)
        assert.strictEqual(Number(burst), 10)
      }))),
    TEST_TIMEOUT
  )

  it.live(
    "SCRIPT FLUSH and FLUSHALL mid-run: acquisition at 200/s goes on without errors",
    () =>
      quiet(isolatedMetrics(Effect.gen(function*() {
        const server = yield* privateRedis
        const prefix = uniquePrefix("flush")
        yield* deleteKeysAtEnd(server.url, prefix)
        const { coordinator } = yield* buildCoordinator(server.url, { prefix, timeout: "250 millis" })
        yield* coordinator.registerProvider("s", { capacity: 10, refillRate: 200 })
        const client = yield* plainClient(server.url)

        const started = Date.now()
        const run = yield* acquireLoop(coordinator, "s", 4, started + 5000)
        yield* Effect.sleep(Math.max(0, 1000 - (Date.now() - started)))
        const scriptFlushAt = Date.now()
        assert.strictEqual(String(yield* Effect.promise(() => client.sendCommand(["SCRIPT", "FLUSH"]))), "OK")
        yield* Effect.sleep(Math.max(0, 2000 - (Date.now() - started)))
        const flushAllAt = Date.now()
        assert.strictEqual(String(yield* Effect.promise(() => client.sendCommand(["FLUSHALL"]))), "OK")
        yield* Fiber.awaitAll(run.fibers)
        const elapsed = (Date.now() - started) / 1000

        assert.deepStrictEqual(run.failures, [])
        const grants = run.grants
        // grants go on after SCRIPT FLUSH at once (100 expected in each half second); after FLUSHALL the
        // recreated bucket is quiet for its 2 s grace (time for every process to set again what it had
        // set), then goes on
        assert.isAtLeast(countIn(grants, scriptFlushAt + 100, scriptFlushAt + 600), 40)
        assert.isAtMost(countIn(grants, flushAllAt + 200, flushAllAt + 1800), 2)
        assert.isAtLeast(countIn(grants, flushAllAt + 2300, flushAllAt + 2800), 40)
        // never more than the rate allows, bursts included
        assert.isAtMost(grants.length, 200 * elapsed + 2 * 10 + 10, `${grants.length} grants in ${elapsed} s`)
        assert.isAtLeast(grants.length, 0.85 * 200 * 3, `${grants.length} grants in ${elapsed} s`)
        // NOSCRIPT is reloaded inside the call: no Redis error counted
        assert.strictEqual((yield* metricValue("pipeline_rate_redis_errors_total", { provider: "s" })) ?? 0, 0)
        // the bucket is back in Redis
        assert.strictEqual(Number(yield* Effect.promise(() => client.hGet(bucketKey(prefix, "s"), "base"))), 200)
      }))),
    TEST_TIMEOUT
  )

  it.live(
    "interrupted waiters of one coordinator return their tokens: the other's waiter is granted early",
    () =>
      quiet(Effect.gen(function*() {
        const server = yield* privateRedis
        const prefix = uniquePrefix("intr")
        yield* deleteKeysAtEnd(server.url, prefix)
        const one = (yield* buildCoordinator(server.url, { prefix })).coordinator
        const two = (yield* buildCoordinator(server.url, { prefix })).coordinator
        yield* one.registerProvider("i", { capacity: 1, refillRate: 2 })
        yield* two.registerProvider("i", { capacity: 1, refillRate: 2 })
        const client = yield* plainClient(server.url)
        const issued = Effect.map(
          Effect.promise(() => client.hGet(bucketKey(prefix, "i"), "issued")),
          (value) => Number(value ?? 0)
        )

        // empty the burst: the next token is due 500 ms from now, then one every 500 ms
        assert.isTrue(yield* one.tryAcquire("i"))
        const drainedAt = Date.now()
        const before = yield* issued
        const logOne: Array<number> = []
        const waitersOne = yield* Effect.forEach(Array.from({ length: 5 }), () => forkAcquire(one, "i", logOne))
        assert.isTrue(yield* waitUntil(Effect.map(issued, (n) => n >= before + 5), 1000, 2), "five not reserved")
        // coordinator 2 waits behind them: due at 3 s if they were served
        const logTwo: Array<number> = []
        const waiterTwo = yield* forkAcquire(two, "i", logTwo)
        assert.isTrue(yield* waitUntil(Effect.map(issued, (n) => n >= before + 6), 1000, 2), "sixth not reserved")
        assert.isBelow(Date.now() - drainedAt, 400, "too slow to interrupt before the first is due")

        yield* Fiber.interruptAll(waitersOne)
        const exitsOne = yield* Fiber.awaitAll(waitersOne)
        for (const exit of exitsOne) assert.isTrue(Exit.hasInterrupts(exit), String(exit))
        assert.deepStrictEqual(logOne, [])

        const exitTwo = yield* Fiber.await(waiterTwo).pipe(Effect.timeoutOption("5 seconds"))
        assert.isTrue(exitTwo._tag === "Some" && Exit.isSuccess(exitTwo.value), "coordinator 2's waiter not granted")
        // as early as if the five never asked (500 ms), well before the 3 s it would take behind them
        assert.isBelow(logTwo[0]! - drainedAt, 1500, `granted ${logTwo[0]! - drainedAt} ms after the drain`)

        // nothing leaked: the bucket refills at its rate from there
        const refilled = yield* waitUntil(Effect.map(two.state("i"), (s) => s.available >= 1), 1500, 20)
        assert.isTrue(refilled, "no token 1.5 s after the grant: the interrupted waiters' tokens leaked")
        assert.isBelow(Date.now() - drainedAt, 2500)
        assert.strictEqual((yield* one.state("i")).waiters, 0)
      })),
    TEST_TIMEOUT
  )

  it.live(
    "a pause and a coordinator's level outlive FLUSHALL and a Redis restart (the bucket is recreated paused)",
    () =>
      quiet(Effect.gen(function*() {
        const server = yield* privateRedis
        const prefix = uniquePrefix("keep")
        yield* deleteKeysAtEnd(server.url, prefix)
        // process 1 pauses x and holds y at hard; process 2 only acquires
        const one = yield* buildCoordinator(server.url, { prefix })
        const two = yield* buildCoordinator(server.url, { prefix })
        for (const { coordinator } of [one, two]) {
          yield* coordinator.registerProvider("x", { capacity: 5, refillRate: 100 })
          yield* coordinator.registerProvider("y", { capacity: 5, refillRate: 100 })
        }
        yield* one.coordinator.setBudgetScale("x", 0)
        yield* one.levels.report("y", "A", "hard", 0)
        assert.strictEqual((yield* two.coordinator.state("x")).scale, 0)
        assert.strictEqual((yield* two.coordinator.state("y")).scale, 0)
        const client = yield* plainClient(server.url)

        /**
         * What process 2 sees over 1.5 s (tryAcquire of x and y every 50 ms): grants after a grace
         * of 300 ms (the call that recreates the bucket may find it unpaused for a moment), then the scales.
         */
        const observe = Effect.gen(function*() {
          const started = Date.now()
          let grantedX = 0
          let grantedY = 0
          for (const deadline = started + 1500; Date.now() < deadline;) {
            const late = Date.now() - started >= 300
            if ((yield* Effect.orElseSucceed(two.coordinator.tryAcquire("x"), () => false)) && late) grantedX++
            if ((yield* Effect.orElseSucceed(two.coordinator.tryAcquire("y"), () => false)) && late) grantedY++
            yield* Effect.sleep(50)
          }
          return {
            grantedX,
            grantedY,
            scaleX: (yield* two.coordinator.state("x")).scale,
            scaleY: (yield* two.coordinator.state("y")).scale
          }
        })
        const paused = { grantedX: 0, grantedY: 0, scaleX: 0, scaleY: 0 }

        yield* Effect.promise(() => client.sendCommand(["FLUSHALL"]))
        const afterFlushAll = yield* observe

        yield* server.kill
        yield* server.start
        // both processes reach Redis again (a tryAcquire that does not fail: granted or not)
        for (const { coordinator } of [two, one]) {
          const reachable = yield* waitUntil(
            Effect.map(Effect.exit(coordinator.tryAcquire("x")), Exit.isSuccess),
            15_000,
            100
          )
          assert.isTrue(reachable, "Redis not reachable again within 15 s of the restart")
        }
        const afterRestart = yield* observe

        assert.deepStrictEqual({ afterFlushAll, afterRestart }, { afterFlushAll: paused, afterRestart: paused })
      })),
    TEST_TIMEOUT
  )
})
