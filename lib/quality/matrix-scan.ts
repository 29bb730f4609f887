/**
 * Find the behaviour-matrix references in a project's tests (reads files; the
 * parsing is lib/quality/matrix.ts's findRefs).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { SKIP_DIRS } from "./lint.ts";
import { findRefs, type MatrixRef } from "./matrix.ts";
import { walkFiles } from "./walk.ts";

/** True for a file whose `Matrix:` comments count. */
export function isTestSource(path: string): boolean {
  return (
    (path.startsWith("tests/") && path.endsWith(".ts")) ||
    (/^(lib|scripts)\//.test(path) && path.endsWith(".test.ts")) ||
    /^roles\/[^/]+\/molecule\/[^/]+\/verify\.ya?ml$/.test(path)
  );
}

/** Every reference in the project's tests under `root` (fixtures excluded). */
export function scanRefs(root: string): MatrixRef[] {
  return walkFiles(root, new Set([...SKIP_DIRS, "fixtures"]))
    .filter(isTestSource)
    .flatMap((f) => findRefs(f, readFileSync(join(root, f), "utf8")));
}
