/**
 * The executable's first step: the command line runs on `@effect/platform-node`,
 * which the package declares as an optional peer dependency so that a library
 * consumer does not download it. Before the program's modules are loaded,
 * `launch` checks that it can be found; when it cannot, it prints one line
 * saying what to install and exits with code 2, instead of Node's stack trace
 * for a missing module. (`redis`, the other optional peer the command line
 * may use, is loaded only by a run with `--shared-buckets` or `--pulse`, which
 * says itself when it is missing.)
 *
 * The program must be loaded through `launch` with a dynamic `import()`: a
 * static import would be resolved, and fail, before any check could run.
 *
 * @example
 * ```ts
 * import { launch } from "./launch.ts"
 *
 * const { main } = await launch(() => import("../service/Main.ts"))
 * main()
 * ```
 *
 * @since 0.1.0
 */

/**
 * What the executable prints (on stderr) when `@effect/platform-node` is
 * missing: the package is found beside this one (in the same
 * `node_modules`), so a global install needs a global one.
 *
 * @since 0.1.0
 * @category constants
 */
export const missingPeersMessage: string =
  "market-data-pipeline: the command line needs @effect/platform-node 4.1.0 installed beside it: " +
  "npm install @effect/platform-node@4.1.0 (npm install -g @effect/platform-node@4.1.0 for a global install)"

// the optional peer the program's modules import statically
const peers: ReadonlyArray<string> = ["@effect/platform-node"]

const resolves = (specifier: string): boolean => {
  try {
    import.meta.resolve(specifier)
    return true
  } catch {
    return false
  }
}

// Node's error for a bare specifier it cannot find: "Cannot find package '@effect/platform-node' imported from …"
const isMissingPeer = (error: unknown): boolean =>
  error instanceof Error &&
  (error as NodeJS.ErrnoException).code === "ERR_MODULE_NOT_FOUND" &&
  peers.some((peer) => error.message.includes(`'${peer}'`))

const refuse = (): never => {
  process.stderr.write(`${missingPeersMessage}\n`)
  return process.exit(2)
}

/**
 * Loads the program with `load` once `@effect/platform-node` resolves from
 * this package; exits with code 2 and {@link missingPeersMessage} when it
 * does not, or when loading fails on it missing.
 *
 * @since 0.1.0
 * @category launching
 */
export const launch = async <A>(load: () => Promise<A>): Promise<A> => {
  if (!resolves("@effect/platform-node/package.json")) return refuse()
  try {
    return await load()
  } catch (error) {
    if (isMissingPeer(error)) return refuse()
    throw error
  }
}
