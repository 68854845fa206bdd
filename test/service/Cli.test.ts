import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { decodeJson, HealthStatus } from "market-data-pipeline"
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type Running, start as startCli, waitFor } from "../helpers/cli.ts"

const start = (args: ReadonlyArray<string>, env: Record<string, string> = {}, shell?: string): Running =>
  startCli(args, { env, shell })

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
            headers: {
              "content-type": "application/json",
              ...(token === undefined ? {} : { authorization: `Bearer ${token}` })
            }
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
        assert.match(running.output(), /items written\s+none: no simulated store/)
      }),
    { timeout: 30_000 }
  )

  it.live(
    "--log-level and MDP_LOG_LEVEL are one setting, the flag winning; start-up is quiet at info",
    () =>
      Effect.promise(async () => {
        const args = ["run", "--port", "0", "--duration", "1", "--no-simulated-store"]
        const [info, debug, error] = [
          start(args, { MDP_LOG_LEVEL: "" }),
          start([...args, "--log-level", "debug"], { MDP_LOG_LEVEL: "error" }),
          start([...args, "--log-level", "error"], { MDP_LOG_LEVEL: "debug" })
        ]
        assert.deepStrictEqual(await Promise.all([info.exited, debug.exited, error.exited]), [0, 0, 0])
        // the library's start-up lines are routine: debug
        assert.notInclude(info.output(), "registered provider")
        assert.include(info.output(), "WARN (#1): MDP_HTTP_TOKEN is not set")
        assert.match(debug.output(), /DEBUG \(#\d+\): registered provider ibkr/)
        assert.match(debug.output(), /DEBUG \(#\d+\): feedback enabled for provider ibkr/)
        assert.notMatch(error.output(), /DEBUG|INFO|WARN/)
        assert.include(error.output(), "summary")
      }),
    { timeout: 60_000 }
  )

  it.live("the composition example in examples/ runs", () =>
    Effect.promise(async () => {
      const example = new URL("../../examples/compose-runtime.ts", import.meta.url).pathname
      const child = spawn(process.execPath, ["--conditions=market-data-pipeline:source", example], {
        stdio: ["ignore", "pipe", "pipe"]
      })
      let output = ""
      child.stdout!.on("data", (chunk) => (output += chunk))
      child.stderr!.on("data", (chunk) => (output += chunk))
      const code = await new Promise<number | null>((resolve) => child.on("close", resolve))
      assert.strictEqual(code, 0, output)
      assert.include(output, "after soft: 30 tokens/s (scale 0.6, pressure soft)")
      assert.include(output, "pipeline_rate_scale_factor{provider=\"ibkr\"} 0.6")
    }), { timeout: 30_000 })
})

const listening = (running: Running) =>
  waitFor(running, 30, () => running.output().match(/listening on (http:\/\/[\d.]+:\d+)/)?.[1])

const exitWithin = (running: Running, seconds: number) =>
  Promise.race([
    running.exited,
    new Promise<string>((resolve) => setTimeout(() => resolve(`still running after ${seconds} s`), seconds * 1000))
  ])

const rssMiB = (pid: number): number =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024

/** Runs `body` against a started service (`run --port 0 ...args`), killed afterwards. */
const withService = (
  args: ReadonlyArray<string>,
  body: (running: Running, url: string) => Promise<void>,
  shell?: string
) =>
  Effect.promise(async () => {
    const running = start(["run", "--port", "0", ...args], {}, shell)
    try {
      await body(running, await listening(running))
    } finally {
      running.child.kill("SIGKILL")
    }
  })

const socketTo = (url: string): net.Socket => {
  const socket = net.connect(Number(new URL(url).port), "127.0.0.1")
  socket.on("error", () => {})
  return socket
}

const feedback = (url: string, id: string, level: string) =>
  fetch(`${url}/feedback`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ coordinator_id: id, queue_size: 1, capacity: 10, level, ts: 1 })
  }).then((r) => r.text().then(() => r.status))

describe("the service under attack", () => {
  it.live(
    "SIGTERM with a half-sent request open: exit 0 within 3 s, the summary ends at the signal",
    () =>
      withService([], async (running, url) => {
        // the loop starts as this line is printed: take the time as the output arrives, not on a poll
        await new Promise<void>((resolve) => {
          const seen = () => {
            if (!running.output().includes("Ctrl-C stops")) return
            running.child.stdout!.off("data", seen)
            resolve()
          }
          running.child.stdout!.on("data", seen)
          seen()
        })
        const startedAt = performance.now()
        const silent = socketTo(url)
        silent.write("POST /feedback HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        await new Promise((resolve) => setTimeout(resolve, 2500))
        const signalledAt = (performance.now() - startedAt) / 1000
        running.child.kill("SIGTERM")
        assert.strictEqual(await exitWithin(running, 3), 0, running.output())
        silent.destroy()
        const duration = Number(/duration\s+([\d.]+) s/.exec(running.output())?.[1])
        assert.approximately(duration, signalledAt, 0.2, running.output())
      }),
    { timeout: 60_000 }
  )

  it.live(
    "a second signal exits at once while a request is still being handled",
    () =>
      withService(["--shutdown-timeout", "60", "--no-simulated-store"], async (running, url) => {
        // headers complete, body still to come: once the server answers 100 Continue, the request is
        // being handled, and the drain waits for it
        const busy = socketTo(url)
        const continued = new Promise<void>((resolve) =>
          busy.on("data", (chunk) => String(chunk).includes("100 Continue") && resolve())
        )
        busy.write(
          "POST /feedback HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
            "Content-Length: 100\r\nExpect: 100-continue\r\n\r\n"
        )
        await continued
        running.child.kill("SIGTERM")
        await waitFor(running, 10, () => running.output().includes("summary") ? true : undefined)
        assert.strictEqual(await exitWithin(running, 0.5), "still running after 0.5 s") // draining
        running.child.kill("SIGTERM")
        assert.strictEqual(await exitWithin(running, 3), 143)
        busy.destroy()
      }),
    { timeout: 60_000 }
  )

  it.live(
    "1,100 idle sockets against 1,024 descriptors: real requests are still served",
    () =>
      withService(["--no-simulated-store"], async (running, url) => {
        const sockets = Array.from({ length: 1100 }, () => socketTo(url))
        try {
          // the last ones connected (or were refused): the flood is in place
          await Promise.all(
            sockets.slice(-10).map((s) =>
              new Promise((resolve) => {
                s.once("connect", resolve)
                s.once("close", resolve)
              })
            )
          )
          for (let i = 0; i < 6; i++) assert.strictEqual(await feedback(url, "store", "ok"), 202)
          assert.isNull(running.child.exitCode)
        } finally {
          for (const socket of sockets) socket.destroy()
        }
      }, "ulimit -n 1024"),
    { timeout: 60_000 }
  )

  it.live(
    "half-sent headers and a trickling body are closed after the header and request timeouts, not 300 s",
    () =>
      withService(["--no-simulated-store"], async (_, url) => {
        const closedWithin = (socket: net.Socket, seconds: number) =>
          Promise.race([
            new Promise((resolve) => socket.once("close", () => resolve("closed"))),
            new Promise((resolve) => setTimeout(() => resolve(`open after ${seconds} s`), seconds * 1000))
          ])
        const headers = socketTo(url)
        headers.resume() // read the 408, so that the close is seen
        headers.write("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        // complete headers, then a body byte a second: only the whole-request timeout ends it
        const body = socketTo(url)
        body.resume()
        body.write(
          "POST /feedback HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        )
        const trickle = setInterval(() => body.write(" "), 1000)
        try {
          const [a, b] = await Promise.all([closedWithin(headers, 20), closedWithin(body, 30)])
          assert.deepStrictEqual([a, b], ["closed", "closed"])
        } finally {
          clearInterval(trickle)
        }
      }),
    { timeout: 60_000 }
  )

  it.live(
    "an id flood: 400 for long ids; at the table's limit of longest ids RSS stays flat across 100 scrapes",
    () =>
      withService(["--no-simulated-store"], async (running, url) => {
        for (let i = 0; i < 50; i++) assert.strictEqual(await feedback(url, `${i}-`.padEnd(60_000, "x"), "ok"), 400)
        for (let i = 0; i < 256; i++) {
          const id = `${i}"`.padEnd(128, "\\")
          for (const level of ["hard", "soft", "ok"]) assert.strictEqual(await feedback(url, id, level), 202)
        }
        const scrape = () => fetch(`${url}/metrics`).then((r) => r.text())
        // the heap settles over a first hundred scrapes; the next hundred must not grow it
        // (before the ids were bounded, 100 scrapes took RSS from 514 MiB to 1.6 GiB)
        for (let i = 0; i < 100; i++) await scrape()
        const before = rssMiB(running.child.pid!)
        for (let i = 0; i < 100; i++) assert.isBelow(Buffer.byteLength(await scrape()), 1024 * 1024)
        const after = rssMiB(running.child.pid!)
        assert.isBelow(after - before, 64, `RSS ${before.toFixed(0)} → ${after.toFixed(0)} MiB`)
      }),
    { timeout: 120_000 }
  )

  it.live(
    "settings that would leave the edge open or lose output stop the start: one line, exit 2",
    () =>
      Effect.promise(async () => {
        const refused = async (args: ReadonlyArray<string>, env: Record<string, string>, expected: string) => {
          const running = start(["run", "--port", "0", "--duration", "1", ...args], env)
          assert.strictEqual(await exitWithin(running, 60), 2, running.output())
          // one line, the whole output (stdout included): no stack trace, nothing started
          assert.strictEqual(running.output(), `market-data-pipeline: ${expected}\n`)
        }
        await Promise.all([
          refused(
            [],
            { MDP_HTTP_TOKEN: "" },
            "MDP_HTTP_TOKEN must not be empty or blank: set a usable token, or unset the variable to run without one"
          ),
          refused(
            [],
            { MDP_HTTP_TOKEN: "  " },
            "MDP_HTTP_TOKEN must not be empty or blank: set a usable token, or unset the variable to run without one"
          ),
          refused(
            [],
            { MDP_HTTP_TOKEN: "two words" },
            "MDP_HTTP_TOKEN must not contain white space (it could never be sent as Bearer <token>): " +
              "set a usable token, or unset the variable to run without one"
          ),
          refused(
            ["--host", "0.0.0.0"],
            {},
            "--host 0.0.0.0 is not a loopback address and MDP_HTTP_TOKEN is not set: set a token, " +
              "or pass --allow-unauthenticated to accept feedback from the network without one"
          ),
          refused(
            [],
            { MDP_REDIS_ON_UNAVAILABLE: "bogus" },
            "MDP_REDIS_ON_UNAVAILABLE=bogus: expected wait, fail, allow or local:SHARE with SHARE in (0, 1]"
          ),
          refused(
            ["--chart", "/nonexistent-dir/loop.svg"],
            {},
            "--chart /nonexistent-dir/loop.svg: folder /nonexistent-dir does not exist"
          ),
          refused(
            [],
            { MDP_CHART: "/nonexistent-dir/loop.svg" },
            "MDP_CHART=/nonexistent-dir/loop.svg: folder /nonexistent-dir does not exist"
          ),
          refused(["--timeline", tmpdir()], {}, `--timeline ${tmpdir()}: is a folder`)
        ])
        // explicit opt-in, and a warning when no token is set
        const open = start(["run", "--port", "0", "--duration", "1", "--host", "0.0.0.0", "--allow-unauthenticated"])
        assert.strictEqual(await exitWithin(open, 60), 0, open.output())
        assert.include(open.output(), "MDP_HTTP_TOKEN is not set")
      }),
    { timeout: 120_000 }
  )

  it.live(
    "a chart that cannot be written at exit is reported and fails the run, also after a signal",
    () =>
      Effect.promise(async () => {
        for (const stop of ["duration", "SIGTERM"] as const) {
          const dir = mkdtempSync(join(tmpdir(), "mdp-out-"))
          const args = [
            "run",
            "--port",
            "0",
            "--chart",
            join(dir, "loop.svg"),
            "--duration",
            stop === "duration" ? "3" : "0"
          ]
          const running = start(args)
          try {
            await listening(running)
            rmSync(dir, { recursive: true }) // the folder goes away during the run
            if (stop === "SIGTERM") running.child.kill("SIGTERM")
            assert.strictEqual(await exitWithin(running, 20), 1, running.output())
            assert.include(running.output(), `could not write ${join(dir, "loop.svg")}`)
            assert.include(running.output(), "summary") // the summary still came first
          } finally {
            running.child.kill("SIGKILL")
          }
        }
      }),
    { timeout: 60_000 }
  )
})

describe("the service with --shared-buckets (the machine's Redis)", () => {
  it.live(
    "two processes share the provider's rate; a hard posted to one pauses both, ok resumes both",
    () =>
      Effect.promise(async () => {
        const env = { MDP_REDIS_PREFIX: `cli${process.pid}x${Date.now()}` }
        const args = ["run", "--port", "0", "--shared-buckets", "--no-simulated-store", "--provider-rate", "100"]
        const one = start([...args, "--duration", "8"], env)
        const two = start([...args, "--duration", "8"], env)
        try {
          const [a, b] = await Promise.all([listening(one), listening(two)])
          const scale = async (url: string) =>
            Number(
              /pipeline_rate_scale_factor\{provider="ibkr"\} ([\d.]+)/.exec(
                await (await fetch(`${url}/metrics`)).text()
              )?.[1]
            )
          await new Promise((resolve) => setTimeout(resolve, 1500))
          assert.strictEqual(await feedback(b, "bars-coord", "hard"), 202)
          await waitFor(one, 5, async () => (await scale(a)) === 0 ? true : undefined)
          assert.strictEqual(await scale(b), 0)
          await new Promise((resolve) => setTimeout(resolve, 1000))
          assert.strictEqual(await feedback(a, "bars-coord", "ok"), 202) // the same coordinator, heard by the other
          await waitFor(two, 5, async () => (await scale(b)) === 1 ? true : undefined)
          assert.deepStrictEqual(await Promise.all([one.exited, two.exited]), [0, 0])
          const produced = (r: Running) => Number(/items produced\s+(\d+)/.exec(r.output())?.[1])
          const total = produced(one) + produced(two)
          // one bucket of 100/s (burst 20) for 8 s less about a second paused: never two buckets' worth
          assert.isAtMost(total, 100 * 8 + 20 + 10, `${produced(one)} + ${produced(two)}`)
          assert.isAtLeast(total, 100 * 5)
          assert.isAbove(produced(one), 100)
          assert.isAbove(produced(two), 100)
        } finally {
          one.child.kill("SIGKILL")
          two.child.kill("SIGKILL")
          const { createClient } = await import("redis")
          const client = await createClient({ url: "redis://127.0.0.1:6379" }).connect()
          const keys = await client.keys(`{${env.MDP_REDIS_PREFIX}:rl:*`)
          if (keys.length > 0) await client.unlink(keys)
          await client.close()
        }
      }),
    { timeout: 60_000 }
  )

  it.live("an unreachable Redis stops the start with one line, exit 2", () =>
    Effect.promise(async () => {
      await Promise.all(["--shared-buckets", "--pulse"].map(async (option) => {
        const running = start(["run", "--port", "0", option, "--redis-url", "redis://127.0.0.1:1"], {
          MDP_LOG_LEVEL: ""
        })
        assert.strictEqual(await exitWithin(running, 20), 2, running.output())
        // the whole output at the default log level: one line (not also the client's own warnings)
        assert.match(
          running.output(),
          new RegExp(
            `^market-data-pipeline: ${option}: cannot connect to Redis at redis://127\\.0\\.0\\.1:1 \\([^\\n]*\\)\\n$`
          )
        )
      }))
    }), { timeout: 30_000 })
})

describe("the service with Pulse (the machine's Redis)", () => {
  const examples = JSON.parse(
    readFileSync(new URL("../fixtures/pulse-examples.json", import.meta.url), "utf8")
  ) as { consume: ReadonlyArray<{ name: string; data: string }> }
  const body = (name: string) => examples.consume.find((c) => c.name === name)!.data

  const cleanup = async (namespace: string) => {
    const { createClient } = await import("redis")
    const client = await createClient({ url: "redis://127.0.0.1:6379" }).connect()
    const keys = await client.keys(`${namespace}:*`)
    if (keys.length > 0) await client.unlink(keys)
    await client.close()
  }

  it.live(
    "--pulse applies the real store's double-wrapped feedback from the stream; poison goes to the DLQ",
    () =>
      Effect.promise(async () => {
        const namespace = `pulse${process.pid}x${Date.now()}`
        const running = start(["run", "--port", "0", "--pulse", "--no-simulated-store", "--duration", "20"], {
          MD_NAMESPACE: namespace
        })
        const { createClient } = await import("redis")
        const client = await createClient({ url: "redis://127.0.0.1:6379" }).connect()
        try {
          const url = await listening(running)
          const stream = `${namespace}:${namespace}.telemetry.feedback`
          await client.xAdd(stream, "*", { data: body("numeric-string-int") }) // c1: hard
          await client.xAdd(stream, "*", { data: body("not-json") })
          const scale = async () =>
            Number(
              /pipeline_rate_scale_factor\{provider="ibkr"\} ([\d.]+)/.exec(
                await (await fetch(`${url}/metrics`)).text()
              )?.[1]
            )
          await waitFor(running, 10, async () => (await scale()) === 0 ? true : undefined)
          await client.xAdd(stream, "*", { data: body("store-double-wrapped-B").replace("\"soft\"", "\"ok\"") })
          await client.xAdd(stream, "*", { data: body("numeric-string-int").replace("\"hard\"", "\"ok\"") })
          await waitFor(running, 10, async () => (await scale()) === 1 ? true : undefined)
          const dlq = (await client.xRange(`${stream}.dlq`, "-", "+")) ?? []
          assert.strictEqual(dlq.length, 1)
          assert.strictEqual(dlq[0]!.message["data"], body("not-json"))
          const metrics = await (await fetch(`${url}/metrics`)).text()
          assert.match(metrics, /pulse_consume_total\{[^}]*outcome="success"[^}]*\} [3-9]/)
        } finally {
          running.child.kill("SIGKILL")
          await client.close()
          await cleanup(namespace)
        }
      }),
    { timeout: 60_000 }
  )

  it.live(
    "--simulated-store-transport pulse: the whole loop through Redis on one machine",
    () =>
      Effect.promise(async () => {
        const namespace = `loop${process.pid}x${Date.now()}`
        const running = start(
          ["run", "--port", "0", "--simulated-store-transport", "pulse", "--queue-capacity", "200", "--duration", "30"],
          { MD_NAMESPACE: namespace }
        )
        try {
          await listening(running)
          await waitFor(running, 20, () => running.output().includes("level soft") ? true : undefined)
          const { createClient } = await import("redis")
          const client = await createClient({ url: "redis://127.0.0.1:6379" }).connect()
          assert.isAbove(await client.xLen(`${namespace}:${namespace}.telemetry.feedback`), 0)
          await client.close()
        } finally {
          running.child.kill("SIGKILL")
          await cleanup(namespace)
        }
      }),
    { timeout: 60_000 }
  )
})
