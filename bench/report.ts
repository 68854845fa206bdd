/**
 * The benchmark results as data, and their renderings: every suite records
 * its measures as {@link Row}s (our figure next to its alternatives: floors,
 * peers measured in the same process, and the Python reference's figures,
 * `quoted` and never measured here), and every table, in the terminal or in
 * docs/performance.md, is rendered from those rows alone. `npm run bench -- --json`
 * prints a {@link BenchDocument}; `bench/readme.ts` turns one into the
 * performance page (docs/performance.md). Pure functions, no clock: the same document
 * always renders to the same text.
 */

/** How a figure is formatted; `text` is a figure that is not a number (a status, a list). */
export type Unit = "ops/s" | "µs" | "ms" | "s" | "%" | "MiB" | "KiB" | "B" | "count" | "ratio" | "text"

/** What an alternative is: a floor (the least the work can cost), a peer library, or a quoted figure. */
export type Kind = "floor" | "peer" | "quoted"

/**
 * A target, on our figure (`on: "value"`) or on ours ÷ an alternative (`on: "ratio"`): the figure
 * must be `≥`, `>`, `≤` or `<` `bound`, or `within` `bound`–`upper`. `met` is null when nothing
 * was measured.
 */
export interface Target {
  readonly on: "value" | "ratio"
  readonly op: "≥" | ">" | "≤" | "<" | "within"
  readonly bound: number
  readonly upper?: number
  readonly met: boolean | null
}

export interface Alternative {
  readonly name: string
  readonly kind: Kind
  readonly value: number | string | null
  readonly unit: Unit
  /** Ours ÷ this, when both are numbers in the same unit. */
  readonly ratio: number | null
  readonly target?: Target
}

export interface Row {
  readonly suite: string
  /** The title of the table the row belongs to. */
  readonly table: string
  readonly measure: string
  /** In a grid table (rows × columns of figures, no alternatives): the column, and the first column's header. */
  readonly column?: string
  readonly rowHeader?: string
  readonly value: number | string | null
  readonly unit: Unit
  readonly alternatives: ReadonlyArray<Alternative>
  readonly target?: Target
}

export interface Note {
  readonly suite: string
  readonly text: string
}

export interface Machine {
  readonly node: string
  readonly os: string
  readonly cpu: string
  readonly cores: number
  readonly memoryBytes: number
  readonly date: string
}

export interface BenchDocument {
  readonly format: "market-data-pipeline/bench@1"
  readonly command: string
  readonly machine: Machine
  readonly suites: ReadonlyArray<string>
  readonly rows: ReadonlyArray<Row>
  readonly notes: ReadonlyArray<Note>
}

/** The title of the summary table. */
export const summaryTitle = "market-data-pipeline vs alternatives"

/** Whether `figure` meets a target of `op` `bound` (`upper`). */
export const meets = (
  figure: number | null,
  op: Target["op"],
  bound: number,
  upper?: number
): boolean | null => {
  if (figure === null || !Number.isFinite(figure)) return null
  switch (op) {
    case "≥":
      return figure >= bound
    case ">":
      return figure > bound
    case "≤":
      return figure <= bound
    case "<":
      return figure < bound
    case "within":
      return figure >= bound && figure <= (upper ?? bound)
  }
}

export const formatRate = (opsPerSecond: number): string =>
  opsPerSecond >= 1e6
    ? `${(opsPerSecond / 1e6).toFixed(2)}M/s`
    : opsPerSecond >= 1e4
    ? `${(opsPerSecond / 1e3).toFixed(0)}k/s`
    : opsPerSecond >= 1e3
    ? `${(opsPerSecond / 1e3).toFixed(1)}k/s`
    : `${opsPerSecond.toFixed(0)}/s`

/** A figure with its unit, as the tables show it; `—` for none. */
export const formatValue = (value: number | string | null, unit: Unit): string => {
  if (value === null) return "—"
  if (typeof value === "string") return value
  switch (unit) {
    case "ops/s":
      return formatRate(value)
    case "µs":
      return `${value.toFixed(2)} µs`
    case "ms":
      return `${value.toFixed(2)} ms`
    case "s":
      return `${value.toFixed(2)} s`
    case "%":
      return `${value.toFixed(2)} %`
    case "MiB":
      return `${value.toFixed(2)} MiB`
    case "KiB":
      return `${value.toFixed(0)} KiB`
    case "B":
      return `${value.toFixed(0)} B`
    case "count":
      return value.toLocaleString("en-US")
    case "ratio":
      return value.toFixed(2)
    case "text":
      return String(value)
  }
}

/** A target as text: `≥ 0.85`, `< 5 µs`, `99.9–100.1 %`. */
export const formatTarget = (target: Target, unit: Unit): string => {
  const suffix = target.on === "ratio" || unit === "count" || unit === "ratio" || unit === "text" ? "" : ` ${unit}`
  const figure = (n: number) => unit === "ops/s" && target.on === "value" ? formatRate(n) : String(n)
  return target.op === "within"
    ? `${figure(target.bound)}–${figure(target.upper ?? target.bound)}${unit === "ops/s" ? "" : suffix}`
    : `${target.op} ${figure(target.bound)}${unit === "ops/s" ? "" : suffix}`
}

const mark = (target: Target): string => target.met === null ? "—" : target.met ? "✓" : "✗"

const targetCell = (target: Target | undefined, unit: Unit): string =>
  target === undefined ? "" : `${formatTarget(target, unit)} ${mark(target)}`

const kindLabel: Record<Kind, string> = { floor: "floor", peer: "peer", quoted: "quoted" }

/** The tables of `rows`, in the order they were first recorded. */
export const tablesOf = (rows: ReadonlyArray<Row>): Array<{ readonly title: string; readonly rows: Array<Row> }> => {
  const tables: Array<{ readonly title: string; readonly rows: Array<Row> }> = []
  for (const row of rows) {
    const found = tables.find((t) => t.title === row.table)
    if (found === undefined) tables.push({ title: row.table, rows: [row] })
    else found.rows.push(row)
  }
  return tables
}

/**
 * The cells of one table, header first. A grid table (rows with a `column`) is pivoted back to
 * rows × columns; any other table lists each measure with our figure, then each alternative
 * below it with its figure and ours ÷ it, and the targets, marked ✓ or ✗.
 */
export const tableCells = (rows: ReadonlyArray<Row>): Array<Array<string>> => {
  if (rows.length > 0 && rows[0]!.column !== undefined) {
    // rows are recorded line by line, column by column: a line starts again at the first column
    // (labels may repeat: one line per round)
    const columns: Array<string> = []
    for (const row of rows) if (!columns.includes(row.column!)) columns.push(row.column!)
    const lines: Array<Array<string>> = []
    for (const row of rows) {
      if (row.column === columns[0] || lines.length === 0) lines.push([row.measure, ...columns.map(() => "")])
      lines.at(-1)![columns.indexOf(row.column!) + 1] = formatValue(row.value, row.unit)
    }
    return [[rows[0]!.rowHeader ?? "", ...columns], ...lines]
  }
  const withRatios = rows.some((row) => row.alternatives.length > 0)
  const withTargets = rows.some((row) => row.target !== undefined || row.alternatives.some((a) => a.target))
  const cells: Array<Array<string>> = []
  for (const row of rows) {
    cells.push([row.measure, formatValue(row.value, row.unit), "", "", targetCell(row.target, row.unit)])
    for (const alt of row.alternatives) {
      cells.push([
        `  vs ${alt.name}`,
        formatValue(alt.value, alt.unit),
        kindLabel[alt.kind],
        alt.ratio === null ? "—" : alt.ratio.toFixed(2),
        targetCell(alt.target, alt.unit)
      ])
    }
  }
  const header = ["measure", "figure", "kind", "ours ÷ it", "target"]
  const keep = [true, true, withRatios, withRatios, withTargets]
  return [header, ...cells].map((line) => line.filter((_, i) => keep[i]))
}

/** Every target of `rows`: the measure, ours, what it is compared with, the ratio, the target and ✓/✗. */
export const summaryCells = (rows: ReadonlyArray<Row>): Array<Array<string>> => {
  const cells: Array<Array<string>> = [["suite", "measure", "ours", "compared with", "ratio", "target", "met"]]
  for (const row of rows) {
    const ours = formatValue(row.value, row.unit)
    if (row.target !== undefined) {
      cells.push([row.suite, row.measure, ours, "", "", formatTarget(row.target, row.unit), mark(row.target)])
    }
    for (const alt of row.alternatives) {
      if (alt.target === undefined) continue
      cells.push([
        row.suite,
        row.measure,
        ours,
        `${alt.name}: ${formatValue(alt.value, alt.unit)}`,
        alt.ratio === null ? "—" : alt.ratio.toFixed(2),
        `ours ÷ it ${formatTarget(alt.target, alt.unit)}`,
        mark(alt.target)
      ])
    }
  }
  return cells
}

/** How many targets `rows` have, and how many are met. */
export const targetCount = (rows: ReadonlyArray<Row>): { readonly met: number; readonly total: number } => {
  const targets = rows.flatMap((row) => [row.target, ...row.alternatives.map((a) => a.target)])
    .filter((t): t is Target => t !== undefined)
  return { met: targets.filter((t) => t.met === true).length, total: targets.length }
}

/** The machine in one line: node, cpu, cores, memory, os, date. */
export const machineLine = (machine: Machine): string =>
  `node ${machine.node}, cpu ${machine.cpu}, ${machine.cores} cores, ` +
  `${(machine.memoryBytes / 1024 ** 3).toFixed(1)} GiB, ${machine.os}, ${machine.date}`

/** A table for the terminal: its title, then columns padded to their widest cell. */
export const renderText = (title: string, cells: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((line) => (line[i] ?? "").length)))
  const lines = cells.map((line) => line.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd())
  return [`\n## ${title}`, ...lines].join("\n")
}

const escapeCell = (cell: string): string => cell.replace(/\|/g, "\\|").replace(/^ +/, (s) => "&nbsp;".repeat(s.length))

/** A Markdown table. */
export const renderMarkdown = (cells: ReadonlyArray<ReadonlyArray<string>>): string =>
  [
    `| ${cells[0]!.map(escapeCell).join(" | ")} |`,
    `|${cells[0]!.map(() => "---").join("|")}|`,
    ...cells.slice(1).map((line) => `| ${line.map(escapeCell).join(" | ")} |`)
  ].join("\n")

/** The performance page's generated section for `doc`: machine, command, summary, then every table of the run. */
export const renderReadmeSection = (doc: BenchDocument): string => {
  const { met, total } = targetCount(doc.rows)
  const lines = [
    `Generated by \`bench/readme.ts\` from one run of \`${doc.command}\` (suites: ${doc.suites.join(", ")}).`,
    `Machine: ${machineLine(doc.machine)}.`,
    "Every alternative was measured in the same process, in the same run, except the Python reference's",
    "figures, marked `quoted` (Python 3.11, measured on this machine kind).",
    "To reproduce, and to regenerate this section from the result:",
    "",
    "```sh",
    "npm run -s bench -- --json > bench/last-run.json",
    "npx node bench/readme.ts bench/last-run.json",
    "```",
    "",
    `### ${summaryTitle} (${met} of ${total} targets met)`,
    "",
    renderMarkdown(summaryCells(doc.rows)),
    "",
    "<details><summary>Every table of this run</summary>",
    ""
  ]
  for (const table of tablesOf(doc.rows)) {
    lines.push(`#### ${table.rows[0]!.suite}: ${table.title}`, "", renderMarkdown(tableCells(table.rows)), "")
    const notes = doc.notes.filter((n) => n.suite === table.rows[0]!.suite && lastTableOf(doc, n) === table.title)
    if (notes.length > 0) lines.push(...notes.map((n) => `- ${n.text}`), "")
  }
  const loose = doc.notes.filter((n) => lastTableOf(doc, n) === undefined)
  if (loose.length > 0) lines.push(...loose.map((n) => `- ${n.suite}: ${n.text}`))
  if (lines.at(-1) !== "") lines.push("")
  lines.push("</details>")
  return lines.join("\n")
}

/** The last table of a note's suite: notes are listed after it. */
const lastTableOf = (doc: BenchDocument, note: Note): string | undefined =>
  doc.rows.findLast((row) => row.suite === note.suite)?.table

/** The markers of the performance page's generated section. */
export const begin = "<!-- bench:begin -->"
export const end = "<!-- bench:end -->"

/** `readme` with the text between the markers replaced by `section`; throws when a marker is missing. */
export const replaceSection = (readme: string, section: string): string => {
  const from = readme.indexOf(begin)
  const to = readme.indexOf(end)
  if (from < 0 || to < from) throw new Error(`docs/performance.md: the markers ${begin} … ${end} are missing`)
  return `${readme.slice(0, from + begin.length)}\n${section}\n${readme.slice(to)}`
}

/** The text between the markers of `readme`; throws when a marker is missing. */
export const sectionOf = (readme: string): string => {
  const from = readme.indexOf(begin)
  const to = readme.indexOf(end)
  if (from < 0 || to < from) throw new Error(`docs/performance.md: the markers ${begin} … ${end} are missing`)
  return readme.slice(from + begin.length + 1, to - 1)
}

/** The document in `text`: from its first line that opens an object. */
export const parseDocument = (text: string): BenchDocument => {
  const start = text.search(/^\{/m)
  if (start < 0) throw new Error("no JSON document (run: npm run -s bench -- --json > FILE)")
  const doc = JSON.parse(text.slice(start)) as BenchDocument
  if (doc.format !== "market-data-pipeline/bench@1") throw new Error(`not a bench document: ${String(doc.format)}`)
  return doc
}
