#!/usr/bin/env node
/**
 * The `market-data-pipeline` executable (`npm start` runs `run`).
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Cause from "effect/Cause"
import * as Command from "effect/cli/Command"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { command } from "../service/Cli.ts"
import { version } from "../version.ts"

// The first SIGINT/SIGTERM interrupts the run (NodeRuntime): the loop stops,
// the summary prints, the server drains briefly. A second one exits at once.
let signals = 0
const force = (signal: NodeJS.Signals) => {
  if (++signals === 2) process.exit(signal === "SIGINT" ? 130 : 143)
}
process.on("SIGINT", force)
process.on("SIGTERM", force)

// a setting refused before anything started: one line, exit code 2
let refused = false

command.pipe(
  Command.run({ version }),
  Effect.catchTag("StartupError", (error) =>
    Effect.sync(() => {
      refused = true
      process.stderr.write(`market-data-pipeline: ${error.message}\n`)
    })),
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain({
    // SIGINT/SIGTERM interrupt the run, which then prints its summary: a clean stop, unless
    // the report could not write a file (the run sets exitCode 1 then)
    teardown: (exit, onExit) =>
      onExit(
        refused
          ? 2
          : (Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause)) && process.exitCode !== 1
          ? 0
          : 1
      )
  })
)
