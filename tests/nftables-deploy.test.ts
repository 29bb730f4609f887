/**
 * nftables-deploy's checks, without loading anything: refusals, nft -c
 * failures and dry runs. Loading for real is covered by tests/isolation.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { buildRuleset } from "../lib/nftables/ruleset.ts";

const ROOT = resolve(import.meta.dir, "..");
const SCRIPT = join(ROOT, "scripts/nftables-deploy.ts");
let dir = "";
let good = "";

function run(args: string[]) {
  const r = Bun.spawnSync(["bun", SCRIPT, ...args], {
    stdin: "ignore",
    env: { ...process.env, NO_COLOR: "1" },
  });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

function nftList(): string {
  const r = Bun.spawnSync(["nft", "list", "table", "inet", "anklume"]);
  return r.exitCode === 0 ? r.stdout.toString() : "";
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "nft-deploy-"));
  good = join(dir, "good.nft");
  writeFileSync(
    good,
    buildRuleset({
      domains: [
        { name: "a", bridge: "ndt-a" },
        { name: "b", bridge: "ndt-b" },
      ],
      machines: [],
      policies: [{ from: "a", to: "b", ports: [443] }],
    }).text,
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("scripts/nftables-deploy.ts", () => {
  test("--help exits 0 (Bun and Deno)", () => {
    const r = run(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toStartWith("Usage: bun scripts/nftables-deploy.ts");
    const d = Bun.spawnSync([join(ROOT, "node_modules/.bin/deno"), "run", "-A", SCRIPT, "--help"]);
    expect(d.exitCode).toBe(0);
    expect(d.stdout.toString()).toBe(r.stdout);
  });

  test("usage errors exit 2 and name what is wrong (test audit 1.7)", () => {
    for (const [args, says] of [
      [["--bogus"], "error: Unknown option '--bogus'"],
      [["--file", good, "--source", "x"], "error: use either --file or --source, not both"],
      [["positional"], 'error: unexpected argument "positional"'],
      [["--file", ""], "error: --file, --source and --dest need a non-empty value"],
    ] as const) {
      const r = run([...args]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(says);
    }
  });

  test("a missing file exits 1 and says to run make nftables", () => {
    const r = run(["--file", join(dir, "nope.nft"), "--dry-run"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("run make nftables first");
  });

  test("--dry-run validates with nft -c, prints the rules, copies and loads nothing", () => {
    const before = nftList();
    const dest = join(dir, "dest.nft");
    const r = run(["--file", good, "--dest", dest, "--dry-run"]);
    expect(r.stderr).toContain("is valid (nft -c)");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('iifname "ndt-a" oifname "ndt-b" tcp dport { 443 } accept');
    expect(existsSync(dest)).toBe(false);
    expect(nftList()).toBe(before);
  });

  // Matrix: IS-006
  test("refuses any other table, flush ruleset, inet filter deletion and input drop policies, listing the lines", () => {
    const bad = join(dir, "bad.nft");
    writeFileSync(
      bad,
      [
        "flush ruleset",
        "table inet anklume;",
        "delete table inet filter",
        "table ip nat {",
        "  chain input { type filter hook input priority 0; policy drop; }",
        "}",
      ].join("\n"),
    );
    const r = run(["--file", bad, "--dest", join(dir, "d.nft")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("line 1: flush ruleset");
    expect(r.stderr).toContain("line 3: delete table inet filter");
    expect(r.stderr).toContain("line 4: table ip nat {");
    expect(r.stderr).toContain(
      "line 5: chain input { type filter hook input priority 0; policy drop; }",
    );
    expect(r.stderr).not.toContain("line 2:");
    expect(existsSync(join(dir, "d.nft"))).toBe(false);
  });

  test("a file without table inet anklume is refused", () => {
    const empty = join(dir, "empty.nft");
    writeFileSync(empty, "# nothing\n");
    const r = run(["--file", empty, "--dry-run"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("defines no table inet anklume");
  });

  // Matrix: IS-007
  test("a ruleset nft -c rejects exits 1 with nft's message", () => {
    const broken = join(dir, "broken.nft");
    writeFileSync(
      broken,
      "table inet anklume {\n  chain isolation {\n    iifname bogus-syntax (\n  }\n}\n",
    );
    const r = run(["--file", broken, "--dry-run"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("nft -c rejected");
    expect(r.stderr).toContain("syntax error");
  });
  test("a destination it cannot write exits 1 naming it and the fix, and loads nothing", () => {
    const before = nftList();
    writeFileSync(join(dir, "afile"), "");
    const dest = join(dir, "afile", "x.nft");
    const r = run(["--file", good, "--dest", dest]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`"${dest}"`);
    expect(r.stderr).toContain("or pass --dest PATH");
    expect(nftList()).toBe(before);
  });
});
