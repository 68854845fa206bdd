/**
 * A histogram kept as plain numbers on the hot path and turned into Effect's
 * histogram state when a scrape reads it.
 *
 * @internal
 */

/** @internal */
export interface Histogram {
  /** Observations per boundary (not cumulative). */
  readonly buckets: Uint32Array
  count: number
  sum: number
  min: number
  max: number
}

/** @internal */
export const make = (boundaries: ReadonlyArray<number>): Histogram => ({
  buckets: new Uint32Array(boundaries.length),
  count: 0,
  sum: 0,
  min: Infinity,
  max: 0
})

/** @internal */
export const observe = (h: Histogram, boundaries: ReadonlyArray<number>, value: number): void => {
  let i = 0
  while (i < boundaries.length && value > boundaries[i]!) i++
  if (i < boundaries.length) h.buckets[i]!++
  h.count++
  h.sum += value
  if (value < h.min) h.min = value
  if (value > h.max) h.max = value
}

/**
 * The state a scrape reads: cumulative buckets, plus `zeros` observations of
 * 0 counted without being stored (immediate grants waited 0 s).
 *
 * @internal
 */
export const state = (h: Histogram | undefined, boundaries: ReadonlyArray<number>, zeros = 0) => {
  let cumulative = zeros
  const buckets = boundaries.map((boundary, i): [number, number] => {
    cumulative += h?.buckets[i] ?? 0
    return [boundary, cumulative]
  })
  return {
    buckets,
    count: zeros + (h?.count ?? 0),
    sum: h?.sum ?? 0,
    min: zeros > 0 || h === undefined || h.count === 0 ? 0 : h.min,
    max: h?.max ?? 0
  }
}
