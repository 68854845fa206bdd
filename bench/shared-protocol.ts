/**
 * What the `shared` benchmark's parent (bench/shared.ts) and its worker
 * processes (bench/shared-worker.ts) say to each other over the IPC channel.
 */

/** Only this Redis is ever contacted. */
export const redisHost = "127.0.0.1"
export const redisPort = 6379
export const redisUrl = `redis://${redisHost}:${redisPort}`

/** "Effectively unlimited": far more than any case can take in 5 s, and small enough for every library's numbers. */
export const unlimited = 1e9

export type CaseId = "floor" | "rlf-node-redis" | "rlf-ioredis" | "bottleneck" | "effect" | "ours"
export type Mode = "throughput" | "accuracy"

export interface WorkerConfig {
  readonly caseId: CaseId
  readonly mode: Mode
  /** Unique per case and run: every key (and channel) the case creates contains it. */
  readonly token: string
  /** Concurrent acquirers in this process. */
  readonly concurrency: number
  readonly seconds: number
  /** The worker exits by itself this long after it started, whatever happens. */
  readonly hardDeadlineMs: number
}

export type ToWorker = { readonly type: "go"; readonly at: number }

export type ToParent =
  | { readonly type: "ready" }
  | { readonly type: "skip"; readonly reason: string }
  | { readonly type: "failed"; readonly message: string }
  | {
    readonly type: "result"
    /** Grants completed in [at, at + seconds). */
    readonly grants: number
    readonly errors: number
    readonly firstError?: string
    /** Epoch ms of every grant in the window (accuracy mode only). */
    readonly stamps: ReadonlyArray<number>
  }
