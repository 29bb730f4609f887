/**
 * What the generator reads from the machine it runs on, besides the nesting
 * context (lib/core/nesting.ts): the host's connected IPv4 networks, and its
 * CPU and memory. Every source is overridable for tests:
 * - ANKLUME_PROC_DIR (default /proc): net/route, cpuinfo, meminfo
 * - ANKLUME_INCUS (default incus): the binary asked for `query /1.0/resources`
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import type { Cidr } from "../core/cidr.ts";

function readText(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

/** A network the host reaches directly on one of its interfaces. */
export interface HostNetwork {
  ifname: string;
  cidr: Cidr;
}

function hexLe(hex: string): number {
  // /proc/net/route prints addresses as little-endian hex.
  const n = Number.parseInt(hex, 16);
  return (((n & 0xff) << 24) | ((n & 0xff00) << 8) | ((n >>> 8) & 0xff00) | (n >>> 24)) >>> 0;
}

function prefixOf(mask: number): number {
  let p = 0;
  while (p < 32 && mask & (0x80000000 >>> p)) p++;
  return p;
}

/** The kernel's IPv4 routing table (`/proc/net/route` of this network namespace); null when unreadable. */
export function readRoutes(proc = process.env.ANKLUME_PROC_DIR ?? "/proc"): string | null {
  return readText(join(proc, "net", "route"));
}

/** The directly connected networks (one per interface prefix route) in a routing table's text. */
export function parseRoutes(text: string): HostNetwork[] {
  const out: HostNetwork[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [ifname, dest, gateway, , , , , mask] = f as [string, string, string, ...string[]];
    if (!mask || gateway !== "00000000" || ifname === "lo") continue;
    const prefix = prefixOf(hexLe(mask));
    if (prefix === 0) continue;
    out.push({ ifname, cidr: { base: hexLe(dest), prefix } });
  }
  return out;
}

/**
 * The host's directly connected IPv4 networks, read from the kernel's routing
 * table without spawning a process. Null when unreadable.
 */
export function hostNetworks(proc = process.env.ANKLUME_PROC_DIR ?? "/proc"): HostNetwork[] | null {
  const text = readRoutes(proc);
  return text === null ? null : parseRoutes(text);
}

/** Host CPU count and memory in bytes. */
export interface HostResources {
  cpu: number;
  memory: number;
}

/** CPU and memory from the daemon's `/1.0/resources`, else /proc; null when both fail. */
export async function hostResources(remote?: string): Promise<HostResources | null> {
  try {
    const { incusRaw } = await import("../incus/client.ts");
    // `incus info --resources` has no JSON output in Incus 6.0: ask the API
    // (of the remote the infra names: docs/remote.md).
    const path = remote && remote !== "local" ? `${remote}:/1.0/resources` : "/1.0/resources";
    const r = await incusRaw(["query", path], { timeout: "10s" });
    if (r.exitCode === 0) {
      const data = JSON.parse(r.stdout) as {
        cpu?: { total?: number };
        memory?: { total?: number };
      };
      const cpu = Number(data.cpu?.total ?? 0);
      const memory = Number(data.memory?.total ?? 0);
      if (cpu > 0 && memory > 0) return { cpu, memory };
    }
  } catch {
    // Fall back to /proc.
  }
  // This machine's /proc says nothing of a remote host.
  if (remote && remote !== "local") return null;
  const proc = process.env.ANKLUME_PROC_DIR ?? "/proc";
  const cpuinfo = readText(join(proc, "cpuinfo"));
  const meminfo = readText(join(proc, "meminfo"));
  if (cpuinfo === null || meminfo === null) return null;
  const cpu = cpuinfo.split("\n").filter((l) => l.startsWith("processor")).length;
  const m = /^MemTotal:\s+(\d+)\s*kB/m.exec(meminfo);
  const memory = m ? Number(m[1]) * 1024 : 0;
  return cpu > 0 && memory > 0 ? { cpu, memory } : null;
}
