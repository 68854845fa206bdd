/**
 * The service's executable as a child process, for the integration tests:
 * started with arguments and environment, its stdout and stderr collected.
 */
import { type ChildProcess, spawn } from "node:child_process"

/** The executable's source (`npm start` runs it with `run`). */
export const main = new URL("../../src/bin/market-data-pipeline.ts", import.meta.url).pathname

export interface Running {
  readonly child: ChildProcess
  /** stdout and stderr so far, interleaved as they arrived. */
  readonly output: () => string
  /** The exit code once the process has ended and its pipes are closed (null: ended by a signal). */
  readonly exited: Promise<number | null>
}

export interface StartOptions {
  /** Variables added to (or, given as undefined, removed from) this process's environment. */
  readonly env?: Readonly<Record<string, string | undefined>>
  /** A bash line run first, in the same process, before the executable is exec'd (e.g. `ulimit -n 64`). */
  readonly shell?: string | undefined
}

/** Starts `node src/bin/market-data-pipeline.ts ...args`. */
export const start = (args: ReadonlyArray<string>, options: StartOptions = {}): Running => {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries({ ...process.env, ...options.env })) {
    if (value !== undefined) env[key] = value
  }
  const command = [process.execPath, main, ...args]
  const child = options.shell === undefined
    ? spawn(command[0]!, command.slice(1), { env, stdio: ["ignore", "pipe", "pipe"] })
    : spawn("bash", ["-c", `${options.shell}; exec "$@"`, "bash", ...command], {
      env,
      stdio: ["ignore", "pipe", "pipe"]
    })
  let output = ""
  child.stdout!.on("data", (chunk) => (output += chunk))
  child.stderr!.on("data", (chunk) => (output += chunk))
  // "close", not "exit": the output is all read only once the pipes are closed
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
  return { child, output: () => output, exited }
}

/** Polls `f` every 50 ms for up to `seconds`; the child's output is in the failure message. */
export const waitFor = async <A>(
  running: Running,
  seconds: number,
  f: () => Promise<A | undefined> | A | undefined
): Promise<A> => {
  const deadline = Date.now() + seconds * 1000
  while (Date.now() < deadline) {
    const value = await f()
    if (value !== undefined) return value
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`timed out; output so far:\n${running.output()}`)
}
