/**
 * Several real processes (test/rate/shared/worker.ts) share one bucket on
 * the machine's Redis (127.0.0.1:6379), each test under a key prefix of its
 * own. Grant timestamps are epoch ms of one machine's clock; bounds are
 * generous: these are wall-clock tests.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { all, workers } from "./shared/processes.ts"
import { deleteKeysAtEnd, plainClient, sharedRedisUrl, uniquePrefix } from "./shared/redis.ts"

const TEST_TIMEOUT = 40_000
const RATE = 200
const CAPACITY = 5

const config = (prefix: string) => ({
  url: sharedRedisUrl,
  prefix,
  provider: "p",
  capacity: CAPACITY,
  refillRate: RATE
})

/** The most timestamps in any window [t, t + widthMs) of the sorted list. */
const maxInWindow = (sorted: ReadonlyArray<number>, widthMs: number): { count: number; from: number } => {
  let best = { count: 0, from: 0 }
  let j = 0
  for (let i = 0; i < sorted.length; i++) {
    while (j < sorted.length && sorted[j]! < sorted[i]! + widthMs) j++
    if (j - i > best.count) best = { count: j - i, from: sorted[i]! }
  }
  return best
}

const countIn = (times: ReadonlyArray<number>, from: number, to: number) =>
  times.filter((t) => t >= from && t < to).length

describe("shared buckets: several processes", () => {
  it.live(
    "three processes, 8 fibers each, 2 s: one limit of burst + rate over every 1 s window",
    () =>
      Effect.gen(function*() {
        const prefix = uniquePrefix("procs")
        yield* deleteKeysAtEnd(sharedRedisUrl, prefix)
        const ws = yield* workers(3, config(prefix))

        const startAt = Date.now() + 300
        const durationMs = 2000
        const runs = yield* all(ws, { type: "run", startAt, durationMs, fibers: 8 }, 20_000)
        for (const run of runs) assert.deepStrictEqual(run.failures, [])
        const merged = runs.flatMap((run) => run.grants).sort((a, b) => a - b)

        // all within the run (the last acquires, started before its end, may finish a little later)
        assert.isAtLeast(merged[0]!, startAt)
        assert.isBelow(merged[merged.length - 1]!, startAt + durationMs + 500)
        // over any 1 s window: at most rate × 1 s + capacity, and a small allowance for timer jitter
        const worst = maxInWindow(merged, 1000)
        assert.isAtMost(
          worst.count,
          RATE + CAPACITY + 8,
          `${worst.count} grants in 1 s from ${worst.from - startAt} ms`
        )
        // at least 90 % of burst + rate × duration
        const expected = CAPACITY + RATE * durationMs / 1000
        assert.isAtLeast(merged.length, 0.9 * expected, `${merged.length} grants, ${expected} possible`)
        assert.isAtMost(countIn(merged, startAt, startAt + durationMs), expected + 8)
        // every process got a share
        for (const run of runs) {
          assert.isAtLeast(
            run.grants.length,
            merged.length / 10,
            `shares ${runs.map((r) => r.grants.length)}`
          )
        }
      }),
    TEST_TIMEOUT
  )

  it.live(
    "a pause issued in one process stops grants in the others; resume restarts them",
    () =>
      Effect.gen(function*() {
        const prefix = uniquePrefix("pause")
        yield* deleteKeysAtEnd(sharedRedisUrl, prefix)
        const ws = yield* workers(3, config(prefix))
        const [pauser] = ws

        const startAt = Date.now() + 300
        const durationMs = 2000
        const running = yield* Effect.forkChild(all(ws, { type: "run", startAt, durationMs, fibers: 8 }, 20_000))
        yield* Effect.sleep(Math.max(0, startAt + 700 - Date.now()))
        const pause = yield* Effect.promise(() => pauser!.request({ type: "scale", scale: 0 }))
        yield* Effect.sleep(Math.max(0, startAt + 1300 - Date.now()))
        const resume = yield* Effect.promise(() => pauser!.request({ type: "scale", scale: 1 }))
        const runs = yield* Fiber.join(running)

        for (const run of runs) assert.deepStrictEqual(run.failures, [])
        const describeRuns = () =>
          runs.map((run, i) =>
            `#${i}: ${
              run.grants.filter((t) => t > pause.before - 100 && t < resume.after + 100).map((t) => t - pause.before)
            }`
          ).join("; ")
        runs.forEach((run, i) => {
          // granted before the pause
          assert.isAtLeast(countIn(run.grants, startAt, pause.before), 1, `process ${i} before the pause`)
          // nothing from ~50 ms after the pause until the resume, in any process
          assert.strictEqual(
            countIn(run.grants, pause.after + 50, resume.before),
            0,
            `process ${i} granted while paused (ms from the pause): ${describeRuns()}`
          )
          // granted again after the resume
          assert.isAtLeast(
            countIn(run.grants, resume.before, startAt + durationMs + 500),
            1,
            `process ${i} after the resume`
          )
        })
        // the others (not the pausing process) restart within half a second of the resume
        for (const run of runs.slice(1)) assert.isAtLeast(countIn(run.grants, resume.before, resume.after + 500), 1)
      }),
    TEST_TIMEOUT
  )

  it.live(
    "worst-of across processes: coordinator A hard via process 1, B ok via process 2 → both paused",
    () =>
      Effect.gen(function*() {
        const prefix = uniquePrefix("worst")
        yield* deleteKeysAtEnd(sharedRedisUrl, prefix)
        const [one, two] = yield* workers(2, config(prefix))

        yield* Effect.promise(() => one!.request({ type: "report", coordinatorId: "A", level: "hard", scale: 0 }))
        yield* Effect.promise(() => two!.request({ type: "report", coordinatorId: "B", level: "ok", scale: 1 }))
        for (const worker of [one!, two!]) {
          const state = yield* Effect.promise(() => worker.request({ type: "state" }))
          assert.strictEqual(state.scale, 0, `process ${worker.pid}`)
          assert.strictEqual(state.rate, 0, `process ${worker.pid}`)
          assert.strictEqual(state.pressure, "hard", `process ${worker.pid}`)
          // a real pause: not even the idle burst
          assert.isFalse((yield* Effect.promise(() => worker.request({ type: "try" }))).granted)
        }

        // the levels live with the bucket, in its hash tag, and expire like it
        const client = yield* plainClient(sharedRedisUrl)
        for (const key of [`{${prefix}:rl:p}:b`, `{${prefix}:rl:p}:c`]) {
          assert.isAbove(yield* Effect.promise(() => client.pTTL(key)), 0, key)
        }

        // A recovers (reported ok through process 1): both run at the full rate again
        yield* Effect.promise(() => one!.request({ type: "report", coordinatorId: "A", level: "ok", scale: 1 }))
        for (const worker of [one!, two!]) {
          const state = yield* Effect.promise(() => worker.request({ type: "state" }))
          assert.strictEqual(state.scale, 1, `process ${worker.pid}`)
          assert.strictEqual(state.rate, RATE, `process ${worker.pid}`)
        }
        // the pause left the bucket empty (no idle burst kept); it refills at 200/s: a token within ms
        let granted = false
        for (const deadline = Date.now() + 1000; !granted && Date.now() < deadline;) {
          granted = (yield* Effect.promise(() => two!.request({ type: "try" }))).granted
          if (!granted) yield* Effect.sleep(10)
        }
        assert.isTrue(granted, "no token within 1 s of the resume")

        // soft through process 2 (scale 0.5), ok through process 1: both at half the rate
        yield* Effect.promise(() => two!.request({ type: "report", coordinatorId: "B", level: "soft", scale: 0.5 }))
        for (const worker of [one!, two!]) {
          const state = yield* Effect.promise(() => worker.request({ type: "state" }))
          assert.strictEqual(state.scale, 0.5, `process ${worker.pid}`)
          assert.strictEqual(state.rate, RATE / 2, `process ${worker.pid}`)
        }
      }),
    TEST_TIMEOUT
  )
})
