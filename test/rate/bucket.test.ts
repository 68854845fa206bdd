import { assert, describe, it } from "@effect/vitest"
import * as B from "../../src/rate/internal/bucket.ts"

const config = { capacity: 2, refillRate: 1000, cooldownSec: 600, breakerThreshold: 5, breakerTimeoutSec: 60 }

describe("bucket arithmetic", () => {
  it("an idle bucket never holds more than its capacity", () => {
    const b = new B.Bucket(config, 0)
    B.refill(b, 100)
    assert.strictEqual(b.tokens, 2)
  })

  it("with waiters parked, a late wake-up still leaves at most the capacity: no burst above it", () => {
    const b = new B.Bucket(config, 0)
    b.tokens = 0
    B.enqueue(b, { tokens: 2, since: 0, resume: () => {}, status: B.Status.Waiting })
    B.enqueue(b, { tokens: 2, since: 0, resume: () => {}, status: B.Status.Waiting })
    B.refill(b, 10) // a 10 s stall
    assert.strictEqual(b.tokens, 2)
  })

  it("the late tolerance is the refill time of the room the head waiter leaves in the bucket", () => {
    const b = new B.Bucket({ ...config, capacity: 5 }, 0)
    assert.strictEqual(B.lateTolerance(b), Infinity) // nobody waits
    b.tokens = 0
    B.enqueue(b, { tokens: 1, since: 0, resume: () => {}, status: B.Status.Waiting })
    assert.strictEqual(B.lateTolerance(b), 4 / 1000)
    B.rescale(b, 0.5, 0)
    assert.strictEqual(B.lateTolerance(b), 4 / 500)
    B.rescale(b, 0, 0)
    assert.strictEqual(B.lateTolerance(b), Infinity) // paused: nothing accrues, nothing is lost
  })

  it("deadlines are whole microseconds and a grant within one is served, so float error cannot spin", () => {
    const b = new B.Bucket({ ...config, capacity: 1, refillRate: 100 }, 0)
    B.rescale(b, 0.29, 0)
    b.tokens = 0
    B.enqueue(b, { tokens: 1, since: 0, resume: () => {}, status: B.Status.Waiting })
    const deadline = B.nextDeadline(b)!
    assert.strictEqual(deadline, Math.round(deadline * 1e6) / 1e6)
    B.refill(b, deadline)
    assert.isAtLeast(b.tokens + b.rate * B.RESOLUTION_SEC, 1)
  })
})
