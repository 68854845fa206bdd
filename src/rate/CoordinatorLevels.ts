/**
 * Each store coordinator's level, kept where every process sees it. With
 * shared buckets, a consumer group hands each coordinator's event to one
 * process; the level must still throttle the provider in every process. The
 * feedback handler reports each coordinator's level and the scale its
 * policy gives it here, and the bucket runs at the smallest such scale (the
 * worst level across all coordinators, whichever process heard them).
 *
 * Provided by `RateCoordinator.layerRedis`; without it, the handler applies
 * the worst level it has seen itself, through the `RateController`.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { BackpressureLevel } from "../contracts/BackpressureLevel.ts"

/**
 * Where coordinators' levels are shared between processes.
 *
 * @since 0.1.0
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
