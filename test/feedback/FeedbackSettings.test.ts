import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect } from "effect"
import { FeedbackSettings } from "market-data-pipeline"

const fromEnv = (env: Record<string, string>) =>
  Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))

describe("FeedbackSettings", () => {
  it.effect("reads MDP_FB_* with the reference defaults, booleans in any case", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* FeedbackSettings.load.pipe(fromEnv({})), {
        enableFeedback: true,
        policy: { ok: 1, soft: 0.5, hard: 0 }
      })
      const custom = yield* FeedbackSettings.load.pipe(fromEnv({
        MDP_FB_ENABLE_FEEDBACK: "OFF",
        MDP_FB_SCALE_SOFT: "0.75",
        MDP_FB_SCALE_HARD: "0.1",
        MDP_FB_LEVEL_TTL: "30",
        MDP_FB_MAX_COORDINATORS: "16"
      }))
      assert.deepStrictEqual(custom, {
        enableFeedback: false,
        policy: { ok: 1, soft: 0.75, hard: 0.1 },
        levelTtlSec: 30,
        maxCoordinators: 16
      })
    }))

  it.effect("reads from any ConfigProvider, as layerConfig does", () =>
    Effect.gen(function*() {
      const settings = yield* FeedbackSettings.pipe(
        Effect.provide(FeedbackSettings.layerConfig),
        Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromUnknown({ MDP_FB_SCALE_OK: "0.9" }))
      )
      assert.strictEqual(settings.policy.ok, 0.9)
    }))

  it.effect("a bad value fails with InvalidSetting: the variable, the value and what is expected, on one line", () =>
    Effect.gen(function*() {
      const cases: Array<[Record<string, string>, string]> = [
        [
          { MDP_FB_ENABLE_FEEDBACK: "maybe" },
          "MDP_FB_ENABLE_FEEDBACK=maybe: expected true/false, yes/no, on/off or 1/0"
        ],
        [{ MDP_FB_SCALE_SOFT: "1.5" }, "MDP_FB_SCALE_SOFT=1.5: expected a number from 0 to 1"],
        [{ MDP_FB_SCALE_OK: "abc" }, "MDP_FB_SCALE_OK=abc: expected a number from 0 to 1"],
        [{ MDP_FB_LEVEL_TTL: "-5" }, "MDP_FB_LEVEL_TTL=-5: expected seconds, a number from 0 (0 = off)"],
        [{ MDP_FB_MAX_COORDINATORS: "2.5" }, "MDP_FB_MAX_COORDINATORS=2.5: expected a positive integer"]
      ]
      for (const [vars, expected] of cases) {
        const error = yield* Effect.flip(FeedbackSettings.load.pipe(fromEnv(vars)))
        assert.strictEqual(error._tag, "InvalidSetting")
        assert.strictEqual(error.message, expected)
      }
    }))
})
