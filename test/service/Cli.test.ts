import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { decodeJson, HealthStatus } from "market-data-pipeline"
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const main = new URL("../../src/bin/market-data-pipeline.ts", import.meta.url).pathname

interface Running {
  readonly child: ChildProcess
  readonly output: () => string
  readonly exited: Promise<number | null>
}

const start = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Running => {
  const child = spawn(process.execPath, [main, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  child.stdout!.on("data", (chunk) => (output += chunk))
  child.stderr!.on("data", (chunk) => (output += chunk))
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  return { child, output: () => output, exited }
}

/** Polls `f` every 50 ms for up to `seconds`; the child's output is in the failure message. */
const waitFor = async <A>(running: Running, seconds: number, f: () => Promise<A | undefined> | A | undefined) => {
  const deadline = Date.now() + seconds * 1000
  while (Date.now() < deadline) {
    const value = await f()
    if (value !== undefined) return value
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`timed out; output so far:\n${running.output()}`)
}

describe("the service as a child process", () => {
  it.live("runs the loop, serves HTTP, and stops cleanly on SIGINT with a summary", () =>
    Effect.promise(async () => {
      const dir = mkdtempSync(join(tmpdir(), "mdp-"))
      const running = start(
        [
          "run",
          "--port",
          "0",
          "--queue-capacity",
          "200",
          "--duration",
          "120",
          "--chart",
          join(dir, "loop.svg"),
          "--timeline",
          join(dir, "loop.csv")
        ],
        { MDP_HTTP_TOKEN: "s3cret" }
      )
      try {
        const url = await waitFor(running, 30, () => running.output().match(/listening on (http:\/\/[\d.]+:\d+)/)?.[1])
        const metric = async () => (await fetch(`${url}/metrics`)).text()
        // the simulated store's feedback moves the scale
        await waitFor(running, 30, async () =>
          (await metric()).includes("pipeline_rate_scale_factor{provider=\"ibkr\"} 0.5") ? true : undefined)
        const post = (body: string, token?: string) =>
          fetch(`${url}/feedback`, {
            method: "POST",
            body,
            headers: token === undefined ? {} : { authorization: `Bearer ${token}` }
          }).then((r) =>
            r.status
          )
        const valid = "{\"coordinator_id\":\"ext\",\"queue_size\":1,\"capacity\":10,\"level\":\"ok\",\"ts\":1.0}"
        assert.strictEqual(await post(valid, "s3cret"), 202)
        assert.strictEqual(await post("{\"level\":\"loud\"}", "s3cret"), 400)
        assert.strictEqual(await post("x".repeat(65 * 1024), "s3cret"), 413)
        assert.strictEqual(await post(valid), 401)
        assert.strictEqual(await post(valid, "guess"), 401)
        const health = await (await fetch(`${url}/healthz`)).text()
        const status = await Effect.runPromise(decodeJson(HealthStatus)(health))
        assert.strictEqual(status.service, "market-data-pipeline")
        // not a terminal: a plain status line per second
        await waitFor(running, 10, () => running.output().includes("level soft") ? true : undefined)
        running.child.kill("SIGINT")
        assert.strictEqual(await running.exited, 0)
        const output = running.output()
        assert.include(output, "summary")
        assert.match(output, /items dropped\s+0/)
        assert.match(output, /time in level\s+ok [\d.]+ s, soft [\d.]+ s, hard [\d.]+ s/)
        assert.isTrue(existsSync(join(dir, "loop.svg")))
        assert.include(readFileSync(join(dir, "loop.svg"), "utf8"), "<svg")
        assert.match(readFileSync(join(dir, "loop.csv"), "utf8"), /^t_seconds,rate_per_second,scale,level,queue_depth/)
      } finally {
        running.child.kill("SIGKILL")
      }
    }), { timeout: 90_000 })

  it.live(
    "--duration ends the run by itself; --no-simulated-store takes feedback only over HTTP",
    () =>
      Effect.promise(async () => {
        const running = start(["run", "--port", "0", "--duration", "2", "--no-simulated-store"])
        assert.strictEqual(await running.exited, 0)
        assert.include(running.output(), "no simulated store")
        assert.match(running.output(), /items dropped\s+0/)
      }),
    { timeout: 30_000 }
  )

  it.live("--help documents every option; bad values are rejected with a message", () =>
    Effect.promise(async () => {
      const help = start(["run", "--help"])
      await help.exited
      for (
        const option of [
          "--duration",
          "--port",
          "--provider-rate",
          "--sink-rate",
          "--queue-capacity",
          "--no-simulated-store",
          "--chart",
          "--timeline"
        ]
      ) assert.include(help.output(), option)
      const bad = start(["run", "--provider-rate", "-5", "--port", "0"])
      assert.notStrictEqual(await bad.exited, 0)
      assert.include(bad.output(), "provider-rate")
      const badEnv = start(["run", "--port", "0", "--duration", "1"], { MDP_FB_SCALE_SOFT: "2" })
      assert.notStrictEqual(await badEnv.exited, 0)
      assert.include(badEnv.output(), "MDP_FB_SCALE_SOFT=\"2\"")
    }), { timeout: 30_000 })

  it.live("the composition example in examples/ runs", () =>
    Effect.promise(async () => {
      const example = new URL("../../examples/compose-runtime.ts", import.meta.url).pathname
      const child = spawn(process.execPath, ["--conditions=market-data-pipeline:source", example], {
        stdio: ["ignore", "pipe", "pipe"]
      })
      let output = ""
      child.stdout!.on("data", (chunk) => (output += chunk))
      child.stderr!.on("data", (chunk) => (output += chunk))
      const code = await new Promise<number | null>((resolve) => child.on("exit", resolve))
      assert.strictEqual(code, 0, output)
      assert.include(output, "after soft: 30 tokens/s (scale 0.6, pressure soft)")
      assert.include(output, "pipeline_rate_scale_factor{provider=\"ibkr\"} 0.6")
    }), { timeout: 30_000 })
})
