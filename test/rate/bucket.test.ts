import { assert, describe, it } from "@effect/vitest"
import * as B from "../../src/rate/internal/bucket.ts"

const config = { capacity: 2, refillRate: 1000, cooldownSec: 600, breakerThreshold: 5, breakerTimeoutSec: 60 }

describe("bucket arithmetic", () => {
  it("an idle bucket never holds more than its capacity", () => {
    const b = new B.Bucket(config, 0)
    B.refill(b, 100)
    assert.strictEqual(b.tokens, 2)
  })

  it("with waiters parked, a late wake-up is credited up to rate × LATENESS_CREDIT_SEC above capacity", () => {
    const b = new B.Bucket(config, 0)
    b.tokens = 0
    B.enqueue(b, { tokens: 2, since: 0, deferred: undefined as any, status: B.Status.Waiting })
    B.enqueue(b, { tokens: 2, since: 0, deferred: undefined as any, status: B.Status.Waiting })
    B.refill(b, 10) // a 10 s stall
    assert.strictEqual(b.tokens, 2 + 1000 * B.LATENESS_CREDIT_SEC)
  })

  it("deadlines are whole microseconds and a grant within one is served, so float error cannot spin", () => {
    const b = new B.Bucket({ ...config, capacity: 1, refillRate: 100 }, 0)
    B.rescale(b, 0.29, 0)
    b.tokens = 0
    B.enqueue(b, { tokens: 1, since: 0, deferred: undefined as any, status: B.Status.Waiting })
    const deadline = B.nextDeadline(b)!
    assert.strictEqual(deadline, Math.round(deadline * 1e6) / 1e6)
    B.refill(b, deadline)
    assert.isAtLeast(b.tokens + b.rate * B.RESOLUTION_SEC, 1)
  })
})
