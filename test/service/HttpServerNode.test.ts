import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { spawn } from "node:child_process"
import * as net from "node:net"
import { type HttpServerNodeOptions, layer, type ListenError } from "../../src/service/HttpServerNode.ts"

const main = new URL("../../src/bin/market-data-pipeline.ts", import.meta.url).pathname

/** A real listener holding a free port of 127.0.0.1 until the scope closes. */
const occupiedPort = Effect.acquireRelease(
  Effect.callback<net.Server>((resume) => {
    const server = net.createServer()
    server.listen(0, "127.0.0.1", () => {
      resume(Effect.succeed(server))
    })
  }),
  (server) =>
    Effect.callback<void>((resume) => {
      server.close(() => resume(Effect.void))
    })
).pipe(Effect.map((server) => (server.address() as net.AddressInfo).port))

const listenError = (options: HttpServerNodeOptions) =>
  Effect.flip(Layer.build(layer(options)).pipe(Effect.scoped)) as Effect.Effect<ListenError>

/** Runs the CLI to its end; optionally as an unprivileged user (when the tests run as root). */
const cli = (args: ReadonlyArray<string>, unprivileged = false) =>
  Effect.promise(() =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const command = [process.execPath, main, ...args]
      const asNobody = unprivileged && process.getuid?.() === 0
      // at the default log level (info): a refused start must still print one line only
      const { MDP_LOG_LEVEL: _level, ...env } = process.env
      const child = asNobody
        ? spawn("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", ...command], { env })
        : spawn(command[0]!, command.slice(1), { env })
      let stdout = ""
      let stderr = ""
      child.stdout.on("data", (chunk) => (stdout += chunk))
      child.stderr.on("data", (chunk) => (stderr += chunk))
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000)
      // "close", not "exit": the output is all read only once the pipes are closed
      child.on("close", (code) => {
        clearTimeout(timer)
        resolve({ code, stdout, stderr })
      })
    })
  )

describe("HttpServerNode: an address that cannot be bound", () => {
  it.live("a port in use: ListenError AddressInUse, one line naming the port and the option", () =>
    Effect.gen(function*() {
      const port = yield* occupiedPort
      const error = yield* listenError({ port, host: "127.0.0.1" })
      assert.strictEqual(error._tag, "ListenError")
      assert.strictEqual(error.reason, "AddressInUse")
      assert.strictEqual(error.message, `port ${port} is in use; pass --port`)
    }).pipe(Effect.scoped))

  it.live("an address not of this machine, a name that does not resolve: one line naming --host", () =>
    Effect.gen(function*() {
      // 192.0.2.0/24 is TEST-NET-1: never an address of a real interface
      const foreign = yield* listenError({ port: 0, host: "192.0.2.1" })
      assert.strictEqual(foreign.reason, "AddressNotAvailable")
      assert.strictEqual(foreign.message, "address 192.0.2.1 is not an address of this machine; pass --host")
      const unknown = yield* listenError({ port: 0, host: "no-such-host.invalid" })
      assert.strictEqual(unknown.reason, "HostNotFound")
      assert.strictEqual(unknown.message, "host no-such-host.invalid cannot be resolved; pass --host")
    }))

  it.live(
    "the CLI: a port in use stops the start with exactly one line on stderr, exit 2, no stack",
    () =>
      Effect.gen(function*() {
        const port = yield* occupiedPort
        const run = yield* cli(["run", "--port", String(port), "--duration", "5"])
        assert.strictEqual(run.code, 2, run.stdout + run.stderr)
        assert.strictEqual(run.stderr, `market-data-pipeline: port ${port} is in use; pass --port\n`)
        assert.strictEqual(run.stdout, "") // nothing started
        assert.notInclude(run.stdout, "ServeError")
        assert.notInclude(run.stdout + run.stderr, "    at ")
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )

  it.live(
    "the CLI: a privileged port without privileges, a --host not of this machine: one line each, exit 2",
    () =>
      Effect.gen(function*() {
        const privileged = yield* cli(["run", "--port", "80", "--duration", "5"], true)
        assert.strictEqual(privileged.code, 2, privileged.stdout + privileged.stderr)
        assert.strictEqual(
          privileged.stderr,
          "market-data-pipeline: port 80 may not be bound by this user (ports below 1024 need privileges); pass --port\n"
        )
        // a non-loopback --host needs a token or the explicit opt-in before it gets to binding
        const foreign = yield* cli(["run", "--port", "0", "--host", "192.0.2.1", "--allow-unauthenticated"])
        assert.strictEqual(foreign.code, 2, foreign.stdout + foreign.stderr)
        assert.strictEqual(
          foreign.stderr,
          "market-data-pipeline: address 192.0.2.1 is not an address of this machine; pass --host\n"
        )
        assert.strictEqual(privileged.stdout + foreign.stdout, "")
      }),
    { timeout: 60_000 }
  )
})
