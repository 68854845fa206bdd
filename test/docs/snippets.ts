/**
 * What the tests of the documentation's code share: writing snippets out,
 * typechecking them with the project's compiler options, running them with
 * Node on the sources and comparing what they print with the `// → text`
 * lines they show.
 */
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"

export const root = new URL("../../", import.meta.url).pathname
const tsc = join(root, "node_modules/typescript/bin/tsc")

/** The public modules: typedoc.json's entry points, the modules `npm run docs` documents. */
export const publicModules: ReadonlyArray<string> =
  JSON.parse(readFileSync(join(root, "typedoc.json"), "utf8")).entryPoints

/** A snippet: its code and where it is written in the repository. */
export interface Snippet {
  /** A file name for it, unique among its kind (`README_md_line12.ts`). */
  readonly name: string
  readonly code: string
  /** The file it is written in (`README.md`) and the line of its first line of code there. */
  readonly file: string
  readonly line: number
}

/** The lines a snippet says it prints (`// → text`), in order. */
export const expectedOutput = (code: string): Array<string> =>
  code.split("\n").flatMap((line) => {
    const match = /^\s*\/\/ → (.*)$/.exec(line)
    return match === null ? [] : [match[1]!]
  })

/** The first of `expected` that is not among the lines of `output` in this order, if any. */
export const inOrder = (output: string, expected: ReadonlyArray<string>): string | undefined => {
  const lines = output.split("\n")
  let at = 0
  for (const line of expected) {
    const found = lines.indexOf(line, at)
    if (found < 0) return line
    at = found + 1
  }
  return undefined
}

/** How a command ended and what it printed. */
export interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

export const run = (
  command: string,
  args: ReadonlyArray<string>,
  options: { timeout: number; env?: NodeJS.ProcessEnv }
): Effect.Effect<Ran> =>
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

/**
 * Typechecks the snippets together in `dir` (emptied first) with the
 * project's compiler options: tsc's exit code, and what it printed with each
 * location given where the snippet is written (`README.md:42:7`).
 */
export const typecheck = (
  dir: string,
  snippets: ReadonlyArray<Snippet>
): Effect.Effect<{ readonly code: number | null; readonly output: string }> =>
  Effect.suspend(() => {
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    for (const snippet of snippets) writeFileSync(join(dir, snippet.name), snippet.code)
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        extends: join(root, "tsconfig.json"),
        compilerOptions: { noEmit: true, moduleDetection: "force", noUnusedLocals: false },
        include: ["./*.ts"],
        exclude: []
      })
    )
    const byName = new Map(snippets.map((snippet) => [snippet.name, snippet]))
    return Effect.map(
      run(process.execPath, [tsc, "-p", join(dir, "tsconfig.json")], { timeout: 180_000 }),
      (checked) => ({
        code: checked.code,
        // tsc names the snippet's file; its row N is line (line + N - 1) where the snippet is written
        output: checked.stdout.replace(
          /(?:[^\s(]*\/)?([A-Za-z0-9_]+\.ts)\((\d+),(\d+)\)/g,
          (found, name: string, row, column) => {
            const snippet = byName.get(name)
            return snippet === undefined ? found : `${snippet.file}:${snippet.line + Number(row) - 1}:${column}`
          }
        )
      })
    )
  })

/**
 * Runs a snippet with Node on the package's sources (written to `dir` as
 * `run_<name>`): what is wrong, with what it printed, unless it exits 0
 * and prints the lines it shows, in order.
 */
export const runSnippet = (dir: string, snippet: Snippet): Effect.Effect<string | undefined> =>
  Effect.gen(function*() {
    mkdirSync(dir, { recursive: true })
    const file = join(dir, `run_${snippet.name}`)
    writeFileSync(file, snippet.code)
    const ran = yield* run(process.execPath, ["--conditions=market-data-pipeline:source", file], {
      timeout: 60_000,
      env: { ...process.env, MDP_LOG_LEVEL: "none" }
    })
    if (ran.code !== 0) return `exit ${ran.code}\n${ran.stdout}${ran.stderr}`
    const missing = inOrder(ran.stdout, expectedOutput(snippet.code))
    if (missing !== undefined) return `not printed: ${missing}\nstdout:\n${ran.stdout}`
    rmSync(file, { force: true })
    return undefined
  })
