/**
 * The documentation's code runs: every ```ts block of the repository's
 * Markdown files is typechecked with the project's compiler options and run
 * with Node on the sources (`--conditions=market-data-pipeline:source`), and
 * the lines a block shows as output (`// → text`) must be what it prints, in
 * order. A block marked ```ts no-run is only typechecked (a deliberate
 * fragment; none is today).
 *
 * The curl sequences of a Markdown file (```sh blocks made only of curl
 * commands) run, in order, against the real service started as the file says
 * (`run --no-simulated-store`, on a free port instead of 9108), and each
 * command prints exactly the `# → text` lines that follow it.
 *
 * Every block of the Markdown files names its language: a block showing a terminal
 * (`$ command` lines, each followed by what it prints) is ```console, with a
 * mode the test knows:
 * - ```console stderr exit=N: each command runs (`sh -c`, at the repository's
 *   root, a clean MDP_* environment), exits with N, prints exactly the lines
 *   shown on stderr and nothing on stdout but npm's own banner;
 * - ```console transcript: a long run, shown once; its command runs for 3 s
 *   (`MDP_DURATION=3`, a free port) and every line shown must be in the real
 *   output, in order, with only the clock, the port and the summary's
 *   figures allowed to differ (the summary's lines are exactly the real
 *   ones, label by label); its status line must be what `formatStatus`
 *   renders at 80 columns.
 * The ```sh blocks that are not curl sequences are commands to type, with no
 * line of output shown, except the "two terminals" shared-bucket demo, which
 * runs on the machine's Redis. Status lines quoted inline (`t=…`) must be
 * what `formatStatus` renders. The one ```text block is the folder map of
 * docs/development.md: every path it names exists. A ```yaml block is the
 * Prometheus configuration of docs/observability.md: it parses, and scrapes
 * the service's /metrics on its port. Relative links name existing files and
 * headings.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { dirname, join, relative } from "node:path"
import { parse as parseYaml } from "yaml"
import { formatStatus } from "../../src/service/Report.ts"
import type { Sample } from "../../src/service/Simulation.ts"
import { root, run, runSnippet, type Snippet, typecheck } from "./snippets.ts"

const snippets = join(root, "test/docs/.snippets/markdown")
const main = join(root, "src/bin/market-data-pipeline.ts")

interface Block {
  readonly file: string
  readonly line: number
  readonly lang: string
  readonly flags: ReadonlyArray<string>
  readonly code: string
}

/** Folders of generated or installed files (written by other tests meanwhile, some of them). */
const generated = [
  ".git",
  "node_modules",
  "dist",
  "test/docs/.snippets",
  "test/output",
  "docs/api",
  "api-report",
  "scratch"
]

/** The Markdown files of the repository (not its dependencies, not generated folders). */
const markdownFiles = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (generated.includes(relative(root, path))) return []
    return entry.isDirectory() ? markdownFiles(path) : entry.name.endsWith(".md") ? [path] : []
  })

const blocksOf = (file: string): Array<Block> => {
  const lines = readFileSync(file, "utf8").split("\n")
  const blocks: Array<Block> = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S+)(.*)$/.exec(lines[i]!)
    if (open === null) continue
    const start = i
    const body: Array<string> = []
    for (i++; i < lines.length && lines[i] !== "```"; i++) body.push(lines[i]!)
    blocks.push({
      file: relative(root, file),
      line: start + 1,
      lang: open[1]!,
      flags: open[2]!.trim().split(/\s+/).filter((flag) => flag !== ""),
      code: body.join("\n") + "\n"
    })
  }
  return blocks
}

const blocks = markdownFiles(root).sort().flatMap(blocksOf)
const tsBlocks = blocks.filter((block) => block.lang === "ts")
/** A ts block as a snippet: its code starts on the line after its fence. */
const snippetOf = (block: Block): Snippet => ({
  name: `${block.file.replace(/[^A-Za-z0-9]+/g, "_")}_line${block.line}.ts`,
  code: block.code,
  file: block.file,
  line: block.line + 1
})

// The shared-bucket example uses the prefix "mdp", the service's default: on the machine's Redis a
// snippet run takes a prefix of its own, so it never shares a bucket with a service running there.
const isolate = (code: string): string => code.replaceAll(`prefix: "mdp"`, `prefix: "mdp-readme-${process.pid}"`)

describe("the documentation's TypeScript", () => {
  it("finds the Markdown files' blocks", () => {
    assert.isAtLeast(tsBlocks.length, 5)
    for (const block of tsBlocks) {
      assert.deepStrictEqual(
        block.flags.filter((flag) => flag !== "no-run"),
        [],
        `${block.file}:${block.line}: unknown flag`
      )
    }
  })

  it.live("every block typechecks with the project's compiler options", () =>
    Effect.gen(function*() {
      const checked = yield* typecheck(snippets, tsBlocks.map(snippetOf))
      assert.strictEqual(checked.code, 0, checked.output)
    }), { timeout: 200_000 })

  for (const block of tsBlocks.filter((b) => !b.flags.includes("no-run"))) {
    it.live(`${block.file}:${block.line} runs and prints what it shows`, () =>
      Effect.gen(function*() {
        const wrong = yield* runSnippet(snippets, { ...snippetOf(block), code: isolate(block.code) })
        assert.isUndefined(wrong, `${block.file}:${block.line}: ${wrong}`)
      }), { timeout: 90_000 })
  }
})

interface Command {
  readonly text: string
  readonly expected: ReadonlyArray<string>
}

/** A sh block of curl commands: each command (with its continuation lines) and the `# →` lines after it. */
const curlCommands = (block: Block): Array<Command> | undefined => {
  const commands: Array<{ text: string; expected: Array<string> }> = []
  let continued = false
  for (const line of block.code.split("\n")) {
    if (line.trim() === "") continue
    const output = /^# → (.*)$/.exec(line)
    if (output !== null) {
      commands.at(-1)?.expected.push(output[1]!)
      continue
    }
    if (line.startsWith("#")) continue
    if (continued) commands.at(-1)!.text += "\n" + line
    else if (line.startsWith("curl ")) commands.push({ text: line, expected: [] })
    else return undefined // another kind of shell block (npm start, redis-cli...)
    continued = line.endsWith("\\")
  }
  return commands.length > 0 ? commands : undefined
}

describe("the curl sequence", () => {
  const curls = blocks.filter((block) => block.lang === "sh" && curlCommands(block) !== undefined)
  // one file walks through the HTTP API: its blocks are one session, in order
  const file = curls[0]?.file ?? "(no file)"
  const sequence = curls.filter((block) => block.file === file).flatMap((block) => curlCommands(block) ?? [])

  it.live(
    "runs against the service started with --no-simulated-store, each command printing what the file shows",
    () =>
      Effect.gen(function*() {
        assert.deepStrictEqual([...new Set(curls.map((block) => block.file))], [file], "curl sequences in one file")
        assert.include(readFileSync(join(root, file), "utf8"), "`npm start -- --no-simulated-store`")
        assert.isAtLeast(sequence.length, 5)
        assert.isTrue(sequence.some((command) => command.text.includes("\"level\":\"hard\"")))
        // the file's service: no token (its curl commands send none)
        const { MDP_HTTP_TOKEN: _token, ...env } = process.env
        const service = spawn(process.execPath, [main, "run", "--no-simulated-store", "--port", "0"], {
          cwd: root,
          env,
          stdio: ["ignore", "pipe", "pipe"]
        })
        let output = ""
        service.stdout.on("data", (chunk) => (output += chunk))
        service.stderr.on("data", (chunk) => (output += chunk))
        yield* Effect.addFinalizer(() => Effect.sync(() => service.kill("SIGKILL")))
        let port: string | undefined
        for (let i = 0; i < 600 && port === undefined; i++) {
          port = /listening on http:\/\/[\d.]+:(\d+)/.exec(output)?.[1]
          if (port === undefined) yield* Effect.sleep("50 millis")
        }
        assert.isDefined(port, output)
        for (const command of sequence) {
          const text = command.text.replaceAll("localhost:9108", `localhost:${port}`)
          const ran = yield* run("bash", ["-c", text], { timeout: 10_000 })
          const printed = ran.stdout.split("\n").filter((line) => line !== "")
          assert.deepStrictEqual(printed, command.expected, `${command.text}\n${ran.stderr}`)
        }
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )
})

// ---------------------------------------------------------------------------
// the terminals: ```console blocks, the two-terminal demo, status lines

const consoleBlocks = blocks.filter((block) => block.lang === "console")

interface Shown {
  readonly command: string
  readonly lines: ReadonlyArray<string>
}

/** A ```console block: each `$ command` and the lines shown after it. */
const transcript = (block: Block): Array<Shown> => {
  const shown: Array<{ command: string; lines: Array<string> }> = []
  for (const line of block.code.replace(/\n$/, "").split("\n")) {
    if (line.startsWith("$ ")) shown.push({ command: line.slice(2), lines: [] })
    else {
      assert.isDefined(shown.at(-1), `${block.file}:${block.line}: output before any command`)
      shown.at(-1)!.lines.push(line)
    }
  }
  return shown
}

const modeOf = (block: Block): { kind: "stderr"; exit: number } | { kind: "transcript" } => {
  const exit = block.flags.map((flag) => /^exit=(\d+)$/.exec(flag)).find((m) => m !== null)
  const rest = block.flags.filter((flag) => !/^exit=\d+$/.test(flag))
  if (rest.length === 1 && rest[0] === "stderr" && exit) return { kind: "stderr", exit: Number(exit[1]) }
  if (rest.length === 1 && rest[0] === "transcript" && exit === undefined) return { kind: "transcript" }
  throw new Error(`${block.file}:${block.line}: a console block is "console stderr exit=N" or "console transcript"`)
}

/** The environment of a newcomer's shell: none of the service's variables set. */
const cleanEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(
    Object.entries(process.env).filter(([name]) =>
      !/^(MDP_|PULSE_|REDIS_URL$|MD_NAMESPACE$|EVENT_BUS_BACKEND$|SCHEMA_TRACK$)/.test(name)
    )
  )

/** Runs the effects `concurrency` at a time, results in order. */
const pooled = <A>(effects: ReadonlyArray<Effect.Effect<A>>, concurrency: number) =>
  Effect.all(effects, { concurrency })

const lines = (text: string): Array<string> => text.replace(/\n$/, "").split("\n")

/** npm's banner on stdout: blank lines and the `> package@version script` / `> command` lines. */
const isNpmBanner = (line: string) => line === "" || line.startsWith("> ")

/** A status line as shown, parsed back into the sample it renders (the event count, when left out, is large). */
const parseStatus = (line: string): { sample: Sample; events: number } => {
  const number = (pattern: RegExp, fallback?: number): number => {
    const match = pattern.exec(line)
    if (match === null && fallback !== undefined) return fallback
    assert.isNotNull(match, `status line ${JSON.stringify(line)}: no ${pattern}`)
    return Number(match![1])
  }
  const level = /\b(ok|soft|hard)\b/.exec(line)?.[1]
  assert.isDefined(level, `status line ${JSON.stringify(line)}: no level`)
  const queue = /\bq(?:ueue)? (\d+)\/(\d+)/.exec(line)
  return {
    sample: {
      t: number(/^t=(\d+\.\d)s /),
      rate: number(/\b(\d+\.\d)\/s/),
      baseRate: 200,
      scale: number(/(?:scale |\bx)(\d\.\d\d)\b/, 1),
      level: level as Sample["level"],
      queueDepth: queue === null ? 0 : Number(queue[1]),
      queueCapacity: queue === null ? 0 : Number(queue[2]),
      produced: 0,
      written: number(/\bwritten (\d+)/, 0),
      dropped: number(/\bdropped (\d+)/, 0),
      rejected: number(/\brejected (\d+)/, 0),
      stalled: /\b(?:stall|sink stalled)\b/.test(line)
    },
    events: number(/\b(?:feedback events|fb) (\d+)/, 10_000)
  }
}

/** A line shown in a transcript as a pattern: the clock of a log line and the port may differ. */
const shapeOf = (line: string, summary: boolean): RegExp => {
  const escaped = line.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
  const loose = summary
    ? escaped.replace(/\d+(?:\\\.\d+)?/g, "\\d+(?:\\.\\d+)?") // the summary's figures
    : escaped
      .replace(/^\\\[\d\d:\d\d:\d\d\\\.\d{3}\\\]/, "\\[\\d\\d:\\d\\d:\\d\\d\\.\\d{3}\\]")
      .replace(/127\\\.0\\\.0\\\.1:\d+/, "127\\.0\\.0\\.1:\\d+")
  return new RegExp(`^${loose}$`)
}

describe("the terminals the Markdown files show", () => {
  it("every block names its language; console blocks have a mode the test knows", () => {
    const bare = markdownFiles(root).flatMap((file) =>
      readFileSync(file, "utf8").split("\n").flatMap((line, i, all) =>
        line === "```" && all.slice(0, i).filter((l) => l.startsWith("```")).length % 2 === 0
          ? [`${relative(root, file)}:${i + 1}`]
          : []
      )
    )
    assert.deepStrictEqual(bare, [], "blocks opened without a language (```text for an illustration)")
    assert.sameMembers(consoleBlocks.map((block) => modeOf(block).kind), ["stderr", "transcript"])
    // the other sh blocks are commands to type: no line of output shown
    for (const block of blocks.filter((b) => b.lang === "sh" && curlCommands(b) === undefined)) {
      if (block.code.includes("--shared-buckets")) continue // the two-terminal demo, run below
      const shown = block.code.split("\n").filter((line) => line.startsWith("#"))
      assert.deepStrictEqual(shown, [], `${block.file}:${block.line}: output shown in a block no test runs`)
    }
  })

  for (const block of consoleBlocks.filter((b) => modeOf(b).kind === "stderr")) {
    it.live(
      `${block.file}:${block.line}: each command exits as shown, printing the lines shown on stderr`,
      () =>
        Effect.gen(function*() {
          const { exit } = modeOf(block) as { exit: number }
          const shown = transcript(block)
          assert.isAtLeast(shown.length, 4)
          const ran = yield* pooled(
            shown.map((s) => run("sh", ["-c", s.command], { timeout: 30_000, env: cleanEnv() })),
            2
          )
          shown.forEach((s, i) => {
            const { code, stderr, stdout } = ran[i]!
            const context = `$ ${s.command}\nstdout:\n${stdout}\nstderr:\n${stderr}`
            assert.strictEqual(code, exit, context)
            assert.deepStrictEqual(lines(stderr), s.lines, context)
            assert.deepStrictEqual(lines(stdout).filter((line) => !isNpmBanner(line)), [], context)
          })
        }),
      { timeout: 60_000 }
    )
  }

  for (const block of consoleBlocks.filter((b) => modeOf(b).kind === "transcript")) {
    it.live(
      `${block.file}:${block.line}: the transcript is what a short real run prints`,
      () =>
        Effect.gen(function*() {
          const shown = transcript(block)
          assert.lengthOf(shown, 1)
          const { command, lines: expected } = shown[0]!
          assert.strictEqual(command, "npm start")
          const ran = yield* run("sh", ["-c", `${command} 2>&1`], {
            timeout: 30_000,
            env: { ...cleanEnv(), MDP_DURATION: "3", MDP_HTTP_PORT: "0" }
          })
          const real = lines(ran.stdout)
          assert.strictEqual(ran.code, 0, ran.stdout)
          // the status line: what formatStatus renders at 80 columns (the docs say so)
          const statusShown = expected.filter((line) => line.startsWith("t="))
          assert.lengthOf(statusShown, 1)
          const status = statusShown[0]!.replace(/\^C$/, "")
          const { events, sample } = parseStatus(status)
          assert.strictEqual(formatStatus(sample, events, 80), status)
          assert.isTrue(real.some((line) => line.startsWith("t=")), ran.stdout)
          // the other lines, in order; the summary exactly, but for its figures
          const rest = expected.filter((line) => !line.startsWith("t="))
          const summaryAt = rest.indexOf("summary")
          assert.isAtLeast(summaryAt, 0)
          const realRest = real.filter((line) => !line.startsWith("t="))
          let at = 0
          rest.forEach((line, i) => {
            const shape = shapeOf(line, i > summaryAt)
            const found = realRest.findIndex((r, j) => j >= at && shape.test(r))
            assert.isAtLeast(
              found,
              0,
              `${block.file}:${block.line + 2 + expected.indexOf(line)}: not printed: ${line}\n${ran.stdout}`
            )
            at = found + 1
          })
          const realSummary = realRest.slice(realRest.indexOf("summary"))
          assert.strictEqual(realSummary.length, rest.length - summaryAt, `the summary's lines:\n${ran.stdout}`)
          realSummary.forEach((line, i) => assert.match(line, shapeOf(rest[summaryAt + i]!, i > 0)))
        }),
      { timeout: 60_000 }
    )
  }

  it("the status lines quoted inline are what formatStatus renders", () => {
    const quoted = markdownFiles(root).flatMap((file) =>
      [...readFileSync(file, "utf8").matchAll(/`(t=\d[^`]*)`/g)].map((m) => m[1]!)
    )
    assert.isAtLeast(quoted.length, 1)
    for (const line of quoted) {
      const { events, sample } = parseStatus(line)
      assert.strictEqual(formatStatus(sample, events), line)
    }
  })

  it.live(
    "two terminals, one limit: hard posted to one stops both, ok posted to either resumes both",
    () =>
      Effect.gen(function*() {
        const demo = blocks.filter((b) => b.lang === "sh" && b.code.includes("--shared-buckets"))
        assert.lengthOf(demo, 1)
        const code = demo[0]!.code
        // what the block claims, which this test checks
        assert.include(
          code,
          "# both status lines go to rate 0.0/s at level hard; posting \"ok\" to either resumes both"
        )
        const starts = code.split("\n").filter((line) => line.startsWith("npm start "))
        const post = code.split("\n# both")[0]!.split("\n").slice(starts.length).join("\n")
        assert.lengthOf(starts, 2)
        assert.include(post, "localhost:9109")
        // each terminal on a free port and a prefix of its own (not a service's on this machine)
        const prefix = `mdp-readme-${process.pid}`
        const terminals = starts.map((line) => {
          const command = line.replace(/#.*$/, "").trim().replace(/--port \d+/, "--port 0") +
            ` --redis-prefix ${prefix}`
          const child = spawn("sh", ["-c", `exec ${command} 2>&1`], {
            cwd: root,
            env: cleanEnv(),
            detached: true,
            stdio: ["ignore", "pipe", "ignore"]
          })
          const terminal = { command, output: "", port: undefined as string | undefined }
          child.stdout.on("data", (chunk) => (terminal.output += chunk))
          return { terminal, child }
        })
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            for (const { child } of terminals) {
              try {
                process.kill(-child.pid!, "SIGKILL") // npm, its shell and the service
              } catch {
                // already gone
              }
            }
          })
        )
        const statusAfter = (output: string, from: number) =>
          output.slice(from).split("\n").filter((line) => line.startsWith("t=") && line.includes("/s"))
        const waitFor = (what: string, check: () => boolean) =>
          Effect.gen(function*() {
            for (let i = 0; i < 200 && !check(); i++) yield* Effect.sleep("50 millis")
            assert.isTrue(check(), `${what}\n${terminals.map(({ terminal }) => terminal.output).join("\n---\n")}`)
          })
        yield* waitFor("both terminals start", () =>
          terminals.every(({ terminal }) => {
            terminal.port ??= /listening on http:\/\/[\d.]+:(\d+)/.exec(terminal.output)?.[1]
            return terminal.port !== undefined && statusAfter(terminal.output, 0).length > 0
          }))
        const [one, two] = terminals.map(({ terminal }) => terminal) as [
          typeof terminals[0]["terminal"],
          typeof terminals[0]["terminal"]
        ]
        const send = (text: string) =>
          Effect.gen(function*() {
            const ran = yield* run("bash", ["-c", text], { timeout: 10_000 })
            assert.strictEqual(ran.code, 0, ran.stderr)
            assert.include(ran.stdout, "\"accepted\":true")
          })
        let marks = terminals.map(({ terminal }) => terminal.output.length)
        yield* send(post.replaceAll("localhost:9109", `localhost:${two.port}`))
        yield* waitFor("both status lines go to rate 0.0/s at level hard", () =>
          terminals.every(({ terminal }, i) =>
            statusAfter(terminal.output, marks[i]!).some((line) =>
              /rate 0\.0\/s .*level hard/.test(line)
            )
          ))
        // "ok" posted to the other terminal
        marks = terminals.map(({ terminal }) => terminal.output.length)
        yield* send(
          post.replaceAll("localhost:9109", `localhost:${one.port}`).replace("\"level\":\"hard\"", "\"level\":\"ok\"")
        )
        yield* waitFor("both resume", () =>
          terminals.every(({ terminal }, i) =>
            statusAfter(terminal.output, marks[i]!).some((line) =>
              !line.includes("rate 0.0/s") && !/level hard/.test(line)
            )
          ))
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )
})

// ---------------------------------------------------------------------------
// links between the Markdown files

/** A heading's anchor, as GitHub makes it. */
const anchorOf = (heading: string): string =>
  heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-")

/** The text of a Markdown file outside its code blocks. */
const prose = (file: string): string => readFileSync(file, "utf8").replace(/^```[^\n]*\n[\s\S]*?^```$/gm, "")

describe("the links of the Markdown files", () => {
  it("every relative link names a file of the repository, and a heading of it when it has an anchor", () => {
    const broken: Array<string> = []
    for (const file of markdownFiles(root)) {
      for (const [, target] of prose(file).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue // http:, https:, mailto:
        const [path, anchor] = target!.split("#") as [string, string | undefined]
        const linked = path === "" ? file : join(dirname(file), path)
        if (!existsSync(linked)) {
          broken.push(`${relative(root, file)}: ${target} (no such file)`)
          continue
        }
        if (anchor === undefined) continue
        const anchors = [...prose(linked).matchAll(/^#+ (.*)$/gm)].map((m) => anchorOf(m[1]!))
        if (!anchors.includes(anchor)) broken.push(`${relative(root, file)}: ${target} (no such heading)`)
      }
    }
    assert.deepStrictEqual(broken, [])
  })
})

describe("the other blocks", () => {
  it("the one text block is the folder map, and every path it names exists", () => {
    const texts = blocks.filter((block) => block.lang === "text")
    assert.deepStrictEqual(texts.map((block) => block.file), ["docs/development.md"])
    const missing: Array<string> = []
    let folders: Array<string> = []
    for (const line of texts[0]!.code.split("\n")) {
      const entry = /^( *)(\S+)/.exec(line)
      // an entry's name starts within the name column; the wider indents continue a description
      if (entry === null || entry[1]!.length >= 28) continue
      const name = entry[2]!
      folders = folders.slice(0, entry[1]!.length / 2)
      const path = [...folders, name.replace(/\/$/, "")].join("/")
      if (!existsSync(join(root, path))) missing.push(path)
      if (name.endsWith("/")) folders.push(name.replace(/\/$/, ""))
    }
    assert.deepStrictEqual(missing, [], "paths in the folder map that do not exist")
    assert.include(texts[0]!.code, "src/\n  index.ts")
  })

  it("the yaml block is a Prometheus configuration that scrapes the service's /metrics", () => {
    const yamls = blocks.filter((block) => block.lang === "yaml")
    assert.lengthOf(yamls, 1)
    const config = parseYaml(yamls[0]!.code)
    const job = config.scrape_configs[0]
    assert.strictEqual(job.metrics_path, "/metrics")
    for (const target of job.static_configs[0].targets) assert.match(target, /:9108$/)
    assert.match(config.rule_files[0], /alerts\.yml/)
  })
})
