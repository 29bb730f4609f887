/**
 * resource_policy: share the host's CPU and memory (minus a reserve) among
 * machines that set no limits, by weight or equally, as v1 did
 * (generator-contract §8). Pure: host figures come in as arguments.
 */
import type { HostResources } from "./host.ts";

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

/** Parse a memory size: GiB/MiB/KiB binary, GB/MB decimal, bare digits bytes; null if unparsable. */
export function parseSize(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(GiB|MiB|KiB|GB|MB|KB|B)?\s*$/.exec(text);
  if (!m) return null;
  const n = Number(m[1]);
  const unit = m[2] ?? "B";
  const mult: Record<string, number> = {
    GiB: GIB,
    MiB: MIB,
    KiB: 1024,
    GB: 1e9,
    MB: 1e6,
    KB: 1e3,
    B: 1,
  };
  return Math.floor(n * (mult[unit] as number));
}

/** Format bytes as v1 does: whole GiB, else floor MiB, else bytes. */
export function formatSize(bytes: number): string {
  if (bytes >= GIB && bytes % GIB === 0) return `${bytes / GIB}GiB`;
  if (bytes >= MIB) return `${Math.floor(bytes / MIB)}MiB`;
  return String(bytes);
}

/** One machine as the allocator sees it: its config (mutated in place) and weight. */
export interface AllocMachine {
  name: string;
  config: Record<string, unknown>;
  weight: number;
}

export interface ResourcePolicyInput {
  host_reserve?: { cpu?: string | number | null; memory?: string | number | null } | null;
  mode?: "proportional" | "equal" | null;
  cpu_mode?: "allowance" | "count" | null;
  memory_enforce?: "soft" | "hard" | null;
  overcommit?: boolean | null;
}

/** The outcome: messages to print, and an overcommit error when not allowed. */
export interface AllocResult {
  warnings: string[];
  error?: string;
}

function reserve(value: string | number | null | undefined, total: number, isMem: boolean): number {
  const v = value ?? "20%";
  if (typeof v === "string" && v.endsWith("%")) {
    const pct = Number(v.slice(0, -1));
    return isMem ? Math.floor((total * pct) / 100) : (total * pct) / 100;
  }
  if (typeof v === "number") return v;
  return isMem ? (parseSize(v) ?? 0) : Number(v) || 0;
}

/** A count for a message, to two decimals at most: 1.6 stays 1.6 (toFixed(0) said "2 > 2"). */
function amount(n: number): string {
  return String(Math.round(n * 100) / 100);
}

/** Allocate CPU and memory limits into the machines' configs (appending keys). */
export function allocate(
  policy: ResourcePolicyInput,
  host: HostResources | null,
  machines: AllocMachine[],
): AllocResult {
  const warnings: string[] = [];
  if (!host) {
    return { warnings: ["Could not detect host resources, skipping resource allocation."] };
  }
  const availCpu = host.cpu - reserve(policy.host_reserve?.cpu, host.cpu, false);
  const availMem = host.memory - reserve(policy.host_reserve?.memory, host.memory, true);
  if (availCpu <= 0 || availMem <= 0) {
    return {
      warnings: ["Host reserve exceeds available resources, skipping resource allocation."],
    };
  }
  const equal = policy.mode === "equal";
  const soft = (policy.memory_enforce ?? "soft") === "soft";
  const needCpu = machines.filter(
    (m) => !("limits.cpu" in m.config) && !("limits.cpu.allowance" in m.config),
  );
  const needMem = machines.filter((m) => !("limits.memory" in m.config));
  const share = (list: AllocMachine[]) =>
    equal ? list.length : list.reduce((s, m) => s + m.weight, 0);

  const cpuDen = share(needCpu);
  for (const m of needCpu) {
    const s = (availCpu * (equal ? 1 : m.weight)) / cpuDen;
    if (policy.cpu_mode === "count") m.config["limits.cpu"] = String(Math.max(1, Math.floor(s)));
    else m.config["limits.cpu.allowance"] = `${Math.max(1, Math.floor((s / host.cpu) * 100))}%`;
  }
  const memDen = share(needMem);
  for (const m of needMem) {
    const s = Math.max(128 * MIB, Math.floor((availMem * (equal ? 1 : m.weight)) / memDen));
    m.config["limits.memory"] = formatSize(s);
  }
  if (soft) {
    for (const m of machines) {
      if ("limits.memory" in m.config && !("limits.memory.enforce" in m.config)) {
        m.config["limits.memory.enforce"] = "soft";
      }
    }
  }
  if (needCpu.length === 0 && needMem.length === 0) return { warnings };

  // Overcommit check.
  let cores = 0;
  let pct = 0;
  let mem = 0;
  for (const m of machines) {
    const cpu = m.config["limits.cpu"];
    if (cpu !== undefined) {
      if (/^\d+$/.test(String(cpu))) cores += Number(cpu);
    } else {
      const a = /^(\d+)%$/.exec(String(m.config["limits.cpu.allowance"] ?? ""));
      if (a) pct += Number(a[1]);
    }
    const lm = m.config["limits.memory"];
    if (lm !== undefined) mem += parseSize(String(lm)) ?? 0;
  }
  const maxPct = (availCpu / host.cpu) * 100;
  const parts: string[] = [];
  if (cores > availCpu * 1.001)
    parts.push(`CPU: ${amount(cores)} cores > ${amount(availCpu)} available`);
  if (pct > maxPct * 1.001)
    parts.push(`CPU allowance: ${amount(pct)}% > ${amount(maxPct)}% available`);
  if (mem > availMem) parts.push(`Memory: ${formatSize(mem)} > ${formatSize(availMem)}`);
  if (parts.length > 0) {
    const msg = `Resource overcommit: ${parts.join("; ")}`;
    if (policy.overcommit) warnings.push(msg);
    else return { warnings, error: msg };
  }
  return { warnings };
}
