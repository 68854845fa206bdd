/**
 * What the Pulse consumer and publisher both do with the stream: the
 * metrics' `stream` label, creating a consumer group (one that exists
 * already is fine) and the capped, jittered backoff between retries.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Redis from "effect/persistence/Redis"

/** The `stream` label of every Pulse metric: Python's constant, without the namespace. @internal */
export const STREAM_LABEL = "telemetry.feedback"

const isBusyGroup = (error: Redis.RedisError): boolean => String(error.cause).includes("BUSYGROUP")

/**
 * `XGROUP CREATE … MKSTREAM` of `group` on `key`, reading from `start`; a
 * group that exists already (BUSYGROUP) is not an error.
 *
 * @internal
 */
export const createGroup = (
  send: Redis.Redis["Service"]["send"],
  key: string,
  group: string,
  start: string
): Effect.Effect<void, Redis.RedisError> =>
  send("XGROUP", "CREATE", key, group, start, "MKSTREAM").pipe(
    Effect.asVoid,
    Effect.catchIf(isBusyGroup, () => Effect.void)
  )

/**
 * The wait before retry `attempt` (0 first): `baseMillis` doubled per
 * attempt up to `2 ** maxDoublings` times and at most `capMillis`, plus up
 * to `baseMillis` of jitter.
 *
 * @internal
 */
export const backoff = (
  attempt: number,
  baseMillis: number,
  maxDoublings: number,
  capMillis: number
): Duration.Duration =>
  Duration.millis(
    Math.min(baseMillis * 2 ** Math.min(attempt, maxDoublings), capMillis) + Math.floor(Math.random() * baseMillis)
  )
