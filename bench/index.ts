/**
 * `npm run bench`: every benchmark of the project, side by side with the
 * alternatives. Figures are from the real clock of this machine.
 *
 * `npm run bench -- [suite...] [--verbose] [--json]`: the named suites only;
 * with `--verbose`, the library's log lines from `info` up (on stderr; the
 * same as `MDP_LOG_LEVEL=info`, which also takes `trace`, `debug`, `warning`,
 * `error`). Without either, no log lines, only the tables, and at the end the
 * summary "market-data-pipeline vs alternatives": every target, its ratio,
 * ✓ or ✗. With `--json`, stdout is only the JSON document of the run (the
 * machine and every row, see bench/report.ts), the tables go to stderr;
 * `npx node bench/readme.ts FILE` writes it into docs/performance.md.
 */
import * as Console from "./console.ts"
import * as Contracts from "./contracts.ts"
import * as Feedback from "./feedback.ts"
import * as Hardening from "./hardening.ts"
import { beginSuite, logLevel, machine, print, recorded, recordedNotes, setJsonMode } from "./harness.ts"
import * as Pulse from "./pulse.ts"
import * as Rate from "./rate.ts"
import { type BenchDocument, machineLine, renderText, summaryCells, summaryTitle, targetCount } from "./report.ts"
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
const json = args.includes("--json")
const only = args.filter((arg) => arg !== "--verbose" && arg !== "--json")
for (const arg of only) {
  if (!(arg in suites)) {
    refuse(`unknown suite or option ${JSON.stringify(arg)}: ${Object.keys(suites).join(", ")}, --verbose, --json`)
  }
}

setJsonMode(json)
if (json) {
  // anything else printed in this process (a dependency's warning) must not break the document
  console.log = (...line: Array<unknown>) => print(...line)
}
const host = machine()
print(machineLine(host))
const selected = Object.keys(suites).filter((name) => only.length === 0 || only.includes(name))
for (const name of selected) {
  beginSuite(name)
  await suites[name]!()
}

const rows = recorded()
const { met, total } = targetCount(rows)
print(renderText(`${summaryTitle}: ${met} of ${total} targets met (${machineLine(host)})`, summaryCells(rows)))
if (json) {
  const doc: BenchDocument = {
    format: "market-data-pipeline/bench@1",
    command: `npm run bench --${only.map((name) => ` ${name}`).join("")} --json`,
    machine: host,
    suites: selected,
    rows,
    notes: recordedNotes()
  }
  process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`)
}
