/**
 * The executable's program and its exit codes, so that the file in `bin/`
 * only launches it.
 *
 * - {@link program}: the command line, with every expected failure turned
 *   into one line on stderr and an exit code (no stack trace);
 * - {@link layer}: everything the program runs on, provided in one place
 *   ({@link runnable});
 * - {@link exitCode}: what the process exits with;
 * - {@link main}: runs it on Node, a second SIGINT/SIGTERM exiting at once.
 *
 * | exit | when |
 * |---|---|
 * | 0 | the run ended (`--duration`, or a first SIGINT/SIGTERM: a clean stop) |
 * | 1 | an output file (`--chart`, `--timeline`) could not be written, or the run failed |
 * | 2 | a setting or the command line was refused before anything started |
 * | 130 / 143 | a second SIGINT / SIGTERM while stopping |
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Cause from "effect/Cause"
import * as CliConfig from "effect/cli/CliConfig"
import * as CliOutput from "effect/cli/CliOutput"
import * as Command from "effect/cli/Command"
import * as GlobalFlag from "effect/cli/GlobalFlag"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import { version } from "../version.ts"
import * as Cli from "./Cli.ts"
import * as Logging from "./Logging.ts"

/**
 * A refused setting or command line.
 *
 * @since 0.1.0
 * @category exit codes
 */
export const REFUSED = 2

/**
 * The command line run from the process's arguments. It never fails: a
 * refused setting (`InvalidSetting`, `StartupError`, a setting source that
 * cannot be read) is printed as one line on stderr and gives
 * {@link REFUSED}; a parse error was already printed by `Cli.presenter` and
 * gives {@link REFUSED} too (help shown because no command was given gives
 * 0); an output file that could not be written was
 * reported by the run and gives 1; any other failure is printed as one line
 * and gives 1. Defects are left to the runtime's reporting.
 *
 * @since 0.1.0
 * @category program
 */
export const program: Effect.Effect<number, never, Command.Environment> = Command.run(Cli.command, { version }).pipe(
  Effect.as(0),
  Effect.catch((error) => {
    // printed by Cli.presenter; help without errors (no command given) is not a failure
    if (Cli.isCliError(error)) {
      return Effect.succeed(error._tag === "ShowHelp" && error.errors.length === 0 ? 0 : REFUSED)
    }
    if (error._tag === "OutputFileError") return Effect.succeed(1)
    const refused = error._tag === "InvalidSetting" || error._tag === "StartupError" || error._tag === "ConfigError"
    return Effect.as(Console.error(`market-data-pipeline: ${error.message}`), refused ? REFUSED : 1)
  })
)

/**
 * What the program runs on: Node's services, the CLI's presenter, and of the
 * CLI's built-in global flags only `--help` and `--version`. Its
 * `--log-level` would be a second setting for what `--log-level` /
 * `MDP_LOG_LEVEL` (`Logging.level`, a flag of `run`) already sets, with
 * other names and other errors; `--wizard` and `--completions` are not
 * offered.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Command.Environment> = Layer.mergeAll(
  NodeServices.layer,
  CliOutput.layerPresenter(Cli.presenter),
  CliConfig.layer({ builtIns: [GlobalFlag.Help, GlobalFlag.Version] })
)

/**
 * The program with its layers provided: the one place they are. Log lines
 * go to stderr; `run` reads their level (`--log-level`, `MDP_LOG_LEVEL`)
 * with its other settings and runs at it (a value that names no level is
 * refused like any other setting). What the program could not handle (a
 * defect) is reported here, where log lines go, rather than by `runMain`,
 * and whatever the level: it is why the exit code is 1.
 *
 * @since 0.1.0
 * @category program
 */
export const runnable: Effect.Effect<number> = program.pipe(
  Effect.tapCause((cause) => Cause.hasInterruptsOnly(cause) ? Effect.void : Effect.logError(cause)),
  Effect.provide(layer),
  Effect.provide(Logging.layer())
)

/**
 * The process's exit code for how the program ended. An interruption is
 * the clean stop on a first SIGINT/SIGTERM, unless the run had to report an
 * output file it could not write (`outputFailed`: the run sets
 * `process.exitCode` to 1 then, since a signal can end it before its result
 * is returned).
 *
 * @since 0.1.0
 * @category exit codes
 */
export const exitCode = (exit: Exit.Exit<unknown, unknown>, outputFailed: boolean = process.exitCode === 1): number =>
  Exit.isSuccess(exit)
    ? (typeof exit.value !== "number" || (exit.value === 0 && outputFailed) ? Number(outputFailed) : exit.value)
    : Cause.hasInterruptsOnly(exit.cause)
    ? (outputFailed ? 1 : 0)
    : 1

/**
 * Runs {@link runnable} on Node. The first SIGINT/SIGTERM interrupts the
 * run (NodeRuntime): the loop stops, the summary prints, the server drains
 * briefly. A second one exits at once with 130 (SIGINT) or 143 (SIGTERM).
 *
 * @since 0.1.0
 * @category program
 */
export const main = (): void => {
  let signals = 0
  const force = (signal: NodeJS.Signals) => {
    if (++signals === 2) process.exit(signal === "SIGINT" ? 130 : 143)
  }
  process.on("SIGINT", force)
  process.on("SIGTERM", force)
  NodeRuntime.runMain(runnable, { disableErrorReporting: true, teardown: (exit, onExit) => onExit(exitCode(exit)) })
}
