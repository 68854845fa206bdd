import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, FileSystem, Option, Redacted } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as Setting from "../../src/runtime/Setting.ts"
import * as Settings from "../../src/service/Settings.ts"

const main = new URL("../../src/bin/market-data-pipeline.ts", import.meta.url).pathname

interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs the executable to its end (killed after 60 s), with these arguments and extra variables. */
const runCli = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Promise<Ran> =>
  new Promise((resolve) => {
    const child: ChildProcess = spawn(process.execPath, [main, ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (chunk) => (stdout += chunk))
    child.stderr!.on("data", (chunk) => (stderr += chunk))
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000)
    // "close", not "exit": the output is all read only once the pipes are closed
    child.on("close", (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })

describe("a refused setting, as a child process", () => {
  it.live(
    "each bad setting, flag or environment: one line on stderr, exit 2, nothing started",
    () =>
      Effect.promise(async () => {
        // [args, environment, the line expected on stderr]
        const cases: ReadonlyArray<readonly [ReadonlyArray<string>, Record<string, string>, string]> = [
          [[], { MDP_SINK_RATE: "-3" }, "MDP_SINK_RATE=-3: expected a positive number (items/s)"],
          [[], { MDP_QUEUE_CAPACITY: "1" }, "MDP_QUEUE_CAPACITY=1: expected an integer of at least 2"],
          [[], { MDP_DURATION: "-1" }, "MDP_DURATION=-1: expected seconds, a number from 0 (0 = until stopped)"],
          [[], { MDP_HTTP_PORT: "99999" }, "MDP_HTTP_PORT=99999: expected an integer from 0 to 65535"],
          [[], { MDP_HTTP_PORT: "config" }, "MDP_HTTP_PORT=config: expected an integer from 0 to 65535"],
          [[], { MDP_PROVIDER_RATE: "-5" }, "MDP_PROVIDER_RATE=-5: expected a positive number (tokens/s)"],
          [["--port", "config"], {}, "--port config: expected an integer from 0 to 65535"],
          [["--sink-rate", "-3"], {}, "--sink-rate -3: expected a positive number (items/s)"],
          [[], { MDP_FB_SCALE_SOFT: "1.5" }, "MDP_FB_SCALE_SOFT=1.5: expected a number from 0 to 1"],
          [["--scale-soft", "1.5"], {}, "--scale-soft 1.5: expected a number from 0 to 1"],
          [
            [],
            { MDP_FB_ENABLE_FEEDBACK: "maybe" },
            "MDP_FB_ENABLE_FEEDBACK=maybe: expected true/false, yes/no, on/off or 1/0"
          ],
          [
            [],
            { MDP_RATE_REFILL: "10" },
            "MDP_RATE_REFILL=10: no longer read; set MDP_PROVIDER_RATE (--provider-rate) instead"
          ],
          [
            [],
            { MDP_RATE_CAPACITY: "10" },
            "MDP_RATE_CAPACITY=10: no longer read; set MDP_PROVIDER_BURST (--provider-burst) instead"
          ],
          [["--chart", "x.png"], {}, "--chart x.png: only SVG charts are written; give a path ending in .svg"],
          [["--overflow", "spill"], {}, "--overflow spill: expected block, drop_oldest or error"],
          [["--bogus"], {}, "unknown option --bogus; see 'market-data-pipeline run --help'"],
          [
            ["--port"],
            {},
            "--port: a value is needed (expected an integer from 0 to 65535); see 'market-data-pipeline run --help'"
          ],
          // a flag wins over its variable, whose bad value is then never read
          [["--port", "70000"], { MDP_HTTP_PORT: "9108" }, "--port 70000: expected an integer from 0 to 65535"],
          // a single-value flag given twice is refused, not read as "2 occurrences" or the last one
          [
            ["--duration", "1", "--duration", "-1"],
            {},
            "--duration given 2 times: give it once; see 'market-data-pipeline run --help'"
          ],
          [["--pulse", "--pulse"], {}, "--pulse given 2 times: give it once; see 'market-data-pipeline run --help'"],
          // the log level: one setting, --log-level or MDP_LOG_LEVEL, checked like any other
          [
            ["--log-level", "warn"],
            {},
            "--log-level warn: expected one of trace, debug, info, warning, error, none"
          ],
          [
            [],
            { MDP_LOG_LEVEL: "loud" },
            "MDP_LOG_LEVEL=loud: expected one of trace, debug, info, warning, error, none"
          ],
          [[], { EVENT_BUS_BACKEND: "kafka" }, "EVENT_BUS_BACKEND=kafka: expected inmem or redis"]
        ]
        // four at a time: each start loads the program (about a second of CPU) and the machine is shared
        const results: Array<Ran> = []
        let taken = 0
        const worker = async (): Promise<void> => {
          while (taken < cases.length) {
            const i = taken++
            // should a setting pass by mistake, the run ends after a second, on a free port
            results[i] = await runCli(["run", ...cases[i]![0]], {
              MDP_DURATION: "1",
              MDP_HTTP_PORT: "0",
              ...cases[i]![1]
            })
          }
        }
        await Promise.all([worker(), worker(), worker(), worker()])
        cases.forEach(([args, env, expected], i) => {
          const { code, stderr, stdout } = results[i]!
          const what = `${JSON.stringify(env)} run ${args.join(" ")}: ${stderr}${stdout}`
          assert.strictEqual(code, 2, what)
          assert.strictEqual(stderr, `market-data-pipeline: ${expected}\n`, what)
          assert.strictEqual(stdout, "", what)
        })
      }),
    { timeout: 240_000 }
  )

  it.live(
    "--help lists every setting with its default and its environment variable, MDP_FB_* and the token included",
    () =>
      Effect.promise(async () => {
        const { code, stderr, stdout } = await runCli(["run", "--help"], { MDP_HTTP_TOKEN: "never-printed" })
        assert.strictEqual(code, 0, stderr)
        for (const section of Settings.helpSections) {
          assert.include(stdout, section.title)
          for (const setting of section.settings) {
            assert.include(stdout, setting.env)
            if (setting.flag !== undefined) assert.include(stdout, `--${setting.flag.name}`)
          }
        }
        for (
          const line of [
            "--port N",
            "(default: 9108; env MDP_HTTP_PORT)",
            "(default: 0.5; env MDP_FB_SCALE_SOFT)",
            "(default: off; env MDP_FB_ENABLE_FEEDBACK=false)",
            "(default: drop_oldest; env MDP_QUEUE_OVERFLOW)",
            "MDP_HTTP_TOKEN",
            "MDP_FB_MAX_COORDINATORS",
            "MDP_FB_LEVEL_TTL",
            "MDP_FB_PROVIDER_NAME",
            "PULSE_GROUP"
          ]
        ) assert.include(stdout.replace(/\s+/g, " "), line)
        assert.notInclude(stdout, "never-printed")
        assert.notInclude(stdout, "MDP_RATE_REFILL")
        // one log level setting (not also the CLI's built-in --log-level), no wizard, no completions
        assert.strictEqual(stdout.split("--log-level").length, 2, stdout)
        assert.include(stdout.replace(/\s+/g, " "), "--log-level LEVEL the least severe log lines printed")
        for (const builtIn of ["--wizard", "--completions", "fatal"]) assert.notInclude(stdout, builtIn)
      }),
    { timeout: 60_000 }
  )
})

const env = (vars: Record<string, string>) =>
  Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromUnknown(vars))

const load = (given: Readonly<Record<string, Settings.Given>>, vars: Record<string, string> = {}) =>
  Settings.load(given).pipe(env(vars), Effect.provide(FileSystem.layerNoop({})))

describe("Settings.load", () => {
  it.effect("defaults, then the environment, then the flags", () =>
    Effect.gen(function*() {
      const defaults = yield* load({})
      assert.strictEqual(defaults.port, 9108)
      assert.strictEqual(defaults.providerRate, 200)
      assert.isTrue(Option.isNone(defaults.providerBurst))
      assert.strictEqual(defaults.overflow, "drop_oldest")
      assert.isTrue(defaults.enableFeedback)
      assert.deepStrictEqual(defaults.allowedHosts, [])
      assert.deepStrictEqual(defaults.givenAs, {})

      const fromEnv = yield* load({}, {
        MDP_HTTP_PORT: "0",
        MDP_FB_ENABLE_FEEDBACK: "OFF",
        MDP_HTTP_ALLOWED_HOSTS: "a, b"
      })
      assert.strictEqual(fromEnv.port, 0)
      assert.isFalse(fromEnv.enableFeedback)
      assert.deepStrictEqual(fromEnv.allowedHosts, ["a", "b"])
      assert.strictEqual(fromEnv.givenAs.port, "MDP_HTTP_PORT")

      const fromFlags = yield* load(
        {
          port: Option.some("9200"),
          "no-feedback": Option.some(true),
          "allowed-host": ["c", "d,e"],
          overflow: Option.some("block")
        },
        { MDP_HTTP_PORT: "0", MDP_FB_ENABLE_FEEDBACK: "true", MDP_HTTP_ALLOWED_HOSTS: "a" }
      )
      assert.strictEqual(fromFlags.port, 9200)
      assert.isFalse(fromFlags.enableFeedback)
      assert.deepStrictEqual(fromFlags.allowedHosts, ["c", "d", "e"])
      assert.strictEqual(fromFlags.overflow, "block")
      assert.strictEqual(fromFlags.givenAs.port, "--port")
    }))

  it.effect("a flag and its variable are refused alike, each named as it was given", () =>
    Effect.gen(function*() {
      const flag = yield* Effect.flip(load({ "sink-rate": Option.some("-3") }))
      const variable = yield* Effect.flip(load({}, { MDP_SINK_RATE: "-3" }))
      assert.strictEqual(flag._tag, "InvalidSetting")
      assert.strictEqual(variable._tag, "InvalidSetting")
      assert.strictEqual(flag.message, "--sink-rate -3: expected a positive number (items/s)")
      assert.strictEqual(variable.message, "MDP_SINK_RATE=-3: expected a positive number (items/s)")
      // an empty flag value is checked, an empty variable is unset
      assert.strictEqual(
        (yield* Effect.flip(load({ port: Option.some("") }))).message,
        "--port \"\": expected an integer from 0 to 65535"
      )
      assert.strictEqual((yield* load({}, { MDP_HTTP_PORT: "" })).port, 9108)
    }))

  it.effect("Pulse: --pulse alone, or PULSE_ENABLED=true with EVENT_BUS_BACKEND=redis, or a store over Pulse", () =>
    Effect.gen(function*() {
      assert.isFalse((yield* load({})).consumePulse)
      assert.isTrue((yield* load({ pulse: Option.some(true) })).consumePulse)
      assert.isFalse((yield* load({}, { PULSE_ENABLED: "true" })).consumePulse)
      assert.isTrue((yield* load({}, { PULSE_ENABLED: "true", EVENT_BUS_BACKEND: "redis" })).consumePulse)
      assert.isTrue((yield* load({ "simulated-store-transport": Option.some("pulse") })).consumePulse)
      const bad = yield* Effect.flip(load({}, { PULSE_COUNT: "0" }))
      assert.strictEqual(bad.message, "PULSE_COUNT=0: expected a positive integer")
    }))

  it.effect("a retired variable is refused, naming its replacement; a non-loopback host needs a token", () =>
    Effect.gen(function*() {
      const retired = yield* Effect.flip(load({}, { MDP_RATE_CAPACITY: "60" }))
      assert.strictEqual(
        retired.message,
        "MDP_RATE_CAPACITY=60: no longer read; set MDP_PROVIDER_BURST (--provider-burst) instead"
      )
      const open = yield* Effect.flip(load({ host: Option.some("0.0.0.0") }))
      assert.strictEqual(open._tag, "StartupError")
      assert.include(open.message, "--host 0.0.0.0 is not a loopback address")
      assert.strictEqual(
        (yield* load({ host: Option.some("0.0.0.0"), "allow-unauthenticated": Option.some(true) })).host,
        "0.0.0.0"
      )
    }))

  it.effect("the log level: --log-level wins over MDP_LOG_LEVEL, whose bad value is then never read", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* load({})).logLevel, "Info")
      assert.strictEqual((yield* load({}, { MDP_LOG_LEVEL: "error" })).logLevel, "Error")
      const flag = yield* load({ "log-level": Option.some("debug") }, { MDP_LOG_LEVEL: "loud" })
      assert.strictEqual(flag.logLevel, "Debug")
      assert.strictEqual(flag.givenAs.logLevel, "--log-level")
    }))

  it.effect("EVENT_BUS_BACKEND: inmem or redis, as the Python bus takes them; anything else refused", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* load({})).eventBusBackend, "inmem")
      assert.strictEqual((yield* load({}, { EVENT_BUS_BACKEND: "redis" })).eventBusBackend, "redis")
      for (const value of ["kafka", "Redis", "in mem"]) {
        const error = yield* Effect.flip(load({}, { EVENT_BUS_BACKEND: value }))
        assert.strictEqual(
          error.message,
          `EVENT_BUS_BACKEND=${JSON.stringify(value).replace(/^"([\w]+)"$/, "$1")}: expected inmem or redis`
        )
      }
    }))

  it.effect("the token: its setting's check is the HTTP API's; empty is refused, unset is none; never shown", () =>
    Effect.gen(function*() {
      const read = (env: Record<string, string>) =>
        Setting.read(Settings.token).pipe(
          Effect.provideService(
            ConfigProvider.ConfigProvider,
            ConfigProvider.fromEnv({ env, preserveEmptyStrings: true })
          )
        )
      assert.isTrue(Option.isNone(yield* read({})))
      const token = yield* read({ MDP_HTTP_TOKEN: "s3cret" })
      assert.strictEqual(Option.map(token, Redacted.value).pipe(Option.getOrUndefined), "s3cret")
      const refusals: ReadonlyArray<readonly [string, string]> = [
        ["", "must not be empty or blank"],
        ["  ", "must not be empty or blank"],
        ["two words", "must not contain white space (it could never be sent as Bearer <token>)"]
      ]
      for (const [value, problem] of refusals) {
        const error = yield* Effect.flip(read({ MDP_HTTP_TOKEN: value }))
        if (error._tag !== "InvalidSetting") return assert.fail(error.message)
        assert.strictEqual(
          error.message,
          `MDP_HTTP_TOKEN ${problem}: set a usable token, or unset the variable to run without one`
        )
        assert.isUndefined(error.value) // the value is not kept in the error either
      }
    }))

  it("every flag belongs to one setting, and every setting's variable is unique", () => {
    const envs = [...Object.values(Settings.all), Settings.token].map((s) => s.env)
    assert.strictEqual(new Set(envs).size, envs.length)
    for (const name of Object.keys(Settings.flags)) assert.isDefined(Settings.byFlag(name), name)
  })
})
