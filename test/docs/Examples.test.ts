/**
 * The API reference's examples run: every ```ts block under an `@example`
 * tag in the JSDoc of the public modules (typedoc.json's entry points, the
 * modules `npm run docs` documents) is typechecked with the project's
 * compiler options and run with Node on the sources, printing the
 * `// → text` lines it shows, in order.
 *
 * And every service (a `Context.Service` class) and every layer the public
 * modules export (a `Layer` value, or a function returning one, at the top
 * level or as a static member of a service) has such an example.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import ts from "typescript"
import { publicModules as modules, root, runSnippet, type Snippet, typecheck } from "./snippets.ts"

const dir = join(root, "test/docs/.snippets/examples")

/** The ```ts blocks of a module's JSDoc `@example` tags. */
const examplesOf = (module: string): Array<Snippet> => {
  const lines = readFileSync(join(root, module), "utf8").split("\n")
  const examples: Array<Snippet> = []
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*\* @example\b/.test(lines[i]!)) continue
    // the block opens within the same comment, before any other tag
    let open = i + 1
    while (open < lines.length && !/^\s*\* ```ts\s*$/.test(lines[open]!) && !/\*\/|^\s*\* @/.test(lines[open]!)) open++
    assert.match(lines[open] ?? "", /^\s*\* ```ts\s*$/, `${module}:${i + 1}: an @example opens a \`\`\`ts block`)
    const body: Array<string> = []
    for (i = open + 1; i < lines.length && !/^\s*\* ```\s*$/.test(lines[i]!); i++) {
      body.push(lines[i]!.replace(/^\s*\* ?/, ""))
    }
    examples.push({
      name: `${module.replace(/[^A-Za-z0-9]+/g, "_")}_line${open + 2}.ts`,
      code: body.join("\n") + "\n",
      file: module,
      line: open + 2
    })
  }
  return examples
}

const examples = modules.flatMap(examplesOf)

/** The services and layers the public modules export that have no `@example`: `module: name`. */
const withoutExample = (): Array<string> => {
  const config = ts.getParsedCommandLineOfConfigFile(join(root, "tsconfig.json"), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => assert.fail(String(diagnostic.messageText))
  })!
  const program = ts.createProgram(modules.map((module) => join(root, module)), config.options)
  const checker = program.getTypeChecker()
  const hasExample = (node: ts.Node) => ts.getJSDocTags(node).some((tag) => tag.tagName.text === "example")
  const isLayer = (node: ts.Node): boolean => {
    const type = checker.getTypeAtLocation(node)
    const returned = type.getCallSignatures().map((signature) => signature.getReturnType())
    return [type, ...returned].some((t) => /^Layer<|^Layer\.Layer</.test(checker.typeToString(t)))
  }
  const missing: Array<string> = []
  for (const module of modules) {
    const source = program.getSourceFile(join(root, module))!
    const exports = checker.getExportsOfModule(checker.getSymbolAtLocation(source)!)
    for (const symbol of exports) {
      for (const declaration of symbol.declarations ?? []) {
        if (declaration.getSourceFile() !== source) continue // a re-export, documented where it is declared
        if (ts.isClassDeclaration(declaration)) {
          const service = declaration.heritageClauses?.some((clause) => clause.getText().includes("Context.Service"))
          if (service === true && !hasExample(declaration)) missing.push(`${module}: ${symbol.name}`)
          for (const member of declaration.members) {
            const isStatic = ts.getCombinedModifierFlags(member) & ts.ModifierFlags.Static
            const named = ts.isPropertyDeclaration(member) || ts.isMethodDeclaration(member)
            if (isStatic && named && isLayer(member.name) && !hasExample(member)) {
              missing.push(`${module}: ${symbol.name}.${member.name.getText()}`)
            }
          }
        } else if (
          (ts.isVariableDeclaration(declaration) || ts.isFunctionDeclaration(declaration)) &&
          declaration.name !== undefined && isLayer(declaration.name)
        ) {
          if (!hasExample(declaration)) missing.push(`${module}: ${symbol.name}`)
        }
      }
    }
  }
  return missing
}

describe("the API reference's examples", () => {
  it("every service and layer of the public modules has an @example", () => {
    assert.deepStrictEqual(withoutExample(), [])
  }, 60_000)

  it.live("every example typechecks with the project's compiler options", () =>
    Effect.gen(function*() {
      assert.isAtLeast(examples.length, 1)
      const checked = yield* typecheck(dir, examples)
      assert.strictEqual(checked.code, 0, checked.output)
    }), { timeout: 200_000 })

  for (const example of examples) {
    it.live(`${example.file}:${example.line} runs and prints what it shows`, () =>
      Effect.gen(function*() {
        const wrong = yield* runSnippet(dir, example)
        assert.isUndefined(wrong, `${example.file}:${example.line}: ${wrong}`)
      }), { timeout: 90_000 })
  }
})
