import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect } from "effect"
import { ProviderSettings } from "market-data-pipeline"

const fromEnv = (env: Record<string, string>) =>
  Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))

describe("ProviderSettings", () => {
  it.effect("ibkr at 200/s by default; the burst is 0.2 s worth of the rate unless given", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* ProviderSettings.load.pipe(fromEnv({})), { name: "ibkr", rate: 200, burst: 40 })
      assert.deepStrictEqual(
        yield* ProviderSettings.load.pipe(fromEnv({ MDP_FB_PROVIDER_NAME: "polygon", MDP_PROVIDER_RATE: "12.5" })),
        { name: "polygon", rate: 12.5, burst: 3 }
      )
      assert.strictEqual((yield* ProviderSettings.load.pipe(fromEnv({ MDP_PROVIDER_RATE: "0.5" }))).burst, 1)
      assert.strictEqual(
        (yield* ProviderSettings.load.pipe(fromEnv({ MDP_PROVIDER_RATE: "100", MDP_PROVIDER_BURST: "7" }))).burst,
        7
      )
    }))

  it.effect("a bad value, or a retired variable that is set, fails with one line naming it", () =>
    Effect.gen(function*() {
      const cases: Array<[Record<string, string>, string]> = [
        [{ MDP_PROVIDER_RATE: "-5" }, "MDP_PROVIDER_RATE=-5: expected a positive number (tokens/s)"],
        [{ MDP_PROVIDER_RATE: "fast" }, "MDP_PROVIDER_RATE=fast: expected a positive number (tokens/s)"],
        [{ MDP_PROVIDER_BURST: "2.5" }, "MDP_PROVIDER_BURST=2.5: expected a positive integer (tokens)"],
        [{ MDP_FB_PROVIDER_NAME: "two words" }, "MDP_FB_PROVIDER_NAME=\"two words\": expected a name without spaces"],
        [
          { MDP_RATE_REFILL: "10" },
          "MDP_RATE_REFILL=10: no longer read; set MDP_PROVIDER_RATE (--provider-rate) instead"
        ],
        [
          { MDP_RATE_CAPACITY: "60", MDP_PROVIDER_BURST: "60" },
          "MDP_RATE_CAPACITY=60: no longer read; set MDP_PROVIDER_BURST (--provider-burst) instead"
        ]
      ]
      for (const [vars, expected] of cases) {
        const error = yield* Effect.flip(ProviderSettings.load.pipe(fromEnv(vars)))
        assert.strictEqual(error._tag, "InvalidSetting")
        assert.strictEqual(error.message, expected)
      }
    }))
})
