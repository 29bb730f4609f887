/** scripts/mutation.ts as a process: help, usage errors, --list, --report-only without reports. */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..");
const empty = mkdtempSync(join(tmpdir(), "anklume-mutation-"));
for (const f of ["lib", "node_modules"]) symlinkSync(join(ROOT, f), join(empty, f));
afterAll(() => rmSync(empty, { recursive: true, force: true }));

function run(args: string[], cwd = ROOT) {
  const r = Bun.spawnSync(["bun", join(ROOT, "scripts/mutation.ts"), ...args], {
    cwd,
    env: { ...process.env, NO_COLOR: "1" },
  });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

test("--help exits 0 and says how the score is computed and where the incremental file lives", () => {
  const r = run(["--help"]);
  expect(r.code).toBe(0);
  expect(r.stdout).toStartWith("Usage: bun scripts/mutation.ts");
  expect(r.stdout).toContain("(killed + timeout) / (killed + timeout + survived + no");
  expect(r.stdout).toContain("reports/mutation/");
});

test("usage errors exit 2: unknown module, bad --runs, stray argument", () => {
  for (const [args, says] of [
    [["--modules", "cidr,nope"], 'Cannot mutate module "nope"'],
    [["--runs", "0"], '--runs needs a positive integer, not "0"'],
    [["extra"], 'unexpected argument "extra"'],
  ] as const) {
    const r = run([...args]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(says);
  }
});

test("--list prints each module with its source and tests", () => {
  const r = run(["--list", "--modules", "cidr,naming"]);
  expect(r.code).toBe(0);
  expect(r.stdout).toBe(
    "cidr\tlib/core/cidr.ts\tlib/core/cidr.test.ts\nnaming\tlib/snapshots/naming.ts\tlib/snapshots/naming.test.ts\n",
  );
});

test("--report-only without a report exits 1 saying to run it first", () => {
  const r = run(["--report-only", "--modules", "cidr"], empty);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain(
    "No report for cidr in reports/mutation: run without --report-only first",
  );
  expect(r.stdout).toBe("");
});
