/**
 * The package as a consumer gets it: built and packed from a copy of the
 * sources (so neither a stale nor a concurrently rebuilt `dist/` of the working
 * tree is what gets tested), installed with npm into a scratch project, then
 * listed and run there.
 *
 * Needs npm and its registry (or a warm npm cache: `--prefer-offline`).
 */
import { assert, describe, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { delimiter, dirname, join } from "node:path"
import ts from "typescript"
import { afterAll, beforeAll } from "vitest"
import { missingPeersMessage } from "../../src/bin/launch.ts"

const root = new URL("../..", import.meta.url).pathname
const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8"))

interface Ran {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

// npm run/test exports npm_config_* (the local prefix among them): a child npm must not see them,
// or it would act on this repository instead of the scratch directories
const env: NodeJS.ProcessEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.toLowerCase().startsWith("npm_"))),
  // the Node that runs the tests (22) first, for npm and for the bin's `#!/usr/bin/env node`
  PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}`
}

const run = (file: string, args: ReadonlyArray<string>, cwd: string): Promise<Ran> =>
  new Promise((resolve) => {
    execFile(file, args, { cwd, env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1
      resolve({ code, stdout, stderr })
    })
  })

const succeed = async (file: string, args: ReadonlyArray<string>, cwd: string): Promise<string> => {
  const ran = await run(file, args, cwd)
  if (ran.code !== 0) throw new Error(`${file} ${args.join(" ")} exited with ${ran.code}:\n${ran.stderr}${ran.stdout}`)
  return ran.stdout
}

const npmInstall = ["install", "--no-audit", "--no-fund", "--prefer-offline"]

let work = ""
let consumer = ""
let packed: ReadonlyArray<string> = []
let packedManifest: Record<string, any> = {}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "mdp-package-"))
  // the package's own files, as a fresh clone has them; node_modules shared (read-only use)
  const source = join(work, "source")
  mkdirSync(source)
  for (const entry of ["package.json", "README.md", "tsconfig.json", "tsconfig.build.json", "src"]) {
    cpSync(join(root, entry), join(source, entry), { recursive: true })
  }
  symlinkSync(join(root, "node_modules"), join(source, "node_modules"), "dir")
  // `prepack` builds dist/ first
  const [pack] = JSON.parse(await succeed("npm", ["pack", "--json", "--pack-destination", work], source))
  packed = pack.files.map((file: { readonly path: string }) => file.path)
  consumer = join(work, "consumer")
  mkdirSync(consumer)
  writeFileSync(
    join(consumer, "package.json"),
    JSON.stringify({ name: "consumer", version: "1.0.0", private: true, type: "module" }, null, 2)
  )
  await succeed("npm", [...npmInstall, join(work, pack.filename)], consumer)
  // the manifest as installed from the tarball
  packedManifest = JSON.parse(
    readFileSync(join(consumer, "node_modules", "market-data-pipeline", "package.json"), "utf8")
  )
}, 600_000)

afterAll(() => {
  if (work !== "") rmSync(work, { recursive: true, force: true })
})

/** Every package in the consumer's node_modules (npm's hidden lockfile), by name. */
const installed = (): Set<string> => {
  const lock = JSON.parse(readFileSync(join(consumer, "node_modules", ".package-lock.json"), "utf8"))
  return new Set(
    Object.keys(lock.packages).filter((path) => path !== "").map((path) =>
      path.slice(path.lastIndexOf("node_modules/") + 13)
    )
  )
}

/** `name` and everything it needs at runtime, read from the installed manifests. */
const closure = (name: string, into: Set<string> = new Set()): Set<string> => {
  if (into.has(name)) return into
  into.add(name)
  const pkg = JSON.parse(readFileSync(join(consumer, "node_modules", name, "package.json"), "utf8"))
  const optionalPeers = pkg.peerDependenciesMeta ?? {}
  const needed = [
    ...Object.keys(pkg.dependencies ?? {}),
    ...Object.keys(pkg.peerDependencies ?? {}).filter((peer) => optionalPeers[peer]?.optional !== true)
  ]
  for (const dependency of needed) closure(dependency, into)
  return into
}

/** The bare specifiers the module graph of `entry` imports, statically or with a literal `import()`. */
const bareImports = (entry: string): Set<string> => {
  const seen = new Set<string>()
  const bare = new Set<string>()
  const visit = (file: string) => {
    if (seen.has(file)) return
    seen.add(file)
    const { importedFiles } = ts.preProcessFile(readFileSync(file, "utf8"), true, true)
    for (const { fileName } of importedFiles) {
      if (fileName.startsWith(".")) visit(join(dirname(file), fileName))
      else bare.add(fileName)
    }
  }
  visit(entry)
  return bare
}

const sorted = (names: Iterable<string>) => [...names].sort()

describe("the packed package", () => {
  it("holds the built library, its sources and the bin; no tests, benchmarks or build settings", () => {
    for (const file of ["package.json", "dist/index.js", "dist/index.d.ts", "dist/bin/launch.js", "src/index.ts"]) {
      assert.include(packed, file)
    }
    for (const [name, target] of Object.entries(packedManifest.bin as Record<string, string>)) {
      assert.strictEqual(name, "market-data-pipeline")
      assert.include(packed, target)
    }
    const stray = packed.filter((path) => !/^(dist|src)\//.test(path) && !["package.json", "README.md"].includes(path))
    assert.deepStrictEqual(stray, [])
    assert.deepStrictEqual(packed.filter((path) => /(^|\/)(test|bench)\/|\.test\.|\.bench\./.test(path)), [])
  })

  it("declares effect as its only dependency; the command line's packages are optional peers", () => {
    assert.deepStrictEqual(Object.keys(packedManifest.dependencies), ["effect"])
    assert.match(packedManifest.dependencies.effect, /^\d+\.\d+\.\d+$/, "an exact version")
    for (const peer of ["@effect/platform-node", "redis", "prom-client"]) {
      assert.property(packedManifest.peerDependencies, peer)
      assert.strictEqual(packedManifest.peerDependenciesMeta[peer]?.optional, true, `${peer} is an optional peer`)
    }
    for (const gone of ["vega", "vega-lite"]) {
      for (const field of ["dependencies", "peerDependencies", "devDependencies", "optionalDependencies"]) {
        assert.notProperty(packedManifest[field] ?? {}, gone, `${gone} in ${field}`)
      }
    }
  })

  it("installs the package, effect and effect's own dependencies, nothing else", () => {
    const names = installed()
    assert.deepStrictEqual(sorted(names), sorted(new Set(["market-data-pipeline", ...closure("effect")])))
    for (const absent of ["vega", "vega-lite", "@effect/platform-node", "prom-client", "redis"]) {
      assert.isFalse(names.has(absent), `${absent} was installed`)
    }
    const effect = JSON.parse(readFileSync(join(consumer, "node_modules", "effect", "package.json"), "utf8"))
    assert.strictEqual(effect.version, packedManifest.dependencies.effect)
  })

  it("the library's built code imports only effect and Node's own modules", () => {
    const entry = join(consumer, "node_modules", "market-data-pipeline", "dist", "index.js")
    const foreign = sorted(bareImports(entry)).filter((name) => !/^(effect|effect\/.+|node:.+)$/.test(name))
    assert.deepStrictEqual(foreign, [])
  })

  it("runs in the consumer with only what was installed: a RateCoordinator grants its burst", async () => {
    writeFileSync(
      join(consumer, "main.js"),
      `import { Effect } from "effect"
import { RateCoordinator } from "market-data-pipeline"

const program = Effect.gen(function*() {
  const coordinator = yield* RateCoordinator
  yield* coordinator.registerProvider("p", { capacity: 3, refillRate: 0.001 })
  const granted = []
  for (let i = 0; i < 4; i++) granted.push(yield* coordinator.tryAcquire("p"))
  return granted
}).pipe(Effect.provide(RateCoordinator.layer))

console.log(JSON.stringify(await Effect.runPromise(program)))
`
    )
    const stdout = await succeed(process.execPath, ["main.js"], consumer)
    assert.strictEqual(stdout.trim().split("\n").at(-1), "[true,true,true,false]")
  })

  it("the executable without its optional peers says what to install, exit code 2", async () => {
    const bin = join(consumer, "node_modules", ".bin", "market-data-pipeline")
    assert.isTrue(existsSync(bin))
    const ran = await run(bin, ["run", "--duration", "1"], consumer)
    assert.deepStrictEqual(ran, { code: 2, stdout: "", stderr: `${missingPeersMessage}\n` })
  })

  it("the executable runs once the peer it names is installed; redis is needed only by the runs on Redis", async () => {
    const bin = join(consumer, "node_modules", ".bin", "market-data-pipeline")
    const peer = (name: string) => `${name}@${manifest.devDependencies[name]}`
    assert.include(missingPeersMessage, `npm install ${peer("@effect/platform-node")} `)
    // npm installs redis with @effect/platform-node (its peer) unless told not to, as yarn does not
    await succeed("npm", [...npmInstall, "--legacy-peer-deps", peer("@effect/platform-node")], consumer)
    assert.isFalse(installed().has("redis"))
    const version = await run(bin, ["--version"], consumer)
    assert.strictEqual(version.code, 0, version.stderr)
    assert.include(version.stdout, manifest.version)
    const plain = await run(bin, ["run", "--port", "0", "--duration", "1", "--no-simulated-store"], consumer)
    assert.strictEqual(plain.code, 0, plain.stderr)
    assert.include(plain.stdout, "summary")
    for (const option of ["--shared-buckets", "--pulse"]) {
      const ran = await run(bin, ["run", "--port", "0", "--duration", "1", option], consumer)
      assert.deepStrictEqual(ran, {
        code: 2,
        stdout: "",
        stderr: `market-data-pipeline: ${option} needs the redis package: npm install ${peer("redis")}\n`
      })
    }
    // with redis installed, --shared-buckets gets as far as connecting
    await succeed("npm", [...npmInstall, peer("redis")], consumer)
    const shared = await run(
      bin,
      ["run", "--port", "0", "--duration", "1", "--shared-buckets", "--redis-url", "redis://127.0.0.1:1"],
      consumer
    )
    assert.strictEqual(shared.code, 2, shared.stderr)
    assert.include(shared.stderr, "--shared-buckets: cannot connect to Redis at redis://127.0.0.1:1")
  }, 300_000)
})
