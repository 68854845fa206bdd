/**
 * A small benchmark harness: each case runs in timed rounds after a warm-up,
 * and reports the median round in operations per second.
 */
export interface Case {
  readonly name: string
  /** Runs the operation `n` times; returns something so the work is not dead code. */
  readonly run: (n: number) => unknown
}

export interface Measured {
  readonly name: string
  readonly opsPerSecond: number
}

let sink: unknown

const round = (c: Case, n: number): number => {
  const start = performance.now()
  sink = c.run(n)
  return (performance.now() - start) / 1000
}

export const measure = (c: Case, options: { readonly seconds?: number; readonly rounds?: number } = {}): Measured => {
  const rounds = options.rounds ?? 7
  const target = (options.seconds ?? 1.5) / rounds
  let n = 1000
  // warm up and size a round to the target duration
  for (;;) {
    const elapsed = round(c, n)
    if (elapsed >= target / 2) break
    n *= 2
  }
  const rates: Array<number> = []
  for (let i = 0; i < rounds; i++) rates.push(n / round(c, n))
  rates.sort((a, b) => a - b)
  return { name: c.name, opsPerSecond: rates[Math.floor(rates.length / 2)]! }
}

export const consumed = (): unknown => sink

export const formatRate = (opsPerSecond: number): string =>
  opsPerSecond >= 1e6 ? `${(opsPerSecond / 1e6).toFixed(2)}M/s` : `${(opsPerSecond / 1e3).toFixed(0)}k/s`

export const table = (title: string, rows: ReadonlyArray<readonly [string, string, ...Array<string>]>): void => {
  console.log(`\n## ${title}`)
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? "").length)))
  for (const row of rows) console.log(row.map((cell, i) => (cell ?? "").padEnd(widths[i]!)).join("  "))
}
