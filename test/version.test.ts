import { assert, it } from "@effect/vitest"
import { version } from "market-data-pipeline"
import { readFileSync } from "node:fs"

it("version matches package.json", () => {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"))
  assert.strictEqual(version, pkg.version)
})
