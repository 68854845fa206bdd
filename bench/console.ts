/**
 * The live console's cost: pacing accuracy on the real clock (capacity 1,
 * 1000/s, 10 fibers, 3 s, as in `rate`) of a provider of a real service
 * (the runtime and the HTTP API on an ephemeral port, in this process) with
 * no console open and with 20 consoles reading `/console/events`: in a
 * child process (the server's own cost, as with 20 browsers), and in this
 * process (their reading and parsing counts against the pacing too: a worse
 * case). Rounds alternate, so a machine's drift shows between them.
 */
import { ConfigProvider, Context, Effect, Exit, Layer, Scope } from "effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import { PipelineMetrics, RateCoordinator, UnifiedRuntime } from "market-data-pipeline"
import { spawn } from "node:child_process"
import * as HttpApi from "../src/service/HttpApi.ts"
import * as HttpServerNode from "../src/service/HttpServerNode.ts"
import { runPromise, runSync, table } from "./harness.ts"

const seconds = 3

interface Client {
  readonly stop: () => void
  readonly events: () => number
}

/** A console: reads the event stream and counts its snapshots, as a page would parse them. */
const openClient = async (url: string): Promise<Client> => {
  const controller = new AbortController()
  const response = await fetch(`${url}/console/events`, { signal: controller.signal })
  if (response.status !== 200) throw new Error(`console refused: ${response.status}`)
  let events = 0
  let pending = ""
  const decoder = new TextDecoder()
  void (async () => {
    try {
      for await (const chunk of response.body!) {
        pending += decoder.decode(chunk as Uint8Array, { stream: true })
        let end: number
        while ((end = pending.indexOf("\n\n")) >= 0) {
          const message = pending.slice(0, end)
          pending = pending.slice(end + 2)
          if (message.startsWith("data: ")) {
            JSON.parse(message.slice(6))
            events++
          }
        }
      }
    } catch {
      // aborted
    }
  })()
  return { stop: () => controller.abort(), events: () => events }
}

/** `count` consoles in a child process; `stop` resolves to the snapshots they received. */
const openRemote = async (url: string, count: number): Promise<{ readonly stop: () => Promise<number> }> => {
  const script = `
    let events = 0, open = 0
    for (let i = 0; i < ${count}; i++) fetch(${JSON.stringify(`${url}/console/events`)}).then(async (r) => {
      if (++open === ${count}) process.stdout.write("open\\n")
      const decoder = new TextDecoder()
      for await (const chunk of r.body) events += decoder.decode(chunk).split("data: ").length - 1
    })
    process.stdin.on("end", () => { process.stdout.write(events + "\\n"); process.exit(0) })
    process.stdin.resume()`
  const child = spawn(process.execPath, ["-e", script], { stdio: ["pipe", "pipe", "inherit"] })
  let out = ""
  child.stdout.on("data", (chunk) => (out += chunk))
  while (!out.includes("open\n")) await new Promise((resolve) => setTimeout(resolve, 20))
  return {
    stop: () =>
      new Promise((resolve) => {
        child.on("close", () => resolve(Number(out.split("\n")[1])))
        child.stdin.end()
      })
  }
}

export const run = async (): Promise<void> => {
  const scope = runSync(Scope.make())
  const context = await runPromise(Layer.buildWithScope(
    HttpRouter.serve(HttpApi.routes(), { disableLogger: true, disableListenLog: true }).pipe(
      Layer.provideMerge(HttpServerNode.layer({ port: 0, host: "127.0.0.1" })),
      Layer.provideMerge(PipelineMetrics.isolated(UnifiedRuntime.layer)),
      Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnvRecord({})))
    ),
    scope
  ))
  const address = Context.get(context, HttpServer.HttpServer).address
  const url = `http://127.0.0.1:${address._tag === "UnixPathAddress" ? 0 : address.port}`
  const coordinator = Context.get(context, RateCoordinator)
  // the paced provider is one the console shows (every provider of the coordinator is)
  await runPromise(coordinator.registerProvider("p", { capacity: 1, refillRate: 1000 }))

  const pace = async () => {
    const grants: Array<number> = []
    const start = performance.now()
    const worker = Effect.gen(function*() {
      while (performance.now() - start < seconds * 1000) {
        yield* coordinator.acquire("p")
        grants.push(performance.now() - start)
      }
    })
    await runPromise(
      Effect.forEach(Array.from({ length: 10 }), () => worker, { concurrency: "unbounded", discard: true })
    )
    const steady = grants.filter((t) => t > 100).length / (seconds - 0.1)
    let gap = 0
    for (let i = 1; i < grants.length; i++) gap = Math.max(gap, grants[i]! - grants[i - 1]!)
    return { steady, gap }
  }

  const rows: Array<[string, string, string, string, string]> = [
    ["consoles open", "achieved", "of configured", "max gap between grants", "snapshots per console per s"]
  ]
  const row = (name: string, result: { steady: number; gap: number }, perSecond: string) =>
    rows.push([
      name,
      `${result.steady.toFixed(0)}/s`,
      `${(result.steady / 10).toFixed(2)}%`,
      `${result.gap.toFixed(2)} ms`,
      perSecond
    ])
  const settle = () => new Promise((resolve) => setTimeout(resolve, 300))
  for (let round = 0; round < 3; round++) {
    row("none", await pace(), "-")
    await settle()

    const remote = await openRemote(url, 20)
    const opened = performance.now()
    await settle()
    const remoteResult = await pace()
    const events = await remote.stop()
    // per console, over the whole time it was open, less the history and the replayed snapshot
    const perSecond = (events / 20 - 2) / ((performance.now() - opened) / 1000)
    row("20, another process", remoteResult, perSecond.toFixed(2))
    await settle()

    const clients = await Promise.all(Array.from({ length: 20 }, () => openClient(url)))
    await settle()
    const before = clients.map((client) => client.events())
    const local = await pace()
    const received = clients.map((client, i) => client.events() - before[i]!)
    for (const client of clients) client.stop()
    row("20, this process", local, (Math.min(...received) / seconds).toFixed(2))
    await settle()
  }
  table(
    `Live console: pacing of a served provider (capacity 1, 1000/s, 10 fibers, ${seconds} s) with 0 and 20 consoles`,
    rows
  )
  await runPromise(Scope.close(scope, Exit.void))
}
