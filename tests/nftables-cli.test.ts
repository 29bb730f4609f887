import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { incusRaw, incusRun } from "../lib/incus/client.ts";
import { cleanup, runInProcess } from "./gen-helpers.ts";
import { incusOrSkip, uniq } from "./helpers.ts";

const ROOT = resolve(import.meta.dir, "..");
const SCRIPT = join(ROOT, "scripts/nftables.ts");
let dir = "";

function run(args: string[], stdin?: string) {
  const r = Bun.spawnSync(["bun", SCRIPT, ...args], {
    stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin),
    env: { ...process.env, NO_COLOR: "1" },
  });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/**
 * A small tree written by the generator itself (test audit 1.12): two domains,
 * a machine with a static IP and one without, a policy between domains and one
 * from the host. If the generator's keys change, these tests see it.
 */
const INFRA = `project_name: t
global:
  base_subnet: "10.100"
domains:
  pro:
    subnet_id: 1
    machines:
      pro-dev:
        ip: "10.100.1.10"
  ai:
    subnet_id: 2
    machines:
      ai-gpu: {}
network_policies:
  - description: Pro reaches the AI services
    from: pro
    to: ai
    ports: [11434, 3000]
    protocol: tcp
  - from: host
    to: pro
`;

async function writeTree(base: string): Promise<void> {
  mkdirSync(base, { recursive: true });
  writeFileSync(join(base, "infra.yml"), INFRA);
  const r = await runInProcess([join(base, "infra.yml"), "--base-dir", base]);
  if (r.code !== 0) throw new Error(`make sync of the test tree failed:\n${r.stderr}`);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "nft-cli-"));
  await writeTree(join(dir, "tree"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  cleanup();
});

describe("scripts/nftables.ts CLI", () => {
  test("--help exits 0 and prints the top comment", () => {
    const r = run(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toStartWith("Usage: bun scripts/nftables.ts");
    expect(r.stdout).toContain("--ai-override JSON");
  });

  test("--help works under Deno too", () => {
    const r = Bun.spawnSync([join(ROOT, "node_modules/.bin/deno"), "run", "-A", SCRIPT, "--help"]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toBe(run(["--help"]).stdout);
  });

  test("usage errors exit 2", () => {
    for (const [args, says] of [
      [["--nope"], "Unknown option '--nope'"],
      [["extra"], 'unexpected argument "extra"'],
      [["--spec", "-", "--base-dir", "."], "use either --spec or --base-dir, not both"],
    ] as const) {
      const r = run([...args]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(says);
    }
    const bad = run(["--base-dir", join(dir, "tree"), "--ai-override", "{nope", "--offline"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--ai-override is not JSON");
  });

  test("--dry-run prints the ruleset and writes nothing", () => {
    const out = join(dir, "dry.nft");
    const r = run(["--base-dir", join(dir, "tree"), "--output", out, "--dry-run", "--offline"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      'iifname "001-net-pro" oifname "001-net-ai" tcp dport { 11434, 3000 } accept',
    );
    expect(r.stderr).toContain("Would write");
    expect(() => statSync(out)).toThrow();
  });

  test("writes the file once, then leaves it alone when nothing changed", () => {
    const out = join(dir, "sub/dir/rules.nft");
    const first = run(["--base-dir", join(dir, "tree"), "--output", out, "--json", "--offline"]);
    expect(first.code).toBe(0);
    const j1 = JSON.parse(first.stdout);
    expect(j1.changed).toBe(true);
    expect(j1.skipped[0]).toContain("involves host");
    expect(statSync(out).mode & 0o777).toBe(0o644);
    const mtime = statSync(out).mtimeMs;
    const second = run(["--base-dir", join(dir, "tree"), "--output", out, "--json", "--offline"]);
    expect(JSON.parse(second.stdout).changed).toBe(false);
    expect(second.stderr).toContain("Unchanged");
    expect(statSync(out).mtimeMs).toBe(mtime);
    expect(readFileSync(out, "utf8")).toContain("table inet anklume {");
  });

  // Matrix: IS-2-002
  test("--ai-override replaces the policies towards its target", () => {
    const r = run([
      "--base-dir",
      join(dir, "tree"),
      "--dry-run",
      "--offline",
      "--ai-override",
      '{"from":"pro-dev","to":"ai","ports":[11434]}',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain("Pro reaches the AI services");
    expect(r.stdout).toContain(
      'iifname "001-net-ai" oifname "001-net-pro" ip daddr 10.100.1.10 tcp dport { 11434 } accept',
    );
  });

  test("--spec - reads a JSON spec from stdin; invalid policies exit 1 listing every problem", () => {
    const spec = {
      domains: [{ name: "a", bridge: "net-a" }],
      machines: [],
      policies: [{ from: "a", to: "a", ports: [70000], protocol: "sctp" }],
    };
    const r = run(
      ["--spec", "-", "--output", join(dir, "bad.nft"), "--offline"],
      JSON.stringify(spec),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("invalid port 70000 (must be 1-65535)");
    expect(r.stderr).toContain("protocol must be 'tcp' or 'udp', got \"sctp\"");
    expect(() => statSync(join(dir, "bad.nft"))).toThrow();
  });

  test("an unwritable output path exits 1 with the fix", () => {
    writeFileSync(join(dir, "afile"), "");
    const r = run([
      "--base-dir",
      join(dir, "tree"),
      "--output",
      join(dir, "afile/x.nft"),
      "--offline",
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`"${join(dir, "afile/x.nft")}"`);
    expect(r.stderr).toContain("choose another --output");
  });
  test("--base-dir reads the tree: the role's knobs and the tree give the ruleset make nftables writes", () => {
    const r = run(["--base-dir", join(dir, "tree"), "--dry-run", "--offline", "--json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.bridges).toEqual(["001-net-ai", "001-net-pro"]);
    expect(j.policies).toEqual([
      {
        description: "Pro reaches the AI services",
        from: { bridge: "001-net-pro" },
        to: { bridge: "001-net-ai" },
        ports: [11434, 3000],
        protocol: "tcp",
        bidirectional: false,
      },
    ]);
    expect(j.skipped).toEqual([
      "network_policies[1] (policy 2): involves host, which the forward chain does not filter; not enforced",
    ]);
  });

  test("--ai-override as Ansible's to_json of a string (a JSON string holding JSON) is decoded", () => {
    const r = run([
      "--base-dir",
      join(dir, "tree"),
      "--dry-run",
      "--offline",
      "--ai-override",
      JSON.stringify('{"from_bridge":"001-net-pro","to":"ai"}'),
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('iifname "001-net-pro" oifname "001-net-ai" accept');
  });

  test("a tree without an inventory, or whose hosts have no bridge, exits 1 saying to run make sync", () => {
    const none = run(["--base-dir", join(dir, "nothing"), "--dry-run", "--offline"]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("run make sync first");
    const bare = join(dir, "bare");
    mkdirSync(join(bare, "inventory"), { recursive: true });
    writeFileSync(join(bare, "inventory/x.yml"), "all:\n  hosts:\n    lonely:\n");
    const r = run(["--base-dir", bare, "--output", join(dir, "bare.nft"), "--offline"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("no inventory host has incus_network");
    expect(() => statSync(join(dir, "bare.nft"))).toThrow();
  });
});

// Test audit 7.9: the online check (no --offline) against the real daemon.
const live = await incusOrSkip("nftables-cli (online bridge check)");
describe.skipIf(!live)(
  "online: declared bridges are checked against Incus (skipped only without an Incus daemon; required under CI)",
  () => {
    const u = uniq();
    const real = `nb${u}`;
    const ghost = `ng${u}`;
    beforeAll(async () => {
      await incusRun(["network", "create", real, "ipv4.address=none", "ipv6.address=none"]);
    }, 60_000);
    afterAll(async () => {
      const del = await incusRaw(["network", "delete", real]);
      expect((await incusRaw(["network", "show", real])).exitCode, del.stderr).not.toBe(0);
    }, 60_000);

    test("warns about the bridge Incus does not have, not about the one it has", async () => {
      const tree = join(dir, "online");
      await writeTree(tree);
      for (const [f, from, to] of [
        ["group_vars/pro.yml", "001-net-pro", real],
        ["group_vars/ai.yml", "001-net-ai", ghost],
      ] as const) {
        const p = join(tree, f);
        writeFileSync(p, readFileSync(p, "utf8").replaceAll(from, to));
      }
      const r = run(["--base-dir", tree, "--output", join(dir, "online.nft"), "--dry-run"]);
      const all = r.stdout + r.stderr;
      expect(r.code, all).toBe(0);
      expect(all).toContain(
        `warning: bridge "${ghost}" is declared but does not exist in Incus yet; run make apply-infra`,
      );
      expect(all).not.toContain(`bridge "${real}" is declared`);
    });
  },
);
