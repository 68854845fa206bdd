/**
 * Child processes running test/rate/shared/worker.ts, each a pipeline
 * process with its own shared coordinator, driven over IPC.
 */
import { Effect } from "effect"
import type * as Scope from "effect/Scope"
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import type { Reply, Request, WorkerConfig } from "./worker.ts"

const script = fileURLToPath(new URL("./worker.ts", import.meta.url))

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never
type ReplyTo<T extends Request["type"]> = Extract<Reply, { readonly type: T }>

export interface Worker {
  readonly pid: number
  /** Sends a request and waits (at most `timeoutMs`) for its answer. */
  readonly request: <R extends DistributiveOmit<Request, "id">>(
    request: R,
    timeoutMs?: number
  ) => Promise<ReplyTo<R["type"]>>
  /** What the process wrote on stdout and stderr, for failure messages. */
  readonly output: () => string
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const start = (config: WorkerConfig): Promise<{ readonly worker: Worker; readonly child: ChildProcess }> =>
  new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--conditions=market-data-pipeline:source", script, JSON.stringify(config)],
      { stdio: ["ignore", "pipe", "pipe", "ipc"] }
    )
    const output: Array<string> = []
    child.stdout!.on("data", (data) => output.push(String(data)))
    child.stderr!.on("data", (data) => output.push(String(data)))
    let nextId = 0
    const waiting = new Map<number, (reply: Reply) => void>()
    const timer = setTimeout(() => {
      reject(new Error(`worker not ready within 20 s: ${output.join("")}`))
    }, 20_000)
    child.on("exit", (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`worker exited (${code ?? signal}) before it was ready: ${output.join("")}`))
      for (const [, answer] of waiting) answer({ id: -1, type: "error", error: `worker exited (${code ?? signal})` })
      waiting.clear()
    })
    const worker: Worker = {
      pid: child.pid ?? -1,
      output: () => output.join(""),
      request: (request, timeoutMs = 15_000) =>
        new Promise((resolveReply, rejectReply) => {
          const id = nextId++
          const timeout = setTimeout(() => {
            waiting.delete(id)
            rejectReply(new Error(`worker ${child.pid}: no answer to ${request.type} in ${timeoutMs} ms`))
          }, timeoutMs)
          waiting.set(id, (reply) => {
            clearTimeout(timeout)
            if (reply.type === "error") {
              rejectReply(new Error(`worker ${child.pid}: ${request.type} failed: ${reply.error}\n${output.join("")}`))
            } else resolveReply(reply as never)
          })
          child.send({ ...request, id })
        })
    }
    child.on("message", (reply: Reply) => {
      if (reply.type === "ready") {
        clearTimeout(timer)
        resolve({ worker, child })
      } else if (reply.type === "fatal") {
        clearTimeout(timer)
        reject(new Error(`worker failed to start: ${reply.error}\n${output.join("")}`))
      } else {
        const answer = waiting.get(reply.id)
        waiting.delete(reply.id)
        answer?.(reply)
      }
    })
  })

const stop = async (worker: Worker, child: ChildProcess): Promise<void> => {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  // closes its coordinator (releases, unsubscribes) and exits; killed if it does not in time
  await Promise.race([worker.request({ type: "close" }, 5000).catch(() => undefined), sleep(5000)])
  await Promise.race([exited, sleep(2000)])
  if (child.exitCode === null && child.signalCode === null) {
    child.kill("SIGKILL")
    await Promise.race([exited, sleep(2000)])
  }
}

/** Starts `n` workers in parallel, ready (registered); the scope's end closes them. */
export const workers = (n: number, config: WorkerConfig): Effect.Effect<ReadonlyArray<Worker>, never, Scope.Scope> =>
  Effect.forEach(
    Array.from({ length: n }),
    () =>
      Effect.acquireRelease(
        Effect.promise(() => start(config)),
        ({ child, worker }) => Effect.promise(() => stop(worker, child))
      ),
    { concurrency: "unbounded" }
  ).pipe(Effect.map((started) => started.map(({ worker }) => worker)))

/** Runs a request in every worker at once. */
export const all = <R extends DistributiveOmit<Request, "id">>(
  ws: ReadonlyArray<Worker>,
  request: R,
  timeoutMs?: number
) => Effect.promise(() => Promise.all(ws.map((w) => w.request(request, timeoutMs))))
