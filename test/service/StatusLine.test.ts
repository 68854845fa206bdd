import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync, spawnSync } from "node:child_process"

// The status line is redrawn in place with `\r` every 250 ms: if it is wider than the terminal it
// wraps, and every redraw then starts a new screen line. Only a real terminal shows this, so the
// CLI runs in a tmux pane of 80 columns and the test reads the screen.

const main = new URL("../../src/bin/market-data-pipeline.ts", import.meta.url).pathname
const tmuxInstalled = spawnSync("tmux", ["-V"]).status === 0
const socket = `mdp-status-${process.pid}`
const tmux = (...args: ReadonlyArray<string>) =>
  execFileSync("tmux", ["-L", socket, "-f", "/dev/null", ...args], { encoding: "utf8" })
const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`

describe("the status line in a real terminal", () => {
  if (!tmuxInstalled) {
    it.skip("SKIPPED: tmux is not installed (apt-get install tmux): the 80-column status line is not checked", () => {})
  }

  it.live.skipIf(!tmuxInstalled)(
    "at 80 columns it stays on one screen line for the whole run",
    () =>
      Effect.promise(async () => {
        const command = [process.execPath, main, "run", "--duration", "13.5", "--port", "0"].map(quote).join(" ")
        // the pane stays after the run, so the screen can be read
        tmux("new-session", "-d", "-s", "status", "-x", "80", "-y", "24", `${command}; echo "exit $?"; sleep 120`)
        try {
          let screen = ""
          const deadline = Date.now() + 60_000
          while (Date.now() < deadline && !/^exit \d+$/m.test(screen)) {
            await new Promise((resolve) => setTimeout(resolve, 200))
            screen = tmux("capture-pane", "-p", "-t", "status")
          }
          assert.match(screen, /^exit 0$/m, screen)
          assert.strictEqual(tmux("display-message", "-p", "-t", "status", "#{pane_width}").trim(), "80")
          const rows = screen.split("\n")
          const status = rows.filter((row) => row.startsWith("t="))
          // one line, redrawn in place (a wrapped one would leave a new row per redraw)
          assert.lengthOf(status, 1, screen)
          assert.isAtMost(status[0]!.trimEnd().length, 79, screen)
          // the last redraw, near the end of the 13.5 s run: the widest line the demo shows, four-digit
          // counts, soft while the sink stalls (12 s to 15 s), with what matters
          assert.match(status[0]!, /^t=13\.\d+s rate \d+\.\d\/s .*(soft|hard) queue \d+\/1000 .*stall/, screen)
          // the summary follows on its own lines
          const summary = rows.findIndex((row) => row === "summary")
          assert.isAbove(summary, rows.indexOf(status[0]!), screen)
        } finally {
          spawnSync("tmux", ["-L", socket, "kill-server"])
        }
      }),
    { timeout: 90_000 }
  )
})
