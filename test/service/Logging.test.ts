import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Result } from "effect"
import * as TestConsole from "effect/testing/TestConsole"
import * as Setting from "../../src/runtime/Setting.ts"
import * as Logging from "../../src/service/Logging.ts"

// the arguments of the console calls, in order; the default logger's first is "[time] LEVEL (#fiber):"
const levelsIn = (args: ReadonlyArray<unknown>) =>
  args.flatMap((arg) => {
    const level = typeof arg === "string" ? /^\[[\d:.]+\] ([A-Z]+) \(#\d+\):$/.exec(arg)?.[1] : undefined
    return level === undefined ? [] : [level]
  })

const logAll = Effect.gen(function*() {
  yield* Effect.logTrace("t")
  yield* Effect.logDebug("d")
  yield* Effect.logInfo("i")
  yield* Effect.logWarning("w")
  yield* Effect.logError("e")
})

const withEnv = (env: Record<string, string>) =>
  Layer.succeed(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))

describe("Logging", () => {
  it("parseLevel: every documented name, in any case and with blanks around it", () => {
    for (const [name, level] of Logging.levels) {
      assert.deepStrictEqual(Logging.parseLevel(name), Result.succeed(level))
      assert.deepStrictEqual(Logging.parseLevel(` ${name.toUpperCase()}\n`), Result.succeed(level))
    }
  })

  it("parseLevel: anything else is refused, naming the variable and the accepted names", () => {
    for (const value of ["", "warn", "verbose", "2", "info,debug"]) {
      const result = Logging.parseLevel(value)
      assert.isTrue(Result.isFailure(result), value)
      if (Result.isFailure(result)) {
        assert.strictEqual(result.failure._tag, "InvalidSetting")
        assert.strictEqual(
          result.failure.message,
          `MDP_LOG_LEVEL=${value === "" ? "\"\"" : value}: expected one of trace, debug, info, warning, error, none`
        )
      }
    }
  })

  it.effect("layer: entries from the minimum level up, all on stderr (console.error), none on stdout", () =>
    Effect.gen(function*() {
      yield* logAll.pipe(Effect.provide(Logging.layer({ minimumLevel: "Debug" })))
      assert.deepStrictEqual(levelsIn(yield* TestConsole.errorLines), ["DEBUG", "INFO", "WARN", "ERROR"])
      assert.deepStrictEqual(yield* TestConsole.logLines, [])
    }))

  it.effect("layer: Info by default, like Effect's own default", () =>
    Effect.gen(function*() {
      yield* logAll.pipe(Effect.provide(Logging.layer()))
      assert.deepStrictEqual(levelsIn(yield* TestConsole.errorLines), ["INFO", "WARN", "ERROR"])
    }))

  it.effect("the level setting: MDP_LOG_LEVEL names it; info without it; none prints nothing", () =>
    Effect.gen(function*() {
      // the levels a run adds to the test console
      const run = (env: Record<string, string>) =>
        Effect.gen(function*() {
          const before = (yield* TestConsole.errorLines).length
          const minimumLevel = yield* Setting.read(Logging.level).pipe(Effect.provide(withEnv(env)))
          yield* logAll.pipe(Effect.provide(Logging.layer({ minimumLevel })))
          assert.deepStrictEqual(yield* TestConsole.logLines, [])
          return levelsIn((yield* TestConsole.errorLines).slice(before))
        })
      assert.deepStrictEqual(yield* run({ MDP_LOG_LEVEL: "warning" }), ["WARN", "ERROR"])
      assert.deepStrictEqual(yield* run({ MDP_LOG_LEVEL: "Trace" }), ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"])
      assert.deepStrictEqual(yield* run({}), ["INFO", "WARN", "ERROR"])
      assert.deepStrictEqual(yield* run({ MDP_LOG_LEVEL: "none" }), [])
    }))

  it.effect("the level setting: a value that names no level fails with InvalidSetting", () =>
    Effect.gen(function*() {
      const error = yield* Setting.read(Logging.level).pipe(
        Effect.provide(withEnv({ MDP_LOG_LEVEL: "loud" })),
        Effect.flip
      )
      assert.strictEqual(error.message, "MDP_LOG_LEVEL=loud: expected one of trace, debug, info, warning, error, none")
      assert.deepStrictEqual(yield* TestConsole.errorLines, [])
      assert.deepStrictEqual(yield* TestConsole.logLines, [])
    }))
})
