/**
 * The public API report: every export of the package's entry point with its
 * type, as API Extractor renders it, committed in
 * `api-report/market-data-pipeline.api.md`.
 *
 *   npm run api-report            rewrite the report from the sources (after a deliberate change)
 *   npm run api-report -- --check fail, showing the difference, when the sources' API is not the report's
 *
 * The declarations are emitted from the sources with the build's compiler
 * options into test/output/api/dts (not committed); `test/docs/ApiReport.test.ts`
 * runs the check, so CI fails on any change of the public surface that the
 * report does not show.
 */
import { Extractor, ExtractorConfig } from "@microsoft/api-extractor"
import { execFileSync } from "node:child_process"
import { readFileSync, rmSync } from "node:fs"
import { join } from "node:path"

const root = new URL("../", import.meta.url).pathname
const check = process.argv.includes("--check")

rmSync(join(root, "test/output/api"), { recursive: true, force: true })
execFileSync(process.execPath, [
  join(root, "node_modules/typescript/bin/tsc"),
  "-p",
  join(root, "tsconfig.build.json"),
  "--emitDeclarationOnly",
  "--declarationMap",
  "false",
  "--outDir",
  join(root, "test/output/api/dts")
], { cwd: root, stdio: "inherit" })

const config = ExtractorConfig.loadFileAndPrepare(join(root, "api-extractor.json"))
const result = Extractor.invoke(config, { localBuild: !check, showVerboseMessages: false })
const report = config.reportConfigs[0]!
const committed = join(config.reportFolder, report.fileName)
const current = join(config.reportTempFolder, report.fileName)

if (!result.succeeded) {
  if (check && result.apiReportChanged) {
    const diff = (() => {
      try {
        return execFileSync("diff", ["-u", committed, current], { encoding: "utf8" })
      } catch (error) {
        return (error as { stdout?: string }).stdout ?? ""
      }
    })()
    console.error(diff)
    console.error(
      `The public API differs from ${committed.slice(root.length)} (the lines above: - report, + sources).\n` +
        "If the change is deliberate, run `npm run api-report`, commit the report and note the change in CHANGELOG.md."
    )
  }
  process.exit(1)
}
if (!check) console.log(`${committed.slice(root.length)}: ${readFileSync(committed, "utf8").split("\n").length} lines`)
