import { afterAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { isTestSource, scanRefs } from "./matrix-scan.ts";

const M = "Matrix";
const dir = mkdtempSync(join(tmpdir(), "anklume-scan-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("isTestSource() takes tests, unit tests and molecule verify files, nothing else", () => {
  expect(isTestSource("tests/snap.test.ts")).toBe(true);
  expect(isTestSource("tests/helpers.ts")).toBe(true);
  expect(isTestSource("lib/core/cidr.test.ts")).toBe(true);
  expect(isTestSource("scripts/reconcile.test.ts")).toBe(true);
  expect(isTestSource("roles/base_system/molecule/default/verify.yml")).toBe(true);
  expect(isTestSource("lib/core/cidr.ts")).toBe(false);
  expect(isTestSource("docs/quality.md")).toBe(false);
  expect(isTestSource("tests/behavior_matrix.yml")).toBe(false);
});

test("scanRefs() reads the references of test files only, not fixtures or docs", () => {
  const files: Record<string, string> = {
    "tests/a.test.ts": `// ${M}: AA-001\n`,
    "lib/x/y.test.ts": `\n// ${M}: AA-002, AA-3-001\n`,
    "roles/r/molecule/default/verify.yml": `# ${M}: AA-2-001\n`,
    "tests/fixtures/f/t.test.ts": `// ${M}: ZZ-001\n`,
    "docs/quality.md": `// ${M}: ZZ-002\n`,
    "lib/x/y.ts": `// ${M}: ZZ-003\n`,
  };
  for (const [p, t] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, p)), { recursive: true });
    writeFileSync(join(dir, p), t);
  }
  expect(scanRefs(dir).map((r) => `${r.id}@${r.file}:${r.line}`)).toEqual([
    "AA-002@lib/x/y.test.ts:2",
    "AA-3-001@lib/x/y.test.ts:2",
    "AA-2-001@roles/r/molecule/default/verify.yml:1",
    "AA-001@tests/a.test.ts:1",
  ]);
});
