/**
 * `make smoke`: every step can fail (decision 12). Steps run for real: the
 * generator on a broken and a valid infra.yml, the Incus probe against the
 * real daemon and against a missing binary, and the whole sequence on a
 * scratch project whose `check` target fails.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { $ } from "zx";
import { incusOrSkip } from "./helpers.ts";

const ROOT = join(import.meta.dir, "..");
const SMOKE = join(ROOT, "scripts/smoke.ts");
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const scratch = () => {
  const d = mkdtempSync(join(tmpdir(), "anklume-smoke-"));
  dirs.push(d);
  return d;
};
const run = (args: string[], env: Record<string, string> = {}) =>
  $({ nothrow: true, quiet: true, env: { ...process.env, ...env } })`bun ${SMOKE} ${args}`;

const live = await incusOrSkip("tests/smoke.test.ts");

describe("make smoke: each step can fail", () => {
  test("step 1 fails on an infra.yml the generator refuses, showing the generator's error", async () => {
    const bad = join(scratch(), "infra.yml");
    writeFileSync(
      bad,
      'project_name: x\nglobal:\n  base_subnet: "10.100"\ndomains:\n  Bad_Name:\n    subnet_id: 1\n',
    );
    const r = await run(["--steps", "1", "--root", ROOT, "--infra", bad]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("--- Step 1/5: generator dry run (make sync-dry) ---");
    expect(r.stderr).toContain("Bad_Name");
    expect(r.stderr).toContain("FAIL: make sync-dry exited");
    expect(r.stderr).toContain("Smoke: 0 passed, 1 failed (1 generator dry run)");
  });

  test("step 1 passes on a valid infra.yml", async () => {
    const r = await run([
      "--steps",
      "1",
      "--root",
      ROOT,
      "--infra",
      join(ROOT, "tests/fixtures/worked-example/infra.yml"),
    ]);
    expect(r.stderr).toContain("Smoke: 1 passed, 0 failed");
    expect(r.exitCode).toBe(0);
  });

  test("step 5 fails when incus does not answer (no such binary), and says how to start it", async () => {
    const r = await run(["--steps", "5"], { ANKLUME_INCUS: "/nonexistent/incus" });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("FAIL: incus list failed");
    expect(r.stderr).toContain("make dev-incus");
  });

  test.skipIf(!live)("step 5 passes against the running daemon", async () => {
    const r = await run(["--steps", "5"]);
    expect(r.stderr).toMatch(/PASS: Incus answers: \d+ instance\(s\)/);
    expect(r.exitCode).toBe(0);
  });

  // Matrix: LC-3-001
  test("a failing step fails the run; every step still runs and is reported", async () => {
    const dir = scratch();
    writeFileSync(
      join(dir, "Makefile"),
      [
        "sync-dry check lint snap-list:",
        '\t@if [ "$@" = check ]; then echo "Cannot apply: no generated inventory" >&2; exit 1; fi',
        '\t@echo "$@ ran"',
        "",
      ].join("\n"),
    );
    const r = await run(["--steps", "1-4", "--root", dir]);
    expect(r.exitCode).toBe(1);
    for (const n of [1, 2, 3, 4]) expect(r.stderr).toContain(`--- Step ${n}/5:`);
    expect(r.stderr).toContain("Cannot apply: no generated inventory");
    expect(r.stderr).toContain("FAIL: make check exited 2");
    expect(r.stderr.match(/^PASS:/gm)).toHaveLength(3);
    expect(r.stderr).toContain("Smoke: 3 passed, 1 failed (2 check mode apply)");
  });

  test("usage: a step that does not exist exits 2; a root without a Makefile exits 1; --help exits 0", async () => {
    expect((await run(["--steps", "7"])).exitCode).toBe(2);
    const noMake = await run(["--steps", "1", "--root", scratch()]);
    expect(noMake.exitCode).toBe(1);
    expect(noMake.stderr).toContain("no Makefile there");
    expect((await run(["--help"])).exitCode).toBe(0);
  });
});
