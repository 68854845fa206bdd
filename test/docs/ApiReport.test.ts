/**
 * The public API is what the committed report says: `npm run api-report -- --check`
 * emits the declarations of the sources, renders every export of the package's
 * entry point with its type (API Extractor) and fails, showing the difference,
 * when that is not `api-report/market-data-pipeline.api.md`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { join } from "node:path"
import { root, run } from "./snippets.ts"

describe("the public API report", () => {
  it.live("the exports of the sources are exactly the committed report's", () =>
    Effect.gen(function*() {
      const checked = yield* run(process.execPath, [join(root, "scripts/api-report.ts"), "--check"], {
        timeout: 120_000
      })
      assert.strictEqual(checked.code, 0, checked.stdout + checked.stderr)
    }), { timeout: 150_000 })
})
