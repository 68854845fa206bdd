/**
 * The documentation's code runs: every ```ts block of the repository's
 * Markdown files is typechecked with the project's compiler options and run
 * with Node on the sources (`--conditions=market-data-pipeline:source`), and
 * the lines a block shows as output (`// → text`) must be what it prints, in
 * order. A block marked ```ts no-run is only typechecked (a deliberate
 * fragment; none is today).
 *
 * The curl sequences of the README (```sh blocks made only of curl commands)
 * run, in order, against the real service started as the README says
 * (`run --no-simulated-store`, on a free port instead of 9108), and each
 * command prints exactly the `# → text` lines that follow it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile, spawn } from "node:child_process"
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join, relative } from "node:path"

const root = new URL("../../", import.meta.url).pathname
const snippets = join(root, "test/docs/.snippets")
const tsc = join(root, "node_modules/typescript/bin/tsc")
const main = join(root, "src/bin/market-data-pipeline.ts")

interface Block {
  readonly file: string
  readonly line: number
  readonly lang: string
  readonly flags: ReadonlyArray<string>
  readonly code: string
}

/** The Markdown files of the repository (not its dependencies, not generated folders). */
const markdownFiles = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if ([".git", "node_modules", "dist", ".snippets"].includes(entry.name)) return []
    const path = join(dir, entry.name)
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
const snippetName = (block: Block) => `${block.file.replace(/[^A-Za-z0-9]+/g, "_")}_line${block.line}.ts`

/** The lines a block says it prints (`// → text`), in order. */
const expectedOutput = (code: string): Array<string> =>
  code.split("\n").flatMap((line) => {
    const match = /^\s*\/\/ → (.*)$/.exec(line)
    return match === null ? [] : [match[1]!]
  })

/** `expected` appear among the lines of `output`, in this order. */
const inOrder = (output: string, expected: ReadonlyArray<string>): string | undefined => {
  const lines = output.split("\n")
  let at = 0
  for (const line of expected) {
    const found = lines.indexOf(line, at)
    if (found < 0) return line
    at = found + 1
  }
  return undefined
}

interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const run = (command: string, args: ReadonlyArray<string>, options: { timeout: number; env?: NodeJS.ProcessEnv }) =>
  Effect.promise(() =>
    new Promise<Ran>((resolve) => {
      execFile(
        command,
        args,
        { cwd: root, timeout: options.timeout, env: options.env ?? process.env, maxBuffer: 16 * 1024 * 1024 },
        (error, stdout, stderr) =>
          resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : null, stdout, stderr })
      )
    })
  )

// The shared-bucket example uses the prefix "mdp", the service's default: on the machine's Redis a
// snippet run takes a prefix of its own, so it never shares a bucket with a service running there.
const isolate = (code: string): string => code.replaceAll(`prefix: "mdp"`, `prefix: "mdp-readme-${process.pid}"`)

describe("the documentation's TypeScript", () => {
  it("finds the README's blocks", () => {
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
      rmSync(snippets, { recursive: true, force: true })
      mkdirSync(snippets, { recursive: true })
      for (const block of tsBlocks) writeFileSync(join(snippets, snippetName(block)), block.code)
      writeFileSync(
        join(snippets, "tsconfig.json"),
        JSON.stringify({
          extends: "../../../tsconfig.json",
          compilerOptions: { noEmit: true, moduleDetection: "force", noUnusedLocals: false },
          include: ["./*.ts"]
        })
      )
      const checked = yield* run(process.execPath, [tsc, "-p", join(snippets, "tsconfig.json")], { timeout: 180_000 })
      // tsc names the snippet file; its line N is line (block line + N) of the Markdown file
      const located = checked.stdout.replace(
        /([A-Za-z0-9_]+)_line(\d+)\.ts\((\d+),(\d+)\)/g,
        (_, _name: string, line: string, row: string, column: string) =>
          `(README block at line ${line}) line ${Number(line) + Number(row)}, column ${column}`
      )
      assert.strictEqual(checked.code, 0, located)
    }), { timeout: 200_000 })

  for (const block of tsBlocks.filter((b) => !b.flags.includes("no-run"))) {
    it.live(`${block.file}:${block.line} runs and prints what it shows`, () =>
      Effect.gen(function*() {
        mkdirSync(snippets, { recursive: true })
        const file = join(snippets, `run_${snippetName(block)}`)
        writeFileSync(file, isolate(block.code))
        const ran = yield* run(process.execPath, ["--conditions=market-data-pipeline:source", file], {
          timeout: 60_000,
          env: { ...process.env, MDP_LOG_LEVEL: "none" }
        })
        assert.strictEqual(ran.code, 0, ran.stdout + ran.stderr)
        const missing = inOrder(ran.stdout, expectedOutput(block.code))
        assert.isUndefined(missing, `not printed: ${missing}\nstdout:\n${ran.stdout}`)
        rmSync(file, { force: true })
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

describe("the README's curl sequence", () => {
  const readme = blocks.filter((block) => block.file === "README.md" && block.lang === "sh")
  const sequence = readme.flatMap((block) => curlCommands(block) ?? [])

  it.live(
    "runs against the service started with --no-simulated-store, each command printing what the README shows",
    () =>
      Effect.gen(function*() {
        assert.include(readFileSync(join(root, "README.md"), "utf8"), "`npm start -- --no-simulated-store`")
        assert.isAtLeast(sequence.length, 5)
        assert.isTrue(sequence.some((command) => command.text.includes("\"level\":\"hard\"")))
        // the README's service: no token (its curl commands send none)
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
