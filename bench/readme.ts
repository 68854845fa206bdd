/**
 * `npx node bench/readme.ts FILE`: rewrites the generated part of docs/performance.md
 * (between `<!-- bench:begin -->` and `<!-- bench:end -->`) from FILE, the
 * JSON document of one run (`npm run -s bench -- --json > FILE`), and stores
 * that document as bench/last-run.json, from which test/docs/BenchReadme.test.ts
 * checks that the section is exactly what this script generates. Lines before
 * the document (npm's banner, when run without `-s`) are skipped.
 */
import { readFileSync, writeFileSync } from "node:fs"
import { parseDocument, renderReadmeSection, replaceSection } from "./report.ts"

const root = new URL("../", import.meta.url)
const readmePath = new URL("docs/performance.md", root)
const lastRunPath = new URL("bench/last-run.json", root)

const file = process.argv[2]
if (file === undefined || process.argv.length > 3) {
  process.stderr.write("usage: npx node bench/readme.ts FILE (the output of npm run -s bench -- --json)\n")
  process.exit(2)
}
const doc = parseDocument(readFileSync(file, "utf8"))
writeFileSync(lastRunPath, `${JSON.stringify(doc, null, 2)}\n`)
writeFileSync(readmePath, replaceSection(readFileSync(readmePath, "utf8"), renderReadmeSection(doc)))
process.stderr.write(`docs/performance.md: regenerated from ${file} (kept as bench/last-run.json)\n`)
