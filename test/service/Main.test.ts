import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import * as CliConfig from "effect/cli/CliConfig"
import * as GlobalFlag from "effect/cli/GlobalFlag"
import * as Main from "../../src/service/Main.ts"

describe("Main.exitCode", () => {
  it("the program's code; a clean stop on a signal is 0; an unwritten output file makes either 1", () => {
    assert.strictEqual(Main.exitCode(Exit.succeed(0), false), 0)
    assert.strictEqual(Main.exitCode(Exit.succeed(Main.REFUSED), false), 2)
    assert.strictEqual(Main.exitCode(Exit.succeed(0), true), 1)
    assert.strictEqual(Main.exitCode(Exit.interrupt(), false), 0)
    assert.strictEqual(Main.exitCode(Exit.interrupt(), true), 1)
    assert.strictEqual(Main.exitCode(Exit.die(new Error("bug")), false), 1)
  })
})

describe("Main.layer", () => {
  it.effect("of the CLI's built-in global flags, only --help and --version (the log level is run's setting)", () =>
    Effect.gen(function*() {
      const { builtIns } = yield* CliConfig.CliConfig
      assert.deepStrictEqual(builtIns, [GlobalFlag.Help, GlobalFlag.Version])
      assert.notInclude(builtIns, GlobalFlag.LogLevel)
    }).pipe(Effect.provide(Main.layer)))
})
