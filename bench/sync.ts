#!/usr/bin/env bun
/**
 * bench/sync.ts — `make bench-sync`: the generator on 250 domains × 4 machines
 * (1,000 machines, 1,501 files, profiles and policies) in a tmpfs directory.
 *
 * Prints, side by side, the median wall time (cold processes) of:
 *   - a baseline Bun process that writes 1,501 small files with temp-file-and-rename,
 *   - a first sync (empty tree), with the generator's cache warm (the shape
 *     lib/sync derives from its schema is cached, as after any earlier sync),
 *   - the same first sync with an empty cache (the shape is derived in-process),
 *   - a no-op re-sync (nothing changed; must write no file),
 * and the ratios to the baseline. Goals: first sync ≤ 5×, no-op ≤ 3×.
 * Options: --runs N (default 7). What each speed trick buys: docs/development.md.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";

const ROOT = join(import.meta.dir, "..");
const runsArg = process.argv.indexOf("--runs");
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 7;
const tmp = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : "/tmp", "anklume-bench-sync-"));

function buildInfra(): string {
  const lines = [
    "project_name: bench",
    "global:",
    '  base_subnet: "10.100"',
    '  default_os_image: "images:debian/13"',
    "  default_connection: community.general.incus",
    "  default_user: root",
    "domains:",
  ];
  for (let d = 0; d < 250; d++) {
    lines.push(
      `  dom${d}:`,
      `    description: "Domain number ${d}"`,
      `    subnet_id: ${d}`,
      `    trust_level: ${d % 2 ? "trusted" : "untrusted"}`,
      "    profiles:",
      `      nest${d}:`,
      "        config:",
      '          security.nesting: "true"',
      "    machines:",
    );
    for (let m = 0; m < 4; m++) {
      lines.push(
        `      m${d}-${m}:`,
        `        description: "Machine ${m} of domain ${d}"`,
        `        ip: "10.100.${d}.${m + 10}"`,
        `        profiles: [default, nest${d}]`,
        "        config:",
        '          limits.cpu: "1"',
        '          limits.memory: "1GiB"',
        "        roles: [base_system]",
        "        boot_autostart: true",
        `        boot_priority: ${m * 10}`,
      );
    }
  }
  lines.push("network_policies:");
  for (let i = 0; i < 100; i++) {
    lines.push(
      `  - description: "Policy ${i}"`,
      `    from: dom${i}`,
      `    to: m${i + 1}-0`,
      "    ports: [22, 443]",
      "    protocol: tcp",
    );
  }
  return `${lines.join("\n")}\n`;
}

const BASELINE = `
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
const base = process.argv[2];
for (const d of ["inventory", "group_vars", "host_vars"]) mkdirSync(base + "/" + d, { recursive: true });
for (let i = 0; i < 1501; i++) {
  const dir = i < 250 ? "inventory" : i < 501 ? "group_vars" : "host_vars";
  const p = base + "/" + dir + "/f" + i + ".yml";
  writeFileSync(p + ".tmp", "---\\n# === MANAGED BY infra.yml ===\\nkey: value " + i + "\\n# === END MANAGED ===\\n\\n# Your custom variables below:\\n");
  renameSync(p + ".tmp", p);
}
`;

function timeIt(cmd: string[], cwd: string, cache = join(tmp, "cache")): number {
  const t0 = performance.now();
  const r = spawnSync(cmd[0] as string, cmd.slice(1), {
    cwd,
    env: {
      ...process.env,
      ANKLUME_CONTEXT_DIR: join(tmp, "no-context"),
      ANKLUME_CACHE_DIR: cache,
    },
    encoding: "utf8",
  });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd.join(" ")} failed (${r.status}): ${r.stderr}`);
  return ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

const infraText = buildInfra();
writeFileSync(join(tmp, "infra.yml"), infraText);
writeFileSync(join(tmp, "baseline.ts"), BASELINE);
const gen = ["bun", join(ROOT, "scripts/generate.ts"), "infra.yml"];
const baseline: number[] = [];
const first: number[] = [];
const cold: number[] = [];
const noop: number[] = [];
let unchangedProof = "";
try {
  timeIt(gen, tmp); // warms the cache as any earlier sync would (timed separately below)
  for (let i = 0; i < RUNS; i++) {
    const b = join(tmp, `b${i}`);
    mkdirSync(b);
    baseline.push(timeIt(["bun", join(tmp, "baseline.ts"), b], tmp));
    rmSync(b, { recursive: true });
    const emptyTree = () => {
      for (const d of ["inventory", "group_vars", "host_vars"])
        rmSync(join(tmp, d), { recursive: true, force: true });
    };
    emptyTree();
    const emptyCache = join(tmp, `cache-cold${i}`);
    cold.push(timeIt(gen, tmp, emptyCache));
    rmSync(emptyCache, { recursive: true, force: true });
    emptyTree();
    first.push(timeIt(gen, tmp));
    const before = statSync(join(tmp, "host_vars/m0-0.yml")).mtimeMs;
    noop.push(timeIt(gen, tmp));
    const after = statSync(join(tmp, "host_vars/m0-0.yml")).mtimeMs;
    unchangedProof = before === after ? "no file rewritten" : "FILES WERE REWRITTEN";
  }
  const lines = infraText.split("\n").length - 1;
  const bl = median(baseline);
  const row = (name: string, ms: number, goal: string) =>
    `${name.padEnd(34)} ${ms.toFixed(1).padStart(8)} ms   ${(ms / bl).toFixed(2).padStart(6)}×   ${goal}`;
  console.log(
    `anklume sync benchmark: 250 domains × 4 machines, ${lines} lines of infra.yml, 1,501 files, median of ${RUNS} cold runs (${tmp.startsWith("/dev/shm") ? "tmpfs" : "disk"})`,
  );
  console.log(`${"".padEnd(34)} ${"time".padStart(11)}   ${"ratio".padStart(7)}   goal`);
  console.log(row("baseline: write 1,501 files", bl, ""));
  console.log(row("first sync", median(first), "≤ 5×"));
  console.log(row("first sync, empty cache", median(cold), "(shape derived in-process)"));
  console.log(row("no-op re-sync", median(noop), `≤ 3×, writes nothing (${unchangedProof})`));
  console.log(
    `runs (ms): baseline ${baseline.map((x) => x.toFixed(0)).join(" ")} | first ${first.map((x) => x.toFixed(0)).join(" ")} | empty cache ${cold.map((x) => x.toFixed(0)).join(" ")} | no-op ${noop.map((x) => x.toFixed(0)).join(" ")}`,
  );
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
