import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { copyFileSync, existsSync, mkdirSync } from "node:fs"
import { chromium } from "playwright-core"
import * as ConsolePage from "../../src/service/console/page.ts"
import { type Running, start, waitFor } from "../helpers/cli.ts"

const output = new URL("../output/", import.meta.url).pathname
const docs = new URL("../../docs/", import.meta.url).pathname
const CHROMIUM = "/usr/bin/chromium"

/** What the page's functions use of the browser's globals (the tests are typed without the DOM). */
interface Browser {
  readonly document: { readonly querySelector: (selector: string) => { readonly textContent: string | null } | null }
}

/** The real CLI on an ephemeral port, feedback only over HTTP. */
const serve = (env: Record<string, string> = {}): Running =>
  start(["run", "--port", "0", "--no-simulated-store", "--duration", "120"], { env })

/** The address from its start line. */
const address = (running: Running) =>
  waitFor(running, 30, () => running.output().match(/listening on (http:\/\/[\d.]+:\d+)/)?.[1])

const post = (url: string, body: object, token?: string) =>
  fetch(`${url}/feedback`, {
    method: "POST",
    body: JSON.stringify(body),
    headers: {
      "content-type": "application/json",
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` })
    }
  }).then((response) => response.status)

const level = (coordinator_id: string, value: "ok" | "soft" | "hard", queue_size: number) => ({
  coordinator_id,
  level: value,
  queue_size,
  capacity: 1000
})

describe("the live console", () => {
  it("its assets name no external address (no CDN, nothing fetched from elsewhere)", () => {
    for (const asset of [ConsolePage.html, ConsolePage.css, ConsolePage.js]) {
      assert.notMatch(asset, /https?:\/\//i)
      assert.notMatch(asset, /\/\/[a-z0-9-]+\.[a-z]/i) // no protocol-relative //host either
    }
  })

  it("its script parses (it is a string here: nothing else would catch a quoting slip before a browser)", () => {
    assert.doesNotThrow(() => new Function(ConsolePage.js))
  })

  it.live(
    "with a token set: the read-only views need none, the page holds none, changes still do",
    () =>
      Effect.promise(async () => {
        const token = "c0nsole-s3cret-token"
        const running = serve({ MDP_HTTP_TOKEN: token })
        try {
          const url = await address(running)
          for (const path of ["/", "/console/app.js", "/console/app.css", "/console/snapshot"]) {
            const response = await fetch(`${url}${path}`)
            assert.strictEqual(response.status, 200, path)
            assert.notInclude(await response.text(), token, path)
          }
          const events = await fetch(`${url}/console/events`)
          assert.strictEqual(events.status, 200)
          assert.match(events.headers.get("content-type") ?? "", /^text\/event-stream/)
          const reader = events.body!.getReader()
          let text = ""
          while (!text.includes("\ndata: {\"ts\"") && !text.startsWith("data: {\"ts\"")) {
            const chunk = await reader.read()
            if (chunk.done) break
            text += new TextDecoder().decode(chunk.value)
          }
          await reader.cancel()
          assert.include(text, "retry: ")
          assert.include(text, "event: history")
          assert.notInclude(text, token)
          assert.strictEqual(await post(url, level("bars-coord", "hard", 900)), 401)
          // the refusal shows on the console
          const snapshot = await (await fetch(`${url}/console/snapshot`)).json() as {
            rejections: Array<{ status: number; reason: string }>
          }
          assert.deepInclude(snapshot.rejections.map((r) => [r.status, r.reason]), [401, "unauthorized"])
          // the page's own protections: nothing but its own script, style and stream
          const page = await fetch(`${url}/`)
          assert.include(page.headers.get("content-security-policy") ?? "", "default-src 'none'")
        } finally {
          running.child.kill("SIGKILL")
        }
      }),
    { timeout: 60_000 }
  )

  it.live(
    "in headless Chromium: the provider row, a hard POSTed to /feedback within a second, ok restoring it",
    () =>
      Effect.promise(async () => {
        assert.isTrue(existsSync(CHROMIUM), `${CHROMIUM} is missing (apt-get install chromium; .ci/run does)`)
        const running = serve()
        const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] })
        try {
          const url = await address(running)
          const page = await browser.newPage({ viewport: { width: 1180, height: 600 } })
          const errors: Array<string> = []
          page.on("pageerror", (error) => errors.push(error.message))
          page.on("console", (message) => {
            if (message.type() === "error") errors.push(message.text())
          })
          await page.goto(`${url}/`)
          const cell = (row: string, field: string) => `${row} td[data-field="${field}"]`
          const provider = "tr[data-provider=\"ibkr\"]"
          const coordinator = "tr[data-coordinator=\"bars-coord\"]"
          await page.waitForSelector(provider, { timeout: 10_000 }).catch((error: Error) => {
            throw new Error(`${error.message}\npage errors: ${errors.join("; ")}`)
          })
          assert.strictEqual(await page.textContent(cell(provider, "level")), "ok")
          assert.strictEqual(await page.textContent("#connection"), "live")

          // something to look at: a second coordinator at soft, a refused body at the edge
          assert.strictEqual(await post(url, level("ticks-coord", "soft", 610)), 202)
          assert.strictEqual(await post(url, { level: "loud" }), 400)

          // the element's whole text: "0" is not met by "0.5"
          const shows = (selector: string, expected: string, timeout = 1000) =>
            page.waitForFunction(
              ([selector, expected]) =>
                (globalThis as unknown as Browser).document.querySelector(selector!)?.textContent === expected,
              [selector, expected] as const,
              { timeout, polling: 50 }
            )
          // what there is to see before the change, whenever it arrives
          const ticks = "tr[data-coordinator=\"ticks-coord\"]"
          await shows(cell(ticks, "level"), "soft", 10_000)
          await shows("#rejections tr:first-child td:nth-child(3)", "invalid_event", 10_000)
          await shows("#rejections tr:first-child td:nth-child(4)", "POST /feedback", 10_000)
          assert.strictEqual(await post(url, level("bars-coord", "hard", 990)), 202)
          // within a second of the 202: a snapshot every 500 ms, and the handler applying the level
          await Promise.all([
            shows(cell(provider, "level"), "hard"),
            shows(cell(provider, "scale"), "0"),
            shows(cell(coordinator, "holding"), "holds ibkr down — worst of 2 coordinators: hard")
          ])
          assert.strictEqual(await page.textContent(cell(provider, "scale")), "0")
          assert.strictEqual(await page.textContent(cell(coordinator, "queue")), "990 / 1000")
          await shows("#health", "degraded")
          await page.waitForFunction(
            () =>
              (globalThis as unknown as Browser).document.querySelector("#reasons")?.textContent?.includes(
                "bars-coord"
              ) === true,
            undefined,
            { timeout: 1000, polling: 50 }
          )
          mkdirSync(output, { recursive: true })
          await page.screenshot({ path: `${output}console.png`, fullPage: true })
          if (process.env.UPDATE_SCREENSHOT === "1") {
            mkdirSync(docs, { recursive: true })
            copyFileSync(`${output}console.png`, `${docs}console.png`)
          }

          assert.strictEqual(await post(url, level("bars-coord", "ok", 20)), 202)
          assert.strictEqual(await post(url, level("ticks-coord", "ok", 30)), 202)
          await Promise.all([
            shows(cell(provider, "level"), "ok"),
            shows(cell(provider, "scale"), "1"),
            shows(cell(coordinator, "holding"), "no")
          ])
          await shows("#health", "healthy")
          assert.deepStrictEqual(errors, [])

          // an open console does not hold the service's shutdown (it exits, and cleanly)
          running.child.kill("SIGINT")
          assert.strictEqual(await running.exited, 0)
          // and the page says so, then waits for the service to come back
          await shows("#connection", "reconnecting…", 10_000)
        } finally {
          await browser.close()
          running.child.kill("SIGKILL")
        }
      }),
    { timeout: 90_000 }
  )
})
