import * as LogLevel from "effect/LogLevel"
import * as Result from "effect/Result"
import { defaultServerConditions } from "vite"
import { defineConfig } from "vitest/config"
import * as Logging from "./src/service/Logging.ts"

// Tests import the package by its name and run its TypeScript sources.
const conditions = ["market-data-pipeline:source", ...defaultServerConditions]

// The library logs through Effect's logger, and so do the tests' stacks: its lines are not
// printed unless asked for with MDP_LOG_LEVEL (`MDP_LOG_LEVEL=info npm test`), then from that level.
// The code under test keeps its own minimum (Effect's default is Info).
const shown = Logging.parseLevel(process.env.MDP_LOG_LEVEL ?? "none")
if (Result.isFailure(shown)) throw new Error(shown.failure.message)
const minimum = shown.success

// a line of Effect's default logger: "[09:51:50.949] INFO (#241): registered provider p"
const logLine = /^\[\d\d:\d\d:\d\d\.\d{3}\] (TRACE|DEBUG|INFO|WARN|ERROR|FATAL) \(#\d+\)/
const levelOf: Record<string, LogLevel.LogLevel> = {
  TRACE: "Trace",
  DEBUG: "Debug",
  INFO: "Info",
  WARN: "Warn",
  ERROR: "Error",
  FATAL: "Fatal"
}

/**
 * Whether vitest prints a chunk of console output. It groups the writes of one tick into a
 * chunk and can only print or drop it whole: a chunk is dropped when all its lines belong to
 * log entries below the minimum (an entry's later lines, such as a failure's cause, with it).
 */
const printed = (chunk: string): boolean => {
  let hidden: boolean | undefined // of the entry the line belongs to; undefined: not a log entry
  for (const line of chunk.split("\n")) {
    const match = logLine.exec(line)
    if (match !== null) hidden = LogLevel.isLessThan(levelOf[match[1]!]!, minimum)
    if (hidden !== true && (match !== null || line !== "")) return true
  }
  return false
}

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    onConsoleLog: (chunk) => printed(chunk)
  }
})
