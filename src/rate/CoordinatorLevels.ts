/**
 * Each store coordinator's backpressure level, kept where every process
 * sees it. With shared buckets, a consumer group hands each coordinator's
 * event to one process only, yet the level must throttle the provider in
 * every process: the feedback handler reports here each coordinator's level
 * and the scale its policy gives it, and the shared bucket runs at the
 * smallest such scale (the worst level, whichever process heard it).
 *
 * You rarely call it yourself: `RateCoordinator.layerRedis` provides it and
 * the feedback handler uses it when it is in context. Without it (the
 * in-memory `RateCoordinator.layer`), the handler applies the worst level it
 * has seen itself, through the `RateController`. Operators call `clear` to
 * drop a coordinator that died while holding the provider down.
 *
 * Gotchas:
 * - A level persists until its coordinator reports again, or is forgotten or
 *   cleared; the keys outlive processes by the layer's `keyTtl`.
 * - `forget` drops only this process's own report; `clear` drops the
 *   coordinator for every process.
 * - A level that is not `ok`/`soft`/`hard`, or a scale outside [0, 1], is
 *   logged and ignored; so is a provider not registered in this process.
 *
 * @since 0.2.0
 * @module
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { BackpressureLevel } from "../contracts/BackpressureLevel.ts"

/**
 * Where coordinators' levels are shared between processes: one process
 * reports a level, every process's bucket of that provider runs at the
 * smallest scale reported.
 *
 * @example
 * ```ts
 * import * as NodeRedis from "@effect/platform-node/NodeRedis"
 * import { Context, Effect, Layer } from "effect"
 * import { CoordinatorLevels, RateCoordinator } from "market-data-pipeline"
 *
 * const shared = () => RateCoordinator.layerRedis({ prefix: `example-${process.pid}`, keyTtl: "10 seconds" })
 *
 * const program = Effect.gen(function*() {
 *   const a = yield* Layer.build(shared())
 *   const b = yield* Layer.build(shared())
 *   yield* Context.get(a, RateCoordinator).registerProvider("ibkr", { refillRate: 100 })
 *   yield* Context.get(b, RateCoordinator).registerProvider("ibkr", { refillRate: 100 })
 *   // process a heard the store's coordinator at "hard"; its policy says scale 0.25
 *   yield* Context.get(a, CoordinatorLevels).report("ibkr", "bars-coord", "hard", 0.25)
 *   const seen = yield* Context.get(b, RateCoordinator).state("ibkr")
 *   console.log(seen.pressure, seen.rate)
 *   // an operator drops the coordinator for every process
 *   console.log(yield* Context.get(b, CoordinatorLevels).clear("ibkr", "bars-coord"))
 *   console.log((yield* Context.get(a, RateCoordinator).state("ibkr")).rate)
 * })
 *
 * Effect.runPromise(program.pipe(
 *   Effect.scoped,
 *   Effect.provide(NodeRedis.layer({ url: "redis://127.0.0.1:6379", disableOfflineQueue: true }))
 * ))
 * // → hard 25
 * // → true
 * // → 100
 * ```
 *
 * @since 0.2.0
 * @category services
 */
export class CoordinatorLevels extends Context.Service<CoordinatorLevels, {
  /** `coordinatorId` holds `provider` at `level`, asking for `scale` (in [0, 1]). */
  readonly report: (
    provider: string,
    coordinatorId: string,
    level: BackpressureLevel,
    scale: number
  ) => Effect.Effect<void>
  /**
   * This process's report of `coordinatorId` no longer counts (its level
   * expired here, or it left this process's table); a newer report of
   * another process stays.
   */
  readonly forget: (provider: string, coordinatorId: string) => Effect.Effect<void>
  /** An operator clears `coordinatorId` for every process; true if a level was stored. */
  readonly clear: (provider: string, coordinatorId: string) => Effect.Effect<boolean>
}>()("market-data-pipeline/CoordinatorLevels") {}
