/**
 * scripts/matrix-coverage.ts on the project's own matrix and tests, and on
 * small trees in a temporary directory (ids built so that this file's
 * examples are not references).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { $ } from "zx";

const ROOT = join(import.meta.dir, "..");
const SCRIPT = join(ROOT, "scripts/matrix-coverage.ts");
const M = "Matrix";
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const MATRIX = `capabilities:
  demo:
    prefix: DM
    description: demo
    depth_1:
      - {id: DM-001, action: first, expected: ok, deterministic: true}
      - {id: DM-002, action: second, expected: ok, deterministic: true}
`;

function tree(testText: string): string {
  const dir = mkdtempSync(join(tmpdir(), "anklume-matrix-"));
  dirs.push(dir);
  mkdirSync(join(dir, "tests"));
  writeFileSync(join(dir, "tests/behavior_matrix.yml"), MATRIX);
  writeFileSync(join(dir, "tests/demo.test.ts"), testText);
  return dir;
}

const run = (...args: string[]) => $({ nothrow: true, quiet: true })`bun ${SCRIPT} ${args}`;

describe("scripts/matrix-coverage.ts", () => {
  test("the project's matrix is valid and every id its tests name is in it", async () => {
    const r = await run("--root", ROOT, "--json");
    const c = JSON.parse(r.stdout);
    expect(c.unknown).toEqual([]);
    expect(c.total).toBeGreaterThan(100);
    expect(r.exitCode).toBe(0);
  });

  // Matrix: QT-006
  test("a test naming a cell the matrix does not have fails the run, naming the id and the file", async () => {
    const dir = tree(`// ${M}: DM-001, DM-002\n// ${M}: DM-404\n`);
    const r = await run("--root", dir);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain("DM-404 at tests/demo.test.ts:2");
    expect(r.stdout).toContain("FAIL: 1 reference(s) to cells the matrix does not have");
  });

  // Matrix: QT-2-001
  test("coverage below THRESHOLD fails and lists the uncovered cells (make matrix-coverage)", async () => {
    const dir = tree(`// ${M}: DM-001\n`);
    const ok = await $({
      nothrow: true,
      quiet: true,
      cwd: dir,
    })`make -f ${join(ROOT, "Makefile")} matrix-coverage THRESHOLD=50`;
    expect(ok.stdout).toContain("OK: Coverage 50% >= threshold 50%");
    expect(ok.exitCode).toBe(0);
    const low = await $({
      nothrow: true,
      quiet: true,
      cwd: dir,
    })`make -f ${join(ROOT, "Makefile")} matrix-coverage THRESHOLD=51`;
    expect(low.exitCode).not.toBe(0);
    expect(low.stdout).toContain("DM-002    second");
    expect(low.stdout).toContain("FAIL: Coverage 50% < threshold 51%");
  });

  test("--json prints the coverage with the threshold and the verdict", async () => {
    const r = await run("--root", tree(`// ${M}: DM-002\n`), "--json", "--threshold", "10");
    expect(r.exitCode).toBe(0);
    const c = JSON.parse(r.stdout);
    expect(c).toMatchObject({
      schema: 1,
      total: 2,
      covered: 1,
      percent: 50,
      threshold: 10,
      ok: true,
    });
    expect(c.capabilities.demo.depth_1).toEqual({ total: 2, covered: 1, uncovered: ["DM-001"] });
    expect(c.references).toEqual({ "DM-002": ["tests/demo.test.ts:1"] });
  });

  test("an invalid matrix exits 1 with every problem; bad usage exits 2; --help exits 0", async () => {
    const dir = tree("");
    writeFileSync(
      join(dir, "tests/behavior_matrix.yml"),
      "capabilities:\n  demo:\n    prefix: dm\n",
    );
    const r = await run("--root", dir);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("the behaviour matrix is invalid");
    expect(r.stderr).toContain("capabilities.demo.prefix");
    expect((await run("--threshold", "120")).exitCode).toBe(2);
    expect((await run("--bogus")).exitCode).toBe(2);
    expect((await run("--help")).exitCode).toBe(0);
  });
});
