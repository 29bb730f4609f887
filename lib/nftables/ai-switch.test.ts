/**
 * aiSwitch() on a tree the real generator writes, in dry runs (nothing is
 * loaded, so no root and no Incus), rulesetFromTree() with and without a
 * holder record, and the VRAM flush script under sh with stand-in
 * `systemctl` and `nvidia-smi` on PATH (no GPU here). The real switch, with
 * traffic and a real container, is tests/ai-switch.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { $ } from "zx";
import { cleanup, runInProcess, workspace } from "../../tests/gen-helpers.ts";
import { AI_HOLDER_FILE, writeHolderRecord } from "./ai-access.ts";
import { aiSwitch, FLUSH_SCRIPT, SwitchError } from "./ai-switch.ts";
import { rulesetFromTree } from "./tree.ts";

const infra = (policy: string) => `project_name: t
global:
  base_subnet: "10.250"
  ai_access_policy: ${policy}
  ai_access_default: pro
  ai_vram_flush: true
domains:
  pro:
    subnet_id: 1
    machines:
      pro-1: {ip: "10.250.1.10"}
  perso:
    subnet_id: 2
    machines:
      perso-1: {ip: "10.250.2.10"}
  ai-tools:
    subnet_id: 3
    machines:
      gpu-1: {ip: "10.250.3.10"}
${policy === "open" ? "network_policies:\n  - {from: pro, to: ai-tools, ports: [11434]}\n" : ""}`;

let dir = "";
let openDir = "";
const opts = (domain: string, base = dir) => ({
  baseDir: base,
  infra: join(base, "infra.yml"),
  domain,
  output: join(base, "out.nft"),
  dest: join(base, "dest.nft"),
  dryRun: true,
});

beforeAll(async () => {
  dir = workspace({ "infra.yml": infra("exclusive") });
  openDir = workspace({ "infra.yml": infra("open") });
  for (const d of [dir, openDir]) {
    const r = await runInProcess([join(d, "infra.yml"), "--base-dir", d]);
    expect(r.code, r.stderr).toBe(0);
  }
});
afterAll(cleanup);

describe("aiSwitch (dry run)", () => {
  test("renders the new holder's rule in place of the default's, and writes, loads and records nothing", async () => {
    const r = await aiSwitch(opts("perso"));
    expect(r.previous).toBe("pro");
    expect(r.holder).toBe("perso");
    expect(r.changed).toBe(false);
    expect(r.flushed).toEqual([]);
    const br = Object.fromEntries(rulesetFromTree(dir).spec.domains.map((d) => [d.name, d.bridge]));
    expect(r.text).toContain(`iifname "${br.perso}" oifname "${br["ai-tools"]}" accept`);
    expect(r.text).not.toContain(`iifname "${br.pro}" oifname "${br["ai-tools"]}"`);
    for (const f of ["out.nft", "dest.nft", AI_HOLDER_FILE])
      expect(existsSync(join(dir, f))).toBe(false);
  });

  test("refuses ai-tools, an unknown domain (naming the known ones) and a policy that is not exclusive", async () => {
    await expect(aiSwitch(opts("ai-tools"))).rejects.toThrow(/"ai-tools" itself/);
    await expect(aiSwitch(opts("nope"))).rejects.toThrow(/known domains: "perso", "pro"/);
    await expect(aiSwitch(opts("perso", openDir))).rejects.toThrow(SwitchError);
    await expect(aiSwitch(opts("perso", openDir))).rejects.toThrow(
      /ai_access_policy is "open" in .*infra.yml/,
    );
  });

  test("an unreadable infra.yml is a SwitchError naming the file", async () => {
    await expect(aiSwitch({ ...opts("perso"), infra: join(dir, "missing.yml") })).rejects.toThrow(
      /Cannot read .*missing.yml/,
    );
  });

  test("a damaged record does not block the switch that replaces it", async () => {
    writeFileSync(join(dir, AI_HOLDER_FILE), "{");
    try {
      const r = await aiSwitch(opts("perso"));
      expect(r.previous).toBeNull();
      expect(r.warnings.join("\n")).toContain("not JSON");
    } finally {
      rmSync(join(dir, AI_HOLDER_FILE), { force: true });
    }
  });
});

describe("rulesetFromTree and the holder record", () => {
  test("without a record the access follows network_policies; with one it follows the record", () => {
    expect(rulesetFromTree(dir).aiHolder).toBe("pro");
    writeHolderRecord(dir, { holder: "perso" });
    try {
      const r = rulesetFromTree(dir);
      expect(r.aiHolder).toBe("perso");
      expect(r.ruleset.text).toContain("AI access override (dynamic)");
      // An explicit override wins, with a warning naming the record.
      const o = rulesetFromTree(dir, { aiOverride: { from: "pro", to: "ai-tools" } });
      expect(o.aiHolder).toBe("pro");
      expect(o.warnings.join("\n")).toContain("is ignored: incus_nftables_ai_override is set");
      // `{}` (the role's default) is no override: the record applies.
      expect(rulesetFromTree(dir, { aiOverride: {} }).aiHolder).toBe("perso");
    } finally {
      rmSync(join(dir, AI_HOLDER_FILE), { force: true });
    }
  });
});

describe("the VRAM flush script (stand-in systemctl and nvidia-smi on PATH, no GPU here)", () => {
  const bin = () => join(dir, "bin");
  const standIn = (name: string, body: string) => {
    mkdirSync(bin(), { recursive: true });
    writeFileSync(join(bin(), name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin(), name), 0o755);
  };
  const run = () =>
    $({
      nothrow: true,
      quiet: true,
      env: { ...process.env, PATH: `${bin()}:/usr/bin:/bin` },
    })`sh -c ${FLUSH_SCRIPT}`;

  test("restarts only the active GPU services and reports GPU memory", async () => {
    standIn(
      "systemctl",
      `echo "$*" >> ${join(dir, "calls")}; [ "$1 $2 $3" = "is-active --quiet speaches" ] && exit 3; exit 0`,
    );
    standIn("nvidia-smi", "echo '512 MiB'");
    const r = await run();
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain("restarted: ollama\n");
    expect(r.stdout).toContain("gpu memory used: 512 MiB");
    const calls = readFileSync(join(dir, "calls"), "utf8");
    expect(calls).toContain("restart ollama");
    expect(calls).not.toContain("restart speaches");
  });

  test("a failed restart makes the script fail", async () => {
    standIn("systemctl", '[ "$1" = restart ] && exit 1; exit 0');
    const r = await run();
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("restart of ollama failed");
  });
});
