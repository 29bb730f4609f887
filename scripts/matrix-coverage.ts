#!/usr/bin/env bun
// Usage: bun scripts/matrix-coverage.ts [options]
//
// Report how much of the behaviour matrix (tests/behavior_matrix.yml) the
// tests cover: a test names the cells it checks with a `// Matrix: ID[, ID]`
// comment (`# Matrix:` in a role's molecule verify.yml). Prints coverage per
// capability and depth, a TOTAL row, the uncovered cells and any reference
// to an id the matrix does not have (an error). `make matrix-coverage
// [THRESHOLD=]` runs it.
//
// Where references are looked for: tests/**/*.ts, lib/**/*.test.ts,
// scripts/*.test.ts and roles/*/molecule/*/verify.yml.
//
// Options:
//   --matrix FILE       the matrix (default: tests/behavior_matrix.yml)
//   --threshold PCT     fail below this coverage, 0-100 (default 0)
//   --root DIR          the project tree (default: the current directory)
//   --json              print the coverage as JSON on stdout (docs/quality.md)
//   -h, --help          show this help
//
// Exit: 0 coverage >= threshold and no unknown id, 1 otherwise or an invalid
// matrix, 2 usage error.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import { paint, parseCli, runMain, say, topComment, UsageError } from "../lib/core/cli.ts";
import {
  coverage,
  formatCoverage,
  type Matrix,
  MatrixError,
  type MatrixRef,
  parseMatrix,
  verdict,
} from "../lib/quality/matrix.ts";
import { scanRefs } from "../lib/quality/matrix-scan.ts";

const USAGE = topComment(import.meta.url);

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(argv, {
    help: { type: "boolean", short: "h" },
    matrix: { type: "string" },
    threshold: { type: "string" },
    root: { type: "string" },
    json: { type: "boolean" },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const threshold = Number(values.threshold ?? "0");
  if (values.threshold === "" || !Number.isFinite(threshold) || threshold < 0 || threshold > 100) {
    throw new UsageError(`--threshold "${values.threshold}" is not a percentage from 0 to 100`);
  }
  const root = resolve(values.root ?? ".");
  const file = values.matrix ?? join(root, "tests/behavior_matrix.yml");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    say(`${paint("red", "error:")} Cannot read the matrix "${file}": ${(e as Error).message}`);
    return 1;
  }
  let matrix: Matrix;
  try {
    matrix = parseMatrix(text, file);
  } catch (e) {
    if (!(e instanceof MatrixError)) throw e;
    say(`${paint("red", "error:")} ${e.message}`);
    return 1;
  }
  let refs: MatrixRef[];
  try {
    refs = scanRefs(root);
  } catch (e) {
    say(`${paint("red", "error:")} Cannot read the tests under "${root}": ${(e as Error).message}`);
    return 1;
  }
  const c = coverage(matrix, refs);
  const v = verdict(c, threshold);
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ ...c, threshold, ok: v.ok }, null, 2)}\n`);
    say(v.line);
  } else {
    process.stdout.write(formatCoverage(c, threshold));
  }
  return v.ok ? 0 : 1;
}

if (import.meta.main) await runMain(main, USAGE);
