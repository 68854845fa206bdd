/**
 * One pipeline process of test/rate/SharedBucketProcesses.test.ts: a shared
 * coordinator on `layerRedis({ prefix })`, driven by the parent over IPC.
 *
 * Run as `node --conditions=market-data-pipeline:source worker.ts '<config>'`
 * with an IPC channel. It registers the provider, says `ready`, then answers
 * each request (`{ id, type, ... }`) with `{ id, ... }`:
 *
 * - `run`: waits for `startAt` (epoch ms), runs `fibers` fibers acquiring
 *   until `startAt + durationMs`, answers the grant timestamps (epoch ms);
 * - `scale`: `setBudgetScale`, answers the epoch ms before and after;
 * - `report`: `CoordinatorLevels.report`;
 * - `state`: the provider's `state`;
 * - `try`: one `tryAcquire`;
 * - `close`: closes the coordinator and exits.
 *
 * It exits by itself at a hard deadline and when the parent goes away.
 */
import * as NodeRedis from "@effect/platform-node/NodeRedis"
import { Context, Effect, Exit, Fiber, Layer, References, Scope } from "effect"
import { CoordinatorLevels, RateCoordinator } from "market-data-pipeline"

export interface WorkerConfig {
  readonly url: string
  readonly prefix: string
  readonly provider: string
  readonly capacity: number
  readonly refillRate: number
}

export type Request =
  | {
    readonly id: number
    readonly type: "run"
    readonly startAt: number
    readonly durationMs: number
    readonly fibers: number
  }
  | { readonly id: number; readonly type: "scale"; readonly scale: number }
  | {
    readonly id: number
    readonly type: "report"
    readonly coordinatorId: string
    readonly level: "ok" | "soft" | "hard"
    readonly scale: number
  }
  | { readonly id: number; readonly type: "state" }
  | { readonly id: number; readonly type: "try" }
  | { readonly id: number; readonly type: "close" }

export type Reply =
  | { readonly type: "ready"; readonly pid: number; readonly version: string }
  | { readonly type: "fatal"; readonly error: string }
  | { readonly id: number; readonly type: "error"; readonly error: string }
  | { readonly id: number; readonly type: "run"; readonly grants: Array<number>; readonly failures: Array<string> }
  | { readonly id: number; readonly type: "scale"; readonly before: number; readonly after: number }
  | { readonly id: number; readonly type: "report" }
  | {
    readonly id: number
    readonly type: "state"
    readonly scale: number
    readonly rate: number
    readonly pressure: string
  }
  | { readonly id: number; readonly type: "try"; readonly granted: boolean }
  | { readonly id: number; readonly type: "close" }

const isMain = process.argv[1] !== undefined && import.meta.filename === process.argv[1]

const send = (message: Reply): Promise<void> =>
  new Promise((resolve) => {
    if (process.send === undefined || !process.connected) return resolve()
    process.send(message, undefined, {}, () => resolve())
  })

const main = async (config: WorkerConfig): Promise<void> => {
  const scope = Effect.runSync(Scope.make())
  const layer = RateCoordinator.layerRedis({ prefix: config.prefix }).pipe(
    Layer.provide(NodeRedis.layer({ url: config.url, disableOfflineQueue: true }))
  )
  const context = await Effect.runPromise(
    Layer.buildWithScope(layer, scope).pipe(Effect.provideService(References.MinimumLogLevel, "Warn"))
  )
  const coordinator = Context.get(context, RateCoordinator)
  const levels = Context.get(context, CoordinatorLevels)
  const { provider } = config
  await Effect.runPromise(
    coordinator.registerProvider(provider, { capacity: config.capacity, refillRate: config.refillRate })
  )

  const run = (startAt: number, durationMs: number, fibers: number) =>
    Effect.gen(function*() {
      const grants: Array<number> = []
      const failures: Array<string> = []
      yield* Effect.sleep(Math.max(0, startAt - Date.now()))
      const end = startAt + durationMs
      const loop = Effect.gen(function*() {
        while (Date.now() < end) {
          const exit = yield* Effect.exit(coordinator.acquire(provider))
          if (Exit.isSuccess(exit)) grants.push(Date.now())
          else {
            failures.push(String(exit.cause))
            yield* Effect.sleep(10)
          }
        }
      })
      const running = yield* Effect.forEach(Array.from({ length: fibers }), () => Effect.forkChild(loop))
      yield* Fiber.awaitAll(running)
      return { grants, failures }
    })

  const handle = async (request: Request): Promise<Reply> => {
    switch (request.type) {
      case "run": {
        const { failures, grants } = await Effect.runPromise(run(request.startAt, request.durationMs, request.fibers))
        return { id: request.id, type: "run", grants, failures }
      }
      case "scale": {
        const before = Date.now()
        await Effect.runPromise(coordinator.setBudgetScale(provider, request.scale))
        return { id: request.id, type: "scale", before, after: Date.now() }
      }
      case "report": {
        await Effect.runPromise(levels.report(provider, request.coordinatorId, request.level, request.scale))
        return { id: request.id, type: "report" }
      }
      case "state": {
        const state = await Effect.runPromise(coordinator.state(provider))
        return { id: request.id, type: "state", scale: state.scale, rate: state.rate, pressure: state.pressure }
      }
      case "try": {
        const granted = await Effect.runPromise(coordinator.tryAcquire(provider))
        return { id: request.id, type: "try", granted }
      }
      case "close": {
        await Effect.runPromise(Scope.close(scope, Exit.void))
        await send({ id: request.id, type: "close" })
        process.exit(0)
      }
    }
  }

  process.on("message", (request: Request) => {
    handle(request).then(
      (reply) => send(reply),
      (error) => send({ id: request.id, type: "error", error: String(error) })
    )
  })
  await send({ type: "ready", pid: process.pid, version: process.version })
}

if (isMain) {
  // never outlive the test: a hard deadline, and the parent's death closes the IPC channel
  setTimeout(() => process.exit(3), 60_000).unref()
  process.on("disconnect", () => process.exit(4))
  main(JSON.parse(process.argv[2] ?? "{}") as WorkerConfig).catch(async (error) => {
    await send({ type: "fatal", error: String(error) })
    process.exit(2)
  })
}
