#!/usr/bin/env bun
// Usage: bun scripts/code-audit.ts [options]
//
// Audit the codebase (SPEC-operations section 16): lines per kind
// (TypeScript implementation, tests, benches, shell, role YAML, top-level
// YAML, docs), test-to-implementation ratio per module (lib/**/x.ts with
// x.test.ts beside it; scripts/x.ts with tests/x*.test.ts), modules without a
// test, roles by size (over 200 lines flagged), dead code (exports nothing
// imports, files no script, bench or test reaches, exports only tests use,
// shell variables never used) and a summary. `make audit` prints it,
// `make audit-json` writes reports/audit.json, `make dead-code` prints the
// dead-code part. The JSON format is documented in docs/quality.md.
//
// Options:
//   --json              print the report as JSON (schema 1) instead of text
//   -o, --output FILE   write the report to FILE (its directory is created);
//                       "Report written to FILE" goes to stderr
//   --project-dir DIR   the tree to audit (default: the current directory)
//   --dead-code         only the dead-code part (with --json: only dead_code)
//   -h, --help          show this help
//
// The audit informs; findings do not fail it.
// Exit: 0 report produced, 1 unreadable project or unwritable output, 2 usage error.
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { $ } from "zx";
import { paint, parseCli, runMain, say, topComment, UsageError } from "../lib/core/cli.ts";
import { writeIfChanged } from "../lib/core/fswrite.ts";
import { audit, formatReport, type SourceFile } from "../lib/quality/audit.ts";
import { isShellScript, SKIP_DIRS } from "../lib/quality/lint.ts";
import { walkFiles } from "../lib/quality/walk.ts";

const USAGE = topComment(import.meta.url);

/** Files whose text the audit reads. */
const READ = /\.(ts|md|ya?ml|j2|sh|bash)$/;
/** Larger files are not source (a generated or vendored blob): skipped. */
const MAX_BYTES = 1 << 20;

/** The project's source files, and which of them are shell. */
function readTree(root: string): { files: SourceFile[]; shell: Set<string> } {
  const files: SourceFile[] = [];
  const shell = new Set<string>();
  for (const path of walkFiles(root, new Set([...SKIP_DIRS, "fixtures"]))) {
    const abs = join(root, path);
    if (statSync(abs).size > MAX_BYTES) continue;
    const named = READ.test(path);
    const text = readFileSync(abs, "utf8");
    const sh = isShellScript(path.split("/").pop() ?? path, text.split("\n", 1)[0] ?? "");
    if (!named && !sh) continue;
    if (sh) shell.add(path);
    files.push({ path, text });
  }
  return { files, shell };
}

/** shellcheck's SC2034 (assigned, never used) findings, as `file:line: message`. */
async function shellUnused(root: string, shell: Set<string>): Promise<string[]> {
  if (shell.size === 0) return [];
  const r = await $({
    cwd: root,
    quiet: true,
    nothrow: true,
  })`shellcheck --include=SC2034 -f gcc ${[...shell]}`;
  if (r.exitCode !== 0 && r.exitCode !== 1) {
    say(
      `${paint("yellow", "warning:")} shellcheck did not run (exit ${r.exitCode}); shell variables not checked`,
    );
    return [];
  }
  return r.stdout
    .split("\n")
    .filter((l) => l.includes("[SC2034]"))
    .map((l) => l.replace(/^(.+?:\d+):\d+: \w+: /, "$1: "));
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(argv, {
    help: { type: "boolean", short: "h" },
    json: { type: "boolean" },
    output: { type: "string", short: "o" },
    "project-dir": { type: "string" },
    "dead-code": { type: "boolean" },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (values.output === "") throw new UsageError("--output needs a file name");
  const given = values["project-dir"] ?? ".";
  const root = resolve(given);
  let isDir = false;
  try {
    isDir = statSync(root).isDirectory();
  } catch {
    // reported below
  }
  if (!isDir) {
    say(
      `${paint("red", "error:")} Cannot audit "${given}": not a directory; pass --project-dir DIR`,
    );
    return 1;
  }
  const { files, shell } = readTree(root);
  const report = audit(root, files, shell, await shellUnused(root, shell));
  const only = values["dead-code"] ? "dead-code" : undefined;
  const text = values.json
    ? `${JSON.stringify(only ? report.dead_code : report, null, 2)}\n`
    : formatReport(report, only);
  if (values.output !== undefined) {
    try {
      mkdirSync(dirname(resolve(values.output)), { recursive: true });
      writeIfChanged(values.output, text);
    } catch (e) {
      say(
        `${paint("red", "error:")} Cannot write the report to "${values.output}": ${(e as Error).message}`,
      );
      return 1;
    }
    say(`Report written to ${values.output}`);
  } else {
    process.stdout.write(text);
  }
  return 0;
}

if (import.meta.main) await runMain(main, USAGE);
