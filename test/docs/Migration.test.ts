/**
 * The migration guide (docs/migrating-from-python.md) stays complete:
 *
 * - every environment variable and every flag the service defines (from the
 *   `Setting` definitions of `src/service/Settings.ts`, the retired variables
 *   included) is named in it;
 * - every metric of `metricDefinitionList` is named in it;
 * - every Python name of the reference (its settings and metrics tables,
 *   §7–8; its gaps, §13; the classes, methods, stream names and envelope
 *   fields users know) has a table row that maps it. The Python names come
 *   from test/fixtures/python-names.json, extracted once from the reference
 *   (`python-reference.md`, not part of this repository), so CI needs no copy
 *   of it.
 *
 * Each failure lists what is missing. The checks are pure functions of the
 * guide's text; the last test removes rows from it and expects them reported,
 * so a check that could never fail would be noticed.
 */
import { assert, describe, it } from "@effect/vitest"
import { metricDefinitionList, ProviderSettings } from "market-data-pipeline"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import type { Setting, SettingFlag } from "../../src/runtime/Setting.ts"
import * as Settings from "../../src/service/Settings.ts"

const root = new URL("../../", import.meta.url).pathname
const guidePath = "docs/migrating-from-python.md"
const guide = readFileSync(join(root, guidePath), "utf8")

interface PythonSetting {
  readonly section: string
  readonly owner: string
  readonly field: string
  readonly env?: string
}
interface PythonNames {
  readonly settings: ReadonlyArray<PythonSetting>
  readonly metrics: ReadonlyArray<{ readonly section: string; readonly name: string; readonly kind: string }>
  readonly gaps: ReadonlyArray<{ readonly number: number; readonly title: string }>
  readonly api: ReadonlyArray<{ readonly section: string; readonly name: string }>
  readonly pulse: ReadonlyArray<{ readonly section: string; readonly name: string }>
}
const python: PythonNames = JSON.parse(readFileSync(join(root, "test/fixtures/python-names.json"), "utf8"))

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** Our settings: every one `run` reads, the token, and the retired variables. */
const ours: ReadonlyArray<Setting<unknown>> = [...Object.values(Settings.all), Settings.token]
const envs = [...ours.map((s) => s.env), ...ProviderSettings.retired.map((r) => r.env)]
const flags = ours.flatMap((s) => s.flag === undefined ? [] : [`--${(s.flag as SettingFlag).name}`])

/** The guide's table rows (not the header separators), each as its cells. */
const rowsOf = (text: string): Array<{ readonly line: string; readonly cells: Array<string> }> =>
  text.split("\n")
    .filter((line) => line.startsWith("|") && !/^\|[\s|:-]+\|$/.test(line))
    .map((line) => ({
      line,
      cells: line.replace(/\\\|/g, "\u0000").split("|").slice(1, -1).map((c) => c.replace(/\u0000/g, "|").trim())
    }))

/** A row that maps a Python name: its other cells say something. */
const maps = (cells: ReadonlyArray<string>) => cells.slice(1).some((cell) => cell !== "")

/** `name` as a code span, or the end of a dotted one (`RateCoordinator.acquire(…)`). */
const codeRef = (name: string) => new RegExp("`(?:[\\w.:]*[.:])?" + escape(name) + "(?![\\w-])")
/** `name` as the start of a code span (`--port`, `MDP_FB_ENABLE_FEEDBACK=false`). */
const codeStart = (name: string) => new RegExp("`" + escape(name) + "(?![\\w-])")
/** Exactly `name`, or `name{labels}`. */
const exactCode = (name: string) => new RegExp("`" + escape(name) + "(?:\\{[^`]*\\})?`")

const missingOurs = (text: string) => ({
  envs: envs.filter((env) => !codeStart(env).test(text)),
  flags: flags.filter((flag) => !codeStart(flag).test(text)),
  metrics: metricDefinitionList.map((d) => d.name).filter((name) => !codeStart(name).test(text))
})

const missingPythonSettings = (text: string) => {
  const rows = rowsOf(text)
  return python.settings.filter((s) =>
    !rows.some(({ cells, line }) =>
      exactCode(s.field).test(line) &&
      (s.env === undefined ? line.includes(s.owner) : exactCode(s.env).test(line)) &&
      maps(cells)
    )
  ).map((s) => `§${s.section} ${s.owner}.${s.field}${s.env === undefined ? "" : ` (${s.env})`}`)
}

const missingPythonMetrics = (text: string) => {
  const rows = rowsOf(text)
  return python.metrics.filter((m) => !rows.some(({ cells }) => exactCode(m.name).test(cells[0] ?? "") && maps(cells)))
    .map((m) => `§${m.section} ${m.name}`)
}

const normalize = (text: string) => text.replace(/\s+/g, " ").toLowerCase()

const missingGaps = (text: string) => {
  const rows = rowsOf(text)
  return python.gaps.filter((gap) =>
    !rows.some(({ cells }) =>
      cells[0] === `13.${gap.number}` &&
      normalize(cells[1] ?? "") === normalize(gap.title) &&
      cells.slice(2).every((cell) => cell !== "")
    )
  ).map((gap) => `§13.${gap.number} ${gap.title}`)
}

const missingNames = (text: string, names: ReadonlyArray<{ readonly section: string; readonly name: string }>) => {
  const rows = rowsOf(text)
  return names.filter(({ name }) => !rows.some(({ cells }) => codeRef(name).test(cells[0] ?? "") && maps(cells)))
    .map(({ name, section }) => `§${section} ${name}`)
}

/** Fails naming every missing item (vitest would abbreviate a long array). */
const none = (missing: ReadonlyArray<string>, what: string) =>
  assert.deepStrictEqual(missing, [], `${guidePath} ${what}: ${missing.join("; ")}`)

describe(guidePath, () => {
  it("names every environment variable and flag of the service", () => {
    assert.isAbove(envs.length, 40)
    assert.isAbove(flags.length, 20)
    const missing = missingOurs(guide)
    none(missing.envs, "does not name these variables")
    none(missing.flags, "does not name these flags")
  })

  it("names every metric the code defines", () => {
    none(missingOurs(guide).metrics, "does not name these metrics")
  })

  it("maps every Python setting of §7.1-7.5 in a table row", () => {
    assert.isAbove(python.settings.length, 40)
    none(missingPythonSettings(guide), "has no row for these Python settings")
  })

  it("maps every Python metric of §8.1-8.3 in a table row", () => {
    assert.isAbove(python.metrics.length, 30)
    none(missingPythonMetrics(guide), "has no row for these Python metrics")
  })

  it("answers every item of §13, by number and title", () => {
    assert.strictEqual(python.gaps.length, 37)
    assert.deepStrictEqual(python.gaps.map((gap) => gap.number), Array.from({ length: 37 }, (_, i) => i + 1))
    none(missingGaps(guide), "has no row for these §13 items")
  })

  it("maps every Python class, method, stream name and envelope field", () => {
    none(missingNames(guide, python.api), "has no row for these Python names")
    none(missingNames(guide, python.pulse), "has no row for these Pulse names")
  })

  it("shows no untested code: only ```ts blocks", () => {
    const langs = guide.split("\n").flatMap((line) => {
      const open = /^```(\S*)/.exec(line)
      return open === null || open[1] === "" ? [] : [open[1]!]
    })
    assert.isAtLeast(langs.length, 2)
    assert.deepStrictEqual(langs.filter((lang) => lang !== "ts"), [], `${guidePath} has blocks no test runs`)
  })

  it("the checks fail when a row is missing, and say which", () => {
    const without = (text: string, needle: string) =>
      text.split("\n").filter((line) => !line.includes(needle)).join("\n")
    assert.include(missingOurs(without(guide, "`MDP_SINK_RATE`")).envs, "MDP_SINK_RATE")
    assert.include(missingOurs(without(guide, "`--sink-rate`")).flags, "--sink-rate")
    assert.include(missingOurs(without(guide, "`pulse_pending_messages")).metrics, "pulse_pending_messages")
    assert.deepStrictEqual(missingPythonSettings(without(guide, "`http_backoff`")), [
      "§7.4 store FeedbackSettings.http_backoff (MDS_FB_HTTP_BACKOFF)"
    ])
    assert.deepStrictEqual(missingPythonMetrics(without(guide, "| `runtime_up{mode}` |")), ["§8.1 runtime_up"])
    assert.deepStrictEqual(missingGaps(without(guide, "| 13.9 |")), ["§13.9 \"Hard = pause\" is false"])
    assert.deepStrictEqual(missingNames(without(guide, "`reset_feedback_bus()`"), python.api), [
      "§6 reset_feedback_bus"
    ])
  })
})
