/**
 * Rate-limits a log line that may repeat on every event (a subscriber that
 * fails on each, events refused by a full table): the first occurrence is
 * logged at once, then at most one line per interval, saying how many were
 * not logged since the previous line. Time comes from the caller's Clock.
 *
 * @internal
 */

/** The default interval: at most one line per 10 s. @internal */
export const defaultIntervalMillis = 10_000

/**
 * Called on every occurrence with the Clock's time in ms: `undefined` when
 * this one is not to be logged, otherwise how many were not logged since the
 * previous line.
 *
 * @internal
 */
export type LogLimit = (now: number) => number | undefined

/** @internal */
export const make = (intervalMillis: number = defaultIntervalMillis): LogLimit => {
  let next = -Infinity
  let suppressed = 0
  return (now) => {
    if (now < next) {
      suppressed++
      return undefined
    }
    next = now + intervalMillis
    const count = suppressed
    suppressed = 0
    return count
  }
}

/** The suffix of a logged line: how many like it were not logged. @internal */
export const suppressedNote = (count: number): string =>
  count === 0 ? "" : ` (${count} more since the previous line, not logged)`
