import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const SCRIPT = join(import.meta.dir, "reconcile.ts");

async function run(args: string[], stdin = "") {
  const p = Bun.spawn(["bun", SCRIPT, ...args], {
    stdin: new Blob([stdin]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err] = await Promise.all([
    new Response(p.stdout).text(),
    new Response(p.stderr).text(),
  ]);
  return { code: await p.exited, out, err };
}

test("reconcile.ts --help prints the usage and exits 0", async () => {
  const r = await run(["--help"]);
  expect(r.code).toBe(0);
  expect(r.out).toContain("Usage: reconcile.ts apply");
  expect(r.out).toContain("reconcile.ts <kind>");
  expect(r.out).toContain("--check");
});

test("reconcile.ts without a kind, with an unknown kind or flag is a usage error (exit 2)", async () => {
  for (const args of [[], ["bridges"], ["projects", "--nope"]]) {
    const r = await run(args);
    expect(r.code, args.join(" ")).toBe(2);
    expect(r.err).toContain("--help");
  }
});

test("reconcile.ts rejects desired state that is not JSON, or not the expected shape, with exit 1", async () => {
  const notJson = await run(["projects"], "{nope");
  expect(notJson.code).toBe(1);
  expect(notJson.err).toContain("Cannot parse the desired state of projects as JSON");
  const badShape = await run(
    ["networks", "--check"],
    JSON.stringify({ infra: "x", networks: [{ name: 3 }] }),
  );
  expect(badShape.code).toBe(1);
  expect(badShape.err).toMatch(/desired state is invalid at networks\.0\.name.*make sync/);
  expect(badShape.err).not.toContain("    at ");
});

const empty = mkdtempSync(join(tmpdir(), "reconcile-ansible-"));
afterAll(() => rmSync(empty, { recursive: true, force: true }));

test("reconcile.ts apply --ansible reports a failure in its JSON and exits 0; bad --knobs is a usage error", async () => {
  const r = await run(["apply", "--ansible", "--base-dir", empty, "--check"]);
  expect(r.code, r.err).toBe(0);
  const out = JSON.parse(r.out);
  expect(out).toMatchObject({ changed: false, failed: true, report: {} });
  expect(out.errors[0]).toMatch(/no generated inventory under .*run make sync/);
  const bad = await run(["apply", "--ansible", "--base-dir", empty, "--knobs", "[1]"]);
  expect(bad.code).toBe(2);
  expect(bad.err).toContain("--knobs must be a JSON mapping");
});
