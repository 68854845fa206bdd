/**
 * Helpers of the dashboard/rules test: the metric names a PromQL expression
 * reads, and the metric families of a Prometheus text exposition.
 */

// PromQL words that look like identifiers but are not metric names
const keywords = new Set([
  "and",
  "or",
  "unless",
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "offset",
  "bool",
  "inf",
  "nan",
  "start",
  "end",
  "atan2"
])

/**
 * The metric names `expr` selects, each once, in order of appearance.
 * Removed before looking: comments, string literals, label matchers `{…}`,
 * range and subquery brackets `[…]`, the label lists of `by`, `without`,
 * `on`, `ignoring`, `group_left` and `group_right`, an aggregation written
 * with its clause first (`sum by (le) (…)`), and Grafana variables
 * (`$provider`, `${provider}`, `$__rate_interval`). What is left, an
 * identifier not followed by `(` (a function) and not a keyword, is a metric
 * name; one that starts inside a number (`0.95`, `1e3`, `5m`) is not.
 */
export const metricNames = (expr: string): Array<string> => {
  const stripped = expr
    .replace(/#[^\n]*/g, " ")
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, " ")
    .replace(/\$\{[^}]*\}|\$\w+/g, " ")
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, " $1 ")
    // an aggregation with its clause first: `sum by (le) (…)`
    .replace(/(?<![\w:])[a-zA-Z_]\w*\s+(by|without)(?![\w:])/gi, " ")
  const names: Array<string> = []
  for (const match of stripped.matchAll(/(?<![\w:.])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()/g)) {
    const name = match[1]!
    if (!keywords.has(name.toLowerCase()) && !names.includes(name)) names.push(name)
  }
  return names
}

/** The metric a Grafana `label_values(metric{…}, label)` variable query reads, if it is one. */
export const labelValuesMetric = (query: string): string | undefined =>
  /^\s*label_values\(\s*([a-zA-Z_:][\w:]*)/.exec(query)?.[1]

/** The families of a Prometheus text exposition: name → type, from its `# TYPE` lines. */
export const scrapeFamilies = (text: string): Map<string, string> =>
  new Map(Array.from(text.matchAll(/^# TYPE (\S+) (\S+)$/gm), (m) => [m[1]!, m[2]!] as const))

/**
 * The family `name` belongs to in `families`: itself, or for a histogram's
 * `_bucket`, `_sum` and `_count` series the histogram (a summary's `_sum` and
 * `_count` too); undefined when there is none.
 */
export const familyOf = (families: ReadonlyMap<string, string>, name: string): string | undefined => {
  if (families.has(name)) return name
  const base = /^(.+)_(bucket|sum|count)$/.exec(name)
  if (base === null) return undefined
  const type = families.get(base[1]!)
  if (type === "histogram" || (type === "summary" && base[2] !== "bucket")) return base[1]
  return undefined
}
