/**
 * `npm run bench shared`: several processes sharing ONE rate limit through
 * the local Redis (127.0.0.1:6379), side by side with the Node peers
 * (rate-limiter-flexible, bottleneck clustering, Effect's own
 * persistence/RateLimiter Redis store) and the EVALSHA floor.
 *
 * Every case runs in N = 1 and N = 4 real child processes
 * (bench/shared-worker.ts) that connect, warm up and report ready; the parent
 * then tells all of them to start at the same instant and run for 5 s.
 * Throughput: an effectively unlimited limit, 64 acquirers per process,
 * aggregate grants/s. Accuracy: 1000/s with burst 10 (or the library's
 * closest equivalent), 16 waiters per process, grant times (epoch ms, taken
 * after the reply) merged across processes. Each case uses its own key prefix;
 * its keys are deleted when it ends.
 */
import { RateCoordinator } from "market-data-pipeline"
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { createClient } from "redis"
import { formatRate, note, print, table } from "./harness.ts"
import type { CaseId, Mode, ToParent, ToWorker, WorkerConfig } from "./shared-protocol.ts"
import { redisHost, redisPort, redisUrl } from "./shared-protocol.ts"

const seconds = 5
const processCounts = [1, 4] as const
const worker = fileURLToPath(new URL("./shared-worker.ts", import.meta.url))
const runId = `${Date.now().toString(36)}-${process.pid}`

const labels: Record<CaseId, string> = {
  floor: "floor: node-redis 6 EVALSHA `return 1`",
  "rlf-node-redis": "rate-limiter-flexible 11.4 + node-redis 6",
  "rlf-ioredis": "rate-limiter-flexible 11.4 + ioredis 5",
  bottleneck: "bottleneck 2.19.5 clustering (ioredis 5)",
  effect: "Effect 4.1 RateLimiter token-bucket, Redis store",
  ours: "ours: RateCoordinator.layerRedis"
}
const peers: ReadonlyArray<CaseId> = ["rlf-node-redis", "rlf-ioredis", "bottleneck", "effect"]

type Outcome =
  | {
    readonly _tag: "done"
    readonly at: number
    readonly results: ReadonlyArray<Extract<ToParent, { type: "result" }>>
  }
  | { readonly _tag: "skipped" | "failed"; readonly reason: string }

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)))

/** Waits for `condition` (re-checked on every message), or fails after `ms`. */
const waitFor = (children: ReadonlyArray<ChildProcess>, condition: () => boolean, ms: number, what: string) =>
  new Promise<void>((resolve, reject) => {
    const check = () => {
      if (!condition()) return
      clearTimeout(timer)
      for (const child of children) child.off("message", check).off("exit", check)
      resolve()
    }
    const timer = setTimeout(() => {
      for (const child of children) child.off("message", check).off("exit", check)
      reject(new Error(`timed out after ${ms} ms waiting for ${what}`))
    }, ms)
    for (const child of children) child.on("message", check).on("exit", check)
    check()
  })

/** Runs one case in `n` worker processes; always ends with every worker gone. */
const runCase = async (caseId: CaseId, mode: Mode, n: number, token: string): Promise<Outcome> => {
  const concurrency = mode === "throughput" ? 64 : 16
  const config: WorkerConfig = { caseId, mode, token, concurrency, seconds, hardDeadlineMs: 20_000 + seconds * 1000 }
  const children = Array.from(
    { length: n },
    () =>
      spawn(process.execPath, ["--conditions=market-data-pipeline:source", worker, JSON.stringify(config)], {
        // the workers' stdout goes to stderr: with --json, stdout is the JSON document alone
        stdio: ["ignore", 2, "inherit", "ipc"]
      })
  )
  const messages = children.map(() => [] as Array<ToParent>)
  const exited = children.map(() => false)
  children.forEach((child, i) => {
    child.on("message", (message: ToParent) => messages[i]!.push(message))
    child.on("exit", () => (exited[i] = true))
  })
  const last = (i: number) => messages[i]!.at(-1)
  try {
    // every worker connected and warmed up (or gave up)
    await waitFor(children, () => children.every((_, i) => last(i) !== undefined || exited[i]), 15_000, "ready")
    for (let i = 0; i < n; i++) {
      const message = last(i)
      if (message?.type === "skip") return { _tag: "skipped", reason: message.reason }
      if (message?.type === "failed") return { _tag: "failed", reason: message.message }
      if (message?.type !== "ready") return { _tag: "failed", reason: `worker ${i} exited before it was ready` }
    }
    // the common start, after everyone is ready
    const at = Date.now() + 300
    for (const child of children) child.send({ type: "go", at } satisfies ToWorker)
    await waitFor(
      children,
      () => children.every((_, i) => last(i)?.type === "result" || exited[i]),
      seconds * 1000 + 10_000,
      "results"
    )
    const results = messages.map((m) => m.at(-1)).filter((m) => m?.type === "result")
    if (results.length < n) return { _tag: "failed", reason: `${n - results.length} worker(s) reported no result` }
    return { _tag: "done", at, results }
  } catch (cause) {
    return { _tag: "failed", reason: String(cause) }
  } finally {
    // workers exit by themselves; stragglers are ended after a grace period
    await waitFor(children, () => exited.every(Boolean), 3000, "exit").catch(() => {
      children.forEach((child, i) => exited[i] || child.kill("SIGKILL"))
    })
  }
}

// no reconnect loop: without a Redis the suite says so at once instead of waiting
const connect = () =>
  createClient({ url: redisUrl, disableOfflineQueue: true, socket: { reconnectStrategy: false, connectTimeout: 2000 } })
type Client = ReturnType<typeof connect>

/** Deletes every key containing `token` (SCAN + UNLINK), bounded in time; returns how many there were. */
const cleanup = async (client: Client, token: string): Promise<number> => {
  let removed = 0
  const deadline = Date.now() + 5000
  for await (const keys of client.scanIterator({ MATCH: `*${token}*`, COUNT: 1000 })) {
    if (keys.length > 0) removed += await client.unlink(keys)
    if (Date.now() > deadline) break
  }
  return removed
}

const sum = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0)

const accuracyRow = (outcome: Extract<Outcome, { _tag: "done" }>, n: number) => {
  const end = outcome.at + seconds * 1000
  const stamps = outcome.results.flatMap((r) => r.stamps).filter((t) => t >= outcome.at && t < end)
  stamps.sort((a, b) => a - b)
  let maxWindow = 0
  for (let i = 0, j = 0; i < stamps.length; i++) {
    while (j < stamps.length && stamps[j]! < stamps[i]! + 1000) j++
    maxWindow = Math.max(maxWindow, j - i)
  }
  let maxGap = 0
  for (let i = 1; i < stamps.length; i++) maxGap = Math.max(maxGap, stamps[i]! - stamps[i - 1]!)
  const shares = outcome.results.map((r) => stamps.length === 0 ? 0 : r.grants / stamps.length)
  const minShare = Math.min(...shares)
  const maxShare = Math.max(...shares)
  return {
    achieved: (stamps.length / seconds / 1000) * 100,
    maxWindow,
    maxGap,
    share: n === 1
      ? "—"
      : `${minShare.toFixed(3)} / ${maxShare.toFixed(3)} (${(maxShare === 0 ? 0 : minShare / maxShare).toFixed(2)})`
  }
}

const errorsOf = (outcome: Outcome) => outcome._tag === "done" ? sum(outcome.results.map((r) => r.errors)) : 0
const firstErrorOf = (outcome: Outcome) =>
  outcome._tag === "done" ? outcome.results.find((r) => r.firstError !== undefined)?.firstError : undefined

const describeMiss = (outcome: Outcome) => outcome._tag === "done" ? "" : `${outcome._tag}: ${outcome.reason}`

/** redis-benchmark floors, if the tool is on PATH (no keys are touched: EVALSHA of `return 1` and PING). */
const redisBenchmark = async (sha: string): Promise<void> => {
  const run = (args: ReadonlyArray<string>) =>
    new Promise<string>((resolve) => {
      execFile(
        "redis-benchmark",
        ["-h", redisHost, "-p", String(redisPort), "-q", ...args],
        { timeout: 20_000 },
        (error, stdout) => {
          if (error !== null && (error as NodeJS.ErrnoException).code === "ENOENT") return resolve("not on PATH")
          const matches = [...stdout.matchAll(/([\d.]+) requests per second/g)]
          const last = matches.at(-1)?.[1]
          resolve(last === undefined ? `no figure (${error?.message ?? "?"})` : formatRate(Number(last)))
        }
      )
    })
  const rows: Array<readonly [string, string]> = []
  for (
    const [name, args] of [
      ["PING, 50 clients", ["-n", "100000", "-c", "50", "-t", "ping_mbulk"]],
      ["EVALSHA `return 1`, 50 clients", ["-n", "100000", "-c", "50", "EVALSHA", sha, "0"]],
      ["EVALSHA `return 1`, 1 client", ["-n", "20000", "-c", "1", "EVALSHA", sha, "0"]],
      ["EVALSHA `return 1`, 50 clients, -P 16", ["-n", "500000", "-c", "50", "-P", "16", "EVALSHA", sha, "0"]]
    ] as const
  ) {
    const figure = await run(args)
    if (figure === "not on PATH") {
      note("(redis-benchmark is not on PATH: no physical floor)")
      return
    }
    rows.push([name, figure])
  }
  table("redis-benchmark on 127.0.0.1:6379 (physical floors of this run)", [["command", "requests/s"], ...rows])
}

export const run = async (): Promise<void> => {
  const started = performance.now()
  const client = connect()
  client.on("error", () => {})
  try {
    await client.connect()
  } catch (cause) {
    note(`(shared: no Redis at ${redisUrl}: ${String(cause)}; suite skipped)`)
    return
  }
  try {
    const oursMissing = typeof (RateCoordinator as unknown as { readonly layerRedis?: unknown }).layerRedis !==
      "function"
    if (oursMissing) {
      note("(shared: RateCoordinator.layerRedis does not exist yet in this tree; the `ours` case is skipped)")
    }
    const sha = await client.scriptLoad("return 1")
    await redisBenchmark(sha)

    const measure = async (caseId: CaseId, mode: Mode) => {
      const outcomes: Array<Outcome> = []
      let keys = 0
      for (const n of processCounts) {
        if (caseId === "ours" && oursMissing) {
          outcomes.push({ _tag: "skipped", reason: "RateCoordinator.layerRedis missing" })
          continue
        }
        const token = `mdp-bench-shared:${runId}:${caseId}:${mode}:n${n}`
        outcomes.push(await runCase(caseId, mode, n, token))
        keys += await cleanup(client, token)
      }
      return { caseId, outcomes, keys }
    }

    // 1. throughput
    const throughputCases: ReadonlyArray<CaseId> = ["floor", ...peers, "ours"]
    const measured: Array<Awaited<ReturnType<typeof measure>>> = []
    for (const caseId of throughputCases) measured.push(await measure(caseId, "throughput"))
    const rate = (outcome: Outcome | undefined) =>
      outcome?._tag === "done" ? sum(outcome.results.map((r) => r.grants)) / seconds : undefined
    const show = (r: number | undefined) => r === undefined ? "—" : formatRate(r)
    const floor4 = rate(measured[0]!.outcomes[1])
    const ours4 = rate(measured.find((m) => m.caseId === "ours")!.outcomes[1])
    const notes: Array<string> = []
    table(
      `Shared limit through Redis: aggregate grants/s, unlimited bucket, 64 acquirers/process, ${seconds} s, common start`,
      [
        ["limiter", "N=1", "N=4", "N=4 vs floor", "ours ÷ this (N=4)", "errors", "keys deleted"],
        ...measured.map(({ caseId, keys, outcomes }) => {
          const r4 = rate(outcomes[1])
          for (const [k, outcome] of outcomes.entries()) {
            const miss = describeMiss(outcome)
            if (miss !== "" && !(caseId === "ours" && oursMissing)) {
              notes.push(`${labels[caseId]}, N=${processCounts[k]}: ${miss}`)
            }
            const first = firstErrorOf(outcome)
            if (first !== undefined) notes.push(`${labels[caseId]}: first error: ${first}`)
          }
          return [
            labels[caseId],
            show(rate(outcomes[0])),
            show(r4),
            r4 === undefined || floor4 === undefined || floor4 === 0 ? "—" : `${((r4 / floor4) * 100).toFixed(0)}%`,
            r4 === undefined || ours4 === undefined ? "—" : `${(ours4 / r4).toFixed(1)}x`,
            outcomes.map((o) => o._tag === "done" ? String(errorsOf(o)) : "—").join(" / "),
            String(keys)
          ] as const
        })
      ]
    )
    const bestPeer = Math.max(...measured.filter((m) => peers.includes(m.caseId)).map((m) => rate(m.outcomes[1]) ?? 0))
    if (ours4 !== undefined) {
      note(
        `targets (issue 9): N=4 ≥ 500k/s: ${ours4 >= 500_000 ? "met" : "NOT met"} (${formatRate(ours4)}); ` +
          `≥ 10x the best peer (${formatRate(bestPeer)}): ${ours4 >= 10 * bestPeer ? "met" : "NOT met"} ` +
          `(${(ours4 / bestPeer).toFixed(1)}x)`
      )
    }
    for (const text of notes) note(`note: ${text}`)

    // 2. accuracy
    const accuracyCases: ReadonlyArray<CaseId> = [...peers, "ours"]
    const accuracy: Array<Awaited<ReturnType<typeof measure>>> = []
    for (const caseId of accuracyCases) accuracy.push(await measure(caseId, "accuracy"))
    const equivalents: Partial<Record<CaseId, string>> = {
      "rlf-node-redis": "fixed window 1000/1 s + RateLimiterQueue",
      "rlf-ioredis": "fixed window 1000/1 s + RateLimiterQueue",
      bottleneck: "minTime 1 ms (no burst)",
      effect: "token-bucket 10 per 10 ms, delay",
      ours: "capacity 10, refillRate 1000"
    }
    const accuracyNotes: Array<string> = []
    const rows = accuracy.flatMap(({ caseId, outcomes }) =>
      outcomes.map((outcome, k) => {
        const n = processCounts[k]!
        const miss = describeMiss(outcome)
        if (miss !== "" && !(caseId === "ours" && oursMissing)) accuracyNotes.push(`${labels[caseId]}, N=${n}: ${miss}`)
        const first = firstErrorOf(outcome)
        if (first !== undefined) accuracyNotes.push(`${labels[caseId]}, N=${n}: first error: ${first}`)
        if (outcome._tag !== "done") {
          return [labels[caseId], equivalents[caseId] ?? "", String(n), "—", "—", "—", "—", "—"] as const
        }
        const row = accuracyRow(outcome, n)
        return [
          labels[caseId],
          equivalents[caseId] ?? "",
          String(n),
          `${row.achieved.toFixed(1)}%`,
          String(row.maxWindow),
          `${row.maxGap.toFixed(0)} ms`,
          row.share,
          String(errorsOf(outcome))
        ] as const
      })
    )
    table(
      `Shared limit through Redis: accuracy at 1000/s, 16 waiters/process, ${seconds} s ` +
        "(allowed in any 1 s: 1010 with burst 10; 1000 for bottleneck; up to 2000 for a fixed window)",
      [
        ["limiter", "configured as", "N", "achieved", "max in any 1 s", "max gap", "share min / max (ratio)", "errors"],
        ...rows
      ]
    )
    for (const text of accuracyNotes) note(`note: ${text}`)
    note(
      "grant times are taken in each client after the reply: a few ms of scheduling jitter on a busy machine can put" +
        " ~1–2% more grants into a 1 s window than Redis issued"
    )
  } finally {
    await Promise.race([client.close(), sleep(2000)]).catch(() => undefined)
    print(`(shared suite: ${((performance.now() - started) / 1000).toFixed(0)} s)`)
  }
}
