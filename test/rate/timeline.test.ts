import { assert, describe, it } from "@effect/vitest"
import * as T from "../../src/rate/internal/timeline.ts"

// 10 tokens/s = 0.01 tokens/ms; the frontier stood at ticket 100 at local time 1,000 ms
const line = (holes: ReadonlyArray<readonly [number, number]> = [], rate = 0.01): T.Timeline => ({
  gen: "1.0",
  frontier: 100,
  rate,
  at: 1000,
  epoch: 1,
  holes
})

describe("the shared bucket's timeline (pure arithmetic)", () => {
  it("the frontier moves at the rate from where it stood", () => {
    assert.strictEqual(T.frontierAt(line(), 1000), 100)
    assert.strictEqual(T.frontierAt(line(), 1500), 105)
  })

  it("a reservation is due once the frontier reaches its last ticket, and not before", () => {
    assert.isTrue(T.isDue(line(), 100, 1, 1000))
    assert.isFalse(T.isDue(line(), 101, 1, 1000))
    assert.strictEqual(T.dueIn(line(), 101, 1, 1000), 100)
    assert.isTrue(T.isDue(line(), 101, 1, 1100))
    // weighted: 3 tokens ending at ticket 103 are due when the frontier reaches 103
    assert.strictEqual(T.dueIn(line(), 103, 3, 1000), 300)
  })

  it("holes given back ahead of the frontier move up those behind, never those ahead", () => {
    // tickets 102..105 (4 tokens) were given back
    const tl = line([[101, 4]])
    assert.strictEqual(T.dueIn(tl, 101, 1, 1000), 100) // ahead of the hole: unchanged
    assert.strictEqual(T.dueIn(tl, 106, 1, 1000), 200) // behind: 4 tokens earlier than 600
    assert.strictEqual(T.dueIn(tl, 110, 2, 1000), 600) // behind, weighted: 1,000 without the hole
    // a hole that is not wholly before the reservation does not count
    assert.strictEqual(T.dueIn(tl, 104, 1, 1000), 400)
  })

  it("paused: nothing becomes due; what was due stays due", () => {
    const paused = line([], 0)
    assert.isUndefined(T.dueIn(paused, 101, 1, 1000))
    assert.isFalse(T.isDue(paused, 101, 1, 1_000_000))
    assert.strictEqual(T.dueIn(paused, 100, 1, 5000), 0)
  })

  it("holes are read as the scripts write them", () => {
    assert.deepStrictEqual(T.parseHoles(""), [])
    assert.deepStrictEqual(T.parseHoles("101:4,120.5:2"), [[101, 4], [120.5, 2]])
  })

  it("ticket magnitudes of an effectively unlimited bucket keep their meaning", () => {
    const huge: T.Timeline = { ...line(), frontier: 1e15, rate: 1e9 }
    assert.isTrue(T.isDue(huge, 1e15, 1, 1000))
    assert.isTrue(T.isDue(huge, 1e15 + 1e9, 1, 1001))
    assert.isFalse(T.isDue(huge, 1e15 + 2e9, 1, 1000))
  })
})
