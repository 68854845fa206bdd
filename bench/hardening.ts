/**
 * The service under attack, as a real child process on loopback: memory and
 * `/metrics` cost after a flood of long coordinator ids, concurrent scrapes,
 * time to exit on SIGTERM with a silent socket open, and real requests
 * served while idle sockets flood a process limited to 1024 descriptors.
 * Every request loop is bounded; only 127.0.0.1 is contacted.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import * as net from "node:net"
import { table } from "./harness.ts"

const main = new URL("../src/bin/market-data-pipeline.ts", import.meta.url).pathname

interface Service {
  readonly child: ChildProcess
  readonly url: string
  readonly output: () => string
  readonly exited: Promise<number | null>
}

const start = async (args: ReadonlyArray<string>, shell?: string): Promise<Service> => {
  const command = [process.execPath, main, "run", "--port", "0", ...args]
  const child = shell === undefined
    ? spawn(command[0]!, command.slice(1), { stdio: ["ignore", "pipe", "pipe"] })
    : spawn("bash", ["-c", `${shell}; exec "$@"`, "bash", ...command], { stdio: ["ignore", "pipe", "pipe"] })
  let output = ""
  child.stdout!.on("data", (chunk) => (output += chunk))
  child.stderr!.on("data", (chunk) => (output += chunk))
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  const deadline = Date.now() + 20_000
  for (;;) {
    const match = /listening on (http:\/\/[\d.]+:\d+)/.exec(output)
    if (match !== null) return { child, url: match[1]!, output: () => output, exited }
    if (Date.now() > deadline) throw new Error(`service did not start:\n${output}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

const rssMiB = (pid: number): number => {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  return match === null ? NaN : Number(match[1]) / 1024
}

const post = (url: string, body: string) =>
  fetch(`${url}/feedback`, { method: "POST", body, headers: { "content-type": "application/json" } })
    .then((r) => r.text().then(() => r.status), () => 0)

const mib = (n: number) => `${n.toFixed(0)} MiB`

/** 1,024 ids of 60,000 characters, then the largest ids the edge accepts, until it refuses more. */
const memory = async () => {
  const service = await start(["--no-simulated-store"])
  const pid = service.child.pid!
  try {
    const before = rssMiB(pid)
    const statuses = new Map<number, number>()
    for (let i = 0; i < 1024; i++) {
      const id = `${i}-`.padEnd(60_000, "x")
      const status = await post(
        service.url,
        JSON.stringify({ coordinator_id: id, queue_size: 1, capacity: 10, level: "ok" })
      )
      statuses.set(status, (statuses.get(status) ?? 0) + 1)
    }
    // the largest id the edge accepts (128 bytes, escaped characters included), every level, ending at
    // hard so that no slot can be reclaimed, until the table is full and refuses
    let accepted = 0
    for (let i = 0; i < 4096; i++) {
      const id = `${i}"`.padEnd(128, "\\")
      let refused = false
      for (const level of ["ok", "soft", "hard"]) {
        const status = await post(
          service.url,
          JSON.stringify({ coordinator_id: id, queue_size: 1, capacity: 10, level })
        )
        if (status !== 202) refused = true
      }
      if (refused) break
      accepted++
    }
    const after = rssMiB(pid)
    const started = performance.now()
    const scrape = await (await fetch(`${service.url}/metrics`)).text()
    const scrapeMs = performance.now() - started
    const concurrent = await Promise.all(
      Array.from(
        { length: 8 },
        () => fetch(`${service.url}/metrics`).then((r) => r.text().then(() => r.status), () => 0)
      )
    )
    for (let i = 0; i < 100; i++) await (await fetch(`${service.url}/metrics`)).text()
    const afterScrapes = rssMiB(pid)
    table("memory and /metrics after an id flood (npm run bench hardening)", [
      ["measure", "value"],
      ["1,024 ids of 60,000 chars: answers", [...statuses].map(([s, n]) => `${n}× ${s}`).join(", ")],
      ["max-length ids at hard accepted before 429", String(accepted)],
      ["RSS before → after the flood", `${mib(before)} → ${mib(after)}`],
      ["GET /metrics size", `${(Buffer.byteLength(scrape) / 1024).toFixed(0)} KiB`],
      ["GET /metrics time", `${scrapeMs.toFixed(1)} ms`],
      ["8 concurrent scrapes: answers", concurrent.join(" ")],
      ["RSS after 100 more scrapes", mib(afterScrapes)],
      ["process alive", service.child.exitCode === null ? "yes" : "no"]
    ])
  } finally {
    service.child.kill("SIGKILL")
  }
}

/** SIGTERM with a silent socket open: time to exit, and the summary's duration against the signal time. */
const shutdown = async () => {
  const service = await start(["--duration", "0"])
  const { port } = new URL(service.url)
  const silent = net.connect(Number(port), "127.0.0.1")
  silent.on("error", () => {})
  await new Promise((resolve) => silent.once("connect", resolve))
  silent.write("POST /feedback HTTP/1.1\r\nHost: 127.0.0.1\r\n") // half-sent, then silence
  const startedAt = Date.now()
  await new Promise((resolve) => setTimeout(resolve, 4500))
  const signalledAfter = (Date.now() - startedAt) / 1000
  const signalled = performance.now()
  service.child.kill("SIGTERM")
  const code = await Promise.race([
    service.exited,
    new Promise((resolve) => setTimeout(() => resolve("still running"), 30_000))
  ])
  const exitSec = (performance.now() - signalled) / 1000
  service.child.kill("SIGKILL")
  silent.destroy()
  const duration = /duration\s+([\d.]+) s/.exec(service.output())?.[1]
  table("SIGTERM with a half-sent request open (npm run bench hardening)", [
    ["measure", "value"],
    ["exit code", String(code)],
    ["time from SIGTERM to exit", `${exitSec.toFixed(2)} s`],
    ["signal sent after (from the socket's open)", `${signalledAfter.toFixed(1)} s`],
    ["summary duration", duration === undefined ? "no summary" : `${duration} s`]
  ])
}

/** 1,100 idle sockets against a process limited to 1,024 descriptors: are 6 real requests served? */
const idleFlood = async () => {
  const service = await start(["--no-simulated-store"], "ulimit -n 1024")
  const { port } = new URL(service.url)
  const sockets: Array<net.Socket> = []
  try {
    for (let i = 0; i < 1100; i++) {
      const socket = net.connect(Number(port), "127.0.0.1")
      socket.on("error", () => {})
      sockets.push(socket)
    }
    await new Promise((resolve) => setTimeout(resolve, 1000))
    let served = 0
    for (let i = 0; i < 6; i++) {
      const status = await Promise.race([
        post(service.url, JSON.stringify({ coordinator_id: "store", queue_size: 1, capacity: 10, level: "ok" })),
        new Promise<number>((resolve) => setTimeout(() => resolve(0), 3000))
      ])
      if (status === 202) served++
    }
    table("1,100 idle sockets, ulimit -n 1024 (npm run bench hardening)", [
      ["measure", "value"],
      ["real requests served", `${served} of 6`],
      ["process alive", service.child.exitCode === null ? "yes" : "no"]
    ])
  } finally {
    for (const socket of sockets) socket.destroy()
    service.child.kill("SIGKILL")
  }
}

export const run = async (): Promise<void> => {
  await memory()
  await shutdown()
  await idleFlood()
}
