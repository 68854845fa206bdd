/**
 * A shared bucket's timeline as one process sees it: where the frontier (the
 * ticket due now) stood at a local time, how fast it moves, and the tickets
 * given back ahead of it, which it skips. Pure arithmetic, so it is tested
 * with plain numbers; the process sleeps the durations it computes.
 *
 * @internal
 */

/** @internal */
export interface Timeline {
  readonly gen: string
  readonly frontier: number
  /** Tokens per ms; 0 while paused. */
  readonly rate: number
  /** Local ms at which `frontier` held. */
  readonly at: number
  readonly epoch: number
  /** Tickets given back ahead of the frontier, `[start, size]` by start. */
  readonly holes: ReadonlyArray<readonly [start: number, size: number]>
}

/** `start:size,…` as the scripts write it. @internal */
export const parseHoles = (text: string): ReadonlyArray<readonly [number, number]> => {
  if (text === "") return []
  return text.split(",").map((hole) => {
    const [start, size] = hole.split(":")
    return [Number(start), Number(size)] as const
  })
}

/** The frontier at local time `at`. @internal */
export const frontierAt = (tl: Timeline, at: number): number => tl.frontier + (at - tl.at) * tl.rate

/**
 * Where the reservation of `tokens` ending at ticket `end` stands on the
 * frontier's line: the holes wholly before it are skipped, so it is due once
 * the frontier reaches this.
 *
 * @internal
 */
export const position = (tl: Timeline, end: number, tokens: number): number => {
  let skipped = 0
  for (const [start, size] of tl.holes) {
    if (start + size <= end - tokens + slack(end)) skipped += size
    else break
  }
  return end - skipped
}

/** Float slack for ticket comparisons at the magnitude of `x`. @internal */
export const slack = (x: number): number => Math.max(1e-6, Math.abs(x) * 1e-12)

/** Whether that reservation is due at local time `at`. @internal */
export const isDue = (tl: Timeline, end: number, tokens: number, at: number): boolean => {
  const frontier = frontierAt(tl, at)
  return position(tl, end, tokens) <= frontier + slack(frontier)
}

/** Milliseconds from local time `at` until that reservation is due; undefined while paused. @internal */
export const dueIn = (tl: Timeline, end: number, tokens: number, at: number): number | undefined => {
  if (isDue(tl, end, tokens, at)) return 0
  if (tl.rate <= 0) return undefined
  return (position(tl, end, tokens) - frontierAt(tl, at)) / tl.rate
}
