/**
 * scenario() of tests/helpers.ts (test audit 5.6): a fixture scenario of
 * three steps run by `bun test` as a child process, whole, with a failing
 * middle step, and with `-t` picking the last step alone.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dir = mkdtempSync(join(tmpdir(), "anklume-scenario-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, "fixture.test.ts");
writeFileSync(
  file,
  `import { describe, expect } from "bun:test";
import { scenario } from ${JSON.stringify(join(import.meta.dir, "helpers.ts"))};
const log: string[] = [];
describe("s", () => {
  const test = scenario(5000);
  test("one", () => { log.push("one"); });
  test("two", () => { log.push("two"); if (process.env.BREAK) throw new Error("boom"); });
  test("three", () => { log.push("three"); expect(log).toEqual(["one", "two", "three"]); });
});
`,
);

function run(args: string[], env: Record<string, string> = {}) {
  const r = Bun.spawnSync(["bun", "test", file, ...args], {
    cwd: dir,
    env: { ...process.env, ...env },
  });
  return { code: r.exitCode, out: r.stdout.toString() + r.stderr.toString() };
}

test("the steps run in order and pass", () => {
  const r = run([]);
  expect(r.out).toContain(" 3 pass");
  expect(r.code, r.out).toBe(0);
});

test("after a failed step, the later ones fail at once naming it, without running", () => {
  const r = run([], { BREAK: "1" });
  expect(r.out).toContain("error: boom");
  expect(r.out).toContain('not run: the earlier step "two" of this scenario failed');
  expect(r.out).toContain(" 2 fail");
  expect(r.code).toBe(1);
});

test("-t picking a later step replays the steps before it", () => {
  const r = run(["-t", "three"]);
  expect(r.out).toContain(" 1 pass");
  expect(r.out).toContain(" 0 fail");
  expect(r.code, r.out).toBe(0);
});
