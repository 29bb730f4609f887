import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AI_HOLDER_FILE,
  accessPolicy,
  clientDomains,
  holderOverride,
  parseHolderRecord,
  readHolderRecord,
  switchProblem,
  writeHolderRecord,
} from "./ai-access.ts";
import { buildRuleset, type NftSpec } from "./ruleset.ts";

/** Three domains as make sync writes them under ai_access_policy: exclusive (default "pro"). */
function spec(policy: Record<string, unknown> | null = {}): NftSpec {
  return {
    domains: [
      { name: "ai-tools", bridge: "001-net-ai" },
      { name: "perso", bridge: "001-net-perso" },
      { name: "pro", bridge: "001-net-pro" },
    ],
    machines: [],
    policies:
      policy === null
        ? []
        : [
            {
              description: "AI access: pro -> ai-tools (auto-created)",
              from: "pro",
              to: "ai-tools",
              ports: "all",
              bidirectional: true,
              ...policy,
            },
          ],
  };
}

describe("accessPolicy and clientDomains", () => {
  test("the policy towards the ai-tools domain, not one towards a machine in it", () => {
    expect(accessPolicy([{ from: "pro", to: "ai-gpu" }])).toBeUndefined();
    expect(
      accessPolicy([
        { from: "x", to: "y" },
        { from: "pro", to: "ai-tools", ports: [11434] },
      ]),
    ).toEqual({
      from: "pro",
      ports: [11434],
      protocol: undefined,
      bidirectional: false,
    });
    expect(accessPolicy(null)).toBeUndefined();
    expect(accessPolicy([null, "x", { to: "ai-tools" }])).toBeUndefined();
  });

  test("client domains are every domain with a bridge but ai-tools, sorted", () => {
    expect(clientDomains(spec())).toEqual(["perso", "pro"]);
  });
});

describe("holderOverride", () => {
  test("no record: the holder is the policy's from, and there is no override", () => {
    expect(holderOverride(spec(), null)).toEqual({ holder: "pro", warnings: [] });
    expect(holderOverride(spec(null), null)).toEqual({ holder: null, warnings: [] });
  });

  test("a record naming another domain moves the policy, keeping its ports, protocol and direction", () => {
    const h = holderOverride(
      spec({ ports: [11434, 3000], protocol: "tcp", bidirectional: false }),
      {
        holder: "perso",
      },
    );
    expect(h.holder).toBe("perso");
    expect(h.warnings).toEqual([]);
    expect(h.override).toEqual({
      from: "perso",
      to: "ai-tools",
      ports: [11434, 3000],
      protocol: "tcp",
      bidirectional: false,
    });
    const s = { ...spec({ ports: [11434, 3000], bidirectional: false }), aiOverride: h.override };
    const text = buildRuleset(s).text;
    expect(text).toContain(
      'iifname "001-net-perso" oifname "001-net-ai" tcp dport { 11434, 3000 } accept',
    );
    expect(text).not.toContain('iifname "001-net-pro" oifname "001-net-ai"');
    // One way, as the moved policy was.
    expect(text).not.toContain('iifname "001-net-ai" oifname "001-net-perso"');
  });

  test("the auto-created policy (ports all, bidirectional) moves as a two-way accept", () => {
    const h = holderOverride(spec(), { holder: "perso" });
    const text = buildRuleset({ ...spec(), aiOverride: h.override }).text;
    expect(text).toContain('iifname "001-net-perso" oifname "001-net-ai" accept');
    expect(text).toContain('iifname "001-net-ai" oifname "001-net-perso" accept');
    expect(text).not.toContain('iifname "001-net-ai" oifname "001-net-pro" accept');
    expect(text).not.toContain('iifname "001-net-pro" oifname "001-net-ai" accept');
  });

  test("a record naming the policy's own from needs no override (the ruleset is infra.yml's)", () => {
    expect(holderOverride(spec(), { holder: "pro" })).toEqual({ holder: "pro", warnings: [] });
  });

  // Matrix: AA-3-001
  test("a record that no longer fits the tree is ignored with a warning naming the file", () => {
    const gone = holderOverride(spec(), { holder: "old" }, "/t/.anklume-ai-access.json");
    expect(gone.holder).toBe("pro");
    expect(gone.override).toBeUndefined();
    expect(gone.warnings[0]).toContain('"/t/.anklume-ai-access.json" (holder "old") is ignored');
    expect(gone.warnings[0]).toContain("not a domain with machines");
    const open = holderOverride(spec(null), { holder: "perso" });
    expect(open.override).toBeUndefined();
    expect(open.warnings[0]).toContain("no network policy targets ai-tools");
    const noAi = holderOverride(
      { ...spec(), domains: spec().domains.slice(1) },
      { holder: "perso" },
    );
    expect(noAi.warnings[0]).toContain("no ai-tools domain");
  });
});

describe("switchProblem", () => {
  test("refuses ai-tools itself and an unknown domain, naming the known ones", () => {
    expect(switchProblem(spec(), "ai-tools")).toContain('choose a client domain: "perso", "pro"');
    const unknown = switchProblem(spec(), "nope");
    expect(unknown).toContain('Cannot give the AI access to "nope"');
    expect(unknown).toContain('known domains: "perso", "pro"');
    expect(switchProblem(spec(), "perso")).toBeNull();
  });

  test("refuses a tree without an ai-tools domain or without an access policy", () => {
    expect(switchProblem({ ...spec(), domains: spec().domains.slice(1) }, "perso")).toContain(
      'no "ai-tools" domain',
    );
    expect(switchProblem(spec(null), "perso")).toContain("no network policy targets");
  });
});

describe("the holder record", () => {
  const dir = mkdtempSync(join(tmpdir(), "anklume-ai-access-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("written beside the tree (0644) and read back; none yet reads as null", () => {
    expect(readHolderRecord(dir)).toBeNull();
    writeHolderRecord(dir, {
      holder: "perso",
      previous: "pro",
      switched_at: "2026-11-29T00:00:00Z",
    });
    expect(statSync(join(dir, AI_HOLDER_FILE)).mode & 0o777).toBe(0o644);
    expect(readHolderRecord(dir)).toEqual({
      holder: "perso",
      previous: "pro",
      switched_at: "2026-11-29T00:00:00Z",
    });
    expect(JSON.parse(readFileSync(join(dir, AI_HOLDER_FILE), "utf8")).holder).toBe("perso");
  });

  test("a damaged record is an error naming the file, what is wrong and the fix", () => {
    expect(() => parseHolderRecord("{", "/t/r.json")).toThrow(
      /"\/t\/r.json": not JSON .*make ai-switch/,
    );
    expect(() => parseHolderRecord('{"holder": 3}', "/t/r.json")).toThrow(
      /at holder: .*delete the file/,
    );
    writeFileSync(join(dir, AI_HOLDER_FILE), '{"previous": "pro"}');
    expect(() => readHolderRecord(dir)).toThrow(/at holder/);
  });
});
