/**
 * `npm run bench`: every benchmark of the project, side by side with the
 * alternatives. Figures are from the real clock of this machine.
 *
 * `npm run bench -- [suite...] [--verbose]`: the named suites only; with
 * `--verbose`, the library's log lines from `info` up (on stderr; the same as
 * `MDP_LOG_LEVEL=info`, which also takes `trace`, `debug`, `warning`, `error`).
 * Without either, no log lines, only the tables.
 */
import * as Console from "./console.ts"
import * as Contracts from "./contracts.ts"
import * as Feedback from "./feedback.ts"
import * as Hardening from "./hardening.ts"
import { logLevel } from "./harness.ts"
import * as Pulse from "./pulse.ts"
import * as Rate from "./rate.ts"
import * as Shared from "./shared.ts"

const suites: Record<string, () => void | Promise<void>> = {
  contracts: Contracts.run,
  rate: Rate.run,
  feedback: Feedback.run,
  hardening: Hardening.run,
  shared: Shared.run,
  pulse: Pulse.run,
  console: Console.run
}

const refuse = (message: string): never => {
  process.stderr.write(`bench: ${message}\n`)
  return process.exit(2)
}

const args = process.argv.slice(2)
// the worker processes of `shared` inherit the level through the environment
if (args.includes("--verbose")) process.env.MDP_LOG_LEVEL ??= "info"
try {
  logLevel()
} catch (error) {
  refuse((error as Error).message)
}
const only = args.filter((arg) => arg !== "--verbose")
for (const arg of only) {
  if (!(arg in suites)) {
    refuse(`unknown suite or option ${JSON.stringify(arg)}: ${Object.keys(suites).join(", ")}, --verbose`)
  }
}

console.log(`node ${process.version}, ${new Date().toISOString()}`)
for (const [name, run] of Object.entries(suites)) {
  if (only.length === 0 || only.includes(name)) await run()
}
