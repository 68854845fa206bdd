import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Option, Result, Schema } from "effect"
import { Setting } from "market-data-pipeline"

const workers = Setting.make({
  env: "APP_WORKERS",
  flag: { _tag: "Value", name: "workers", metavar: "N" },
  group: "app",
  description: "worker fibers",
  schema: Schema.Int.check(Schema.isGreaterThan(0)),
  expected: "a positive integer",
  default: 4
})

const label = Setting.optional({
  env: "APP_LABEL",
  group: "app",
  description: "a label",
  schema: Schema.String.check(Schema.isPattern(/^[a-z]+$/)),
  expected: "lower-case letters"
})

const fromUnknown = (values: Record<string, unknown>) =>
  Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromUnknown(values))

describe("Setting", () => {
  it.effect("read: the value from the current ConfigProvider, else the default (optional: none)", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* Setting.read(workers).pipe(fromUnknown({})), 4)
      assert.strictEqual(yield* Setting.read(workers).pipe(fromUnknown({ APP_WORKERS: "8" })), 8)
      assert.deepStrictEqual(yield* Setting.read(label).pipe(fromUnknown({})), Option.none())
      assert.deepStrictEqual(yield* Setting.read(label).pipe(fromUnknown({ APP_LABEL: "abc" })), Option.some("abc"))
      assert.deepStrictEqual(
        yield* Setting.readAll({ workers, label }).pipe(fromUnknown({ APP_WORKERS: "2" })),
        { workers: 2, label: Option.none() }
      )
    }))

  it.effect("read and decode refuse alike, naming the variable or the flag; odd values are quoted, long ones cut", () =>
    Effect.gen(function*() {
      const variable = yield* Effect.flip(Setting.read(workers).pipe(fromUnknown({ APP_WORKERS: "0" })))
      if (variable._tag !== "InvalidSetting") return assert.fail(variable.message)
      assert.deepStrictEqual(
        [variable.setting, variable.value, variable.message],
        ["APP_WORKERS", "0", "APP_WORKERS=0: expected a positive integer"]
      )
      const flag = yield* Effect.flip(Setting.decode(workers, "0", "--workers"))
      assert.strictEqual(flag.message, "--workers 0: expected a positive integer")
      assert.strictEqual(yield* Setting.decode(workers, "3", "--workers"), 3)
      assert.strictEqual(
        (yield* Effect.flip(Setting.decode(workers, "", "--workers"))).message,
        "--workers \"\": expected a positive integer"
      )
      assert.strictEqual(
        (yield* Effect.flip(Setting.read(label).pipe(fromUnknown({ APP_LABEL: "a b\n" })))).message,
        "APP_LABEL=\"a b\\n\": expected lower-case letters"
      )
      const long = (yield* Effect.flip(Setting.decode(label, "X".repeat(200), "--label"))).message
      assert.strictEqual(long, `--label "${"X".repeat(80)}…": expected lower-case letters`)
    }))

  it.effect("BooleanText: the usual words in any case, nothing else", () =>
    Effect.gen(function*() {
      const flagSetting = Setting.make({
        env: "APP_ON",
        group: "app",
        description: "on",
        schema: Setting.BooleanText,
        expected: "a boolean",
        default: false
      })
      for (
        const [text, value] of [["TRUE", true], ["yes", true], ["On", true], ["1", true], ["n", false], [
          "Off",
          false
        ]] as const
      ) {
        assert.strictEqual(yield* Setting.read(flagSetting).pipe(fromUnknown({ APP_ON: text })), value, text)
      }
      const bad = yield* Effect.flip(Setting.read(flagSetting).pipe(fromUnknown({ APP_ON: "maybe" })))
      assert.strictEqual(bad.message, "APP_ON=maybe: expected a boolean")
    }))

  it.effect("a secret is refused without its value; a problem may be worded by value", () =>
    Effect.gen(function*() {
      const secret = Setting.optional({
        env: "APP_KEY",
        group: "app",
        description: "a key",
        schema: Schema.String.check(Schema.isMinLength(8)),
        expected: "at least 8 characters",
        problem: (value) => `is ${value.length} characters long: give at least 8`,
        secret: true
      })
      assert.strictEqual(secret.problem, "expected at least 8 characters")
      const variable = yield* Effect.flip(Setting.read(secret).pipe(fromUnknown({ APP_KEY: "hunter2" })))
      if (variable._tag !== "InvalidSetting") return assert.fail(variable.message)
      assert.strictEqual(variable.message, "APP_KEY is 7 characters long: give at least 8")
      assert.isUndefined(variable.value)
      const flag = yield* Effect.flip(Setting.decode(secret, "abc", "--key"))
      assert.strictEqual(flag.message, "--key is 3 characters long: give at least 8")
      assert.notInclude(flag.message, "abc")
    }))

  it("the shared schemas: NonBlank, Positive, PositiveInt, Seconds", () => {
    const accepts = (schema: Schema.ConstraintDecoder<unknown>, value: unknown) =>
      Result.isSuccess(Schema.decodeUnknownResult(schema)(value))
    const cases: ReadonlyArray<readonly [Schema.ConstraintDecoder<unknown>, unknown, boolean]> = [
      [Setting.NonBlank, "ibkr", true],
      [Setting.NonBlank, "", false],
      [Setting.NonBlank, "a b", false],
      [Setting.Positive, 0.5, true],
      [Setting.Positive, 0, false],
      [Setting.Positive, Infinity, false],
      [Setting.PositiveInt, 3, true],
      [Setting.PositiveInt, 1.5, false],
      [Setting.PositiveInt, 0, false],
      [Setting.Seconds, 0, true],
      [Setting.Seconds, 2.5, true],
      [Setting.Seconds, -1, false]
    ]
    for (const [schema, value, ok] of cases) assert.strictEqual(accepts(schema, value), ok, String(value))
    assert.strictEqual(Setting.booleanExpected, "true/false, yes/no, on/off or 1/0")
  })

  it.effect("checkRetired: a retired variable that is set is refused, naming its replacement", () =>
    Effect.gen(function*() {
      const retired = [{ env: "APP_THREADS", replacement: workers }]
      yield* Setting.checkRetired(retired).pipe(fromUnknown({}))
      const error = yield* Effect.flip(Setting.checkRetired(retired).pipe(fromUnknown({ APP_THREADS: "4" })))
      assert.strictEqual(error.message, "APP_THREADS=4: no longer read; set APP_WORKERS (--workers) instead")
    }))
})
