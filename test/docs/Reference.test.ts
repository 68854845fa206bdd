/**
 * `npm run docs` builds the API reference (typedoc, typedoc.json) with no
 * warning, and each public module opens with a comment of at least three
 * paragraphs, its gotchas among them: every public module opens with its own comment, every export and
 * member is documented, and every link resolves (the configuration treats
 * any warning as an error). Built here into test/output, not docs/api.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { existsSync, readFileSync, rmSync } from "node:fs"
import { join } from "node:path"
import { publicModules, root, run } from "./snippets.ts"

const out = join(root, "test/output/reference")

describe("the API reference", () => {
  it("each public module opens with its own comment: what it is, when to use it, its gotchas", () => {
    for (const module of publicModules) {
      const header = /^\/\*\*([\s\S]*?)\*\//.exec(readFileSync(join(root, module), "utf8"))?.[1] ?? ""
      assert.include(header, "@module", `${module}: the first comment is the module's (@module)`)
      assert.match(header, /Gotchas?\b/i, `${module}: the module comment names its gotchas`)
      const paragraphs = header.split(/\n\s*\*\s*\n/).filter((p) => !/^\s*\*\s*@/.test(p))
      assert.isAtLeast(paragraphs.length, 3, `${module}: what it is, when to use it, its gotchas`)
    }
  })

  it.live("npm run docs builds it with no warning, one page per public module", () =>
    Effect.gen(function*() {
      rmSync(out, { recursive: true, force: true })
      const built = yield* run("npm", ["run", "-s", "docs", "--", "--out", out], { timeout: 120_000 })
      const printed = built.stdout + built.stderr
      assert.strictEqual(built.code, 0, printed)
      assert.notInclude(printed, "warning", printed)
      for (const module of publicModules) {
        const page = join(
          out,
          "modules",
          `${module.replace(/^src\//, "").replace(/\.ts$/, "").replace(/\//g, "_")}.html`
        )
        assert.isTrue(existsSync(page), `no page for ${module} (${page})`)
      }
    }), { timeout: 150_000 })
})
