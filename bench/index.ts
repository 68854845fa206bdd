/**
 * `npm run bench`: every benchmark of the project, side by side with the
 * alternatives. Figures are from the real clock of this machine.
 */
import * as Contracts from "./contracts.ts"
import * as Feedback from "./feedback.ts"
import * as Hardening from "./hardening.ts"
import * as Pulse from "./pulse.ts"
import * as Rate from "./rate.ts"
import * as Shared from "./shared.ts"

console.log(`node ${process.version}, ${new Date().toISOString()}`)
const only = process.argv[2]
const suites: Record<string, () => void | Promise<void>> = {
  contracts: Contracts.run,
  rate: Rate.run,
  feedback: Feedback.run,
  hardening: Hardening.run,
  shared: Shared.run,
  pulse: Pulse.run
}
for (const [name, run] of Object.entries(suites)) {
  if (only === undefined || only === name) await run()
}
