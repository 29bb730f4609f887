/**
 * The network safety net around `make apply` (operations-contract §5.1 and
 * §6.3): the host's routes and addresses recorded before, compared after;
 * what changed is printed with the commands that put it back. Pure here but
 * for `readNetState` (three `ip -j` calls) and the backup file helpers.
 *
 * Ignored: anklume's own bridges (`net-*`, `NNN-net-*`, `NNN-netN`), veth
 * ends (instances' NICs) and loopback: the apply creates and removes them.
 * v1 pinged 1.1.1.1 instead, which fails on every offline host and says
 * nothing about what broke.
 */
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { writeIfChanged } from "../core/fswrite.ts";
import { isAnklumeBridge } from "../core/naming.ts";

/** Routes and addresses, one normalised line each. */
export interface NetState {
  routes: string[];
  addresses: string[];
}

interface IpRoute {
  dst?: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  metric?: number;
  scope?: string;
  type?: string;
}
interface IpAddr {
  ifname?: string;
  addr_info?: { family?: string; local?: string; prefixlen?: number }[];
}

/** True for an interface the check does not watch. */
export function ignoredDevice(dev: string | undefined): boolean {
  if (!dev) return false;
  return dev === "lo" || dev.startsWith("veth") || isAnklumeBridge(dev);
}

/** `ip -j route` entries as `ip route add` arguments (`default via 192.0.2.1 dev d0 metric 5`). */
export function routeLines(json: unknown, family: "inet" | "inet6"): string[] {
  if (!Array.isArray(json)) return [];
  const out: string[] = [];
  for (const r of json as IpRoute[]) {
    if (ignoredDevice(r.dev)) continue;
    if (r.type && r.type !== "unicast") continue;
    const parts = [family === "inet6" ? "-6" : "", r.dst ?? "default"];
    if (r.gateway) parts.push("via", r.gateway);
    if (r.dev) parts.push("dev", r.dev);
    if (r.scope && r.scope !== "global" && !r.gateway) parts.push("scope", r.scope);
    if (r.metric !== undefined) parts.push("metric", String(r.metric));
    out.push(parts.filter(Boolean).join(" "));
  }
  return [...new Set(out)].sort();
}

/** `ip -j addr` entries as `ip addr add` arguments (`192.0.2.10/24 dev d0`); link-local v6 left out. */
export function addressLines(json: unknown): string[] {
  if (!Array.isArray(json)) return [];
  const out: string[] = [];
  for (const l of json as IpAddr[]) {
    if (ignoredDevice(l.ifname)) continue;
    for (const a of l.addr_info ?? []) {
      if (!a.local || a.prefixlen === undefined) continue;
      if (a.family === "inet6" && a.local.toLowerCase().startsWith("fe80:")) continue;
      out.push(`${a.local}/${a.prefixlen} dev ${l.ifname}`);
    }
  }
  return [...new Set(out)].sort();
}

/** What changed between two states. */
export interface NetDiff {
  missingRoutes: string[];
  newRoutes: string[];
  missingAddresses: string[];
  newAddresses: string[];
}

/** Compare two states; every list empty means unchanged. */
export function compareNet(before: NetState, after: NetState): NetDiff {
  const minus = (a: string[], b: string[]) => a.filter((x) => !b.includes(x));
  return {
    missingRoutes: minus(before.routes, after.routes),
    newRoutes: minus(after.routes, before.routes),
    missingAddresses: minus(before.addresses, after.addresses),
    newAddresses: minus(after.addresses, before.addresses),
  };
}

/** True when nothing changed. */
export function unchanged(d: NetDiff): boolean {
  return Object.values(d).every((xs) => xs.length === 0);
}

/** The commands that undo a diff: addresses first (routes need them), then routes. */
export function restoreCommands(d: NetDiff): string[] {
  const route = (r: string) => (r.startsWith("-6 ") ? ["ip", "-6", "route"] : ["ip", "route"]);
  const strip = (r: string) => r.replace(/^-6 /, "");
  return [
    ...d.newAddresses.map((a) => `ip addr del ${a}`),
    ...d.missingAddresses.map((a) => `ip addr add ${a}`),
    ...d.newRoutes.map((r) => `${route(r).join(" ")} del ${strip(r)}`),
    ...d.missingRoutes.map((r) => `${route(r).join(" ")} add ${strip(r)}`),
  ];
}

/** The backup file's text: v1's sections, one entry a line. */
export function formatBackup(s: NetState, when: Date): string {
  const gw = s.routes.filter((r) => r.startsWith("default ") || r.startsWith("-6 default "));
  return [
    `# anklume network backup, ${when.toISOString()}`,
    "[routes]",
    ...s.routes,
    "[addresses]",
    ...s.addresses,
    "[default gateway]",
    ...gw,
    "",
  ].join("\n");
}

/** Read a backup file's text back (routes and addresses). */
export function parseBackup(text: string): NetState {
  const s: NetState = { routes: [], addresses: [] };
  let section = "";
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^\[(.+)\]$/.exec(line);
    if (m) section = m[1] as string;
    else if (section === "routes") s.routes.push(line);
    else if (section === "addresses") s.addresses.push(line);
  }
  return s;
}

/** The backup folder: ANKLUME_NETWORK_BACKUP_DIR, else `~/.anklume-network-backups` (v1's). */
export function backupDir(override?: string): string {
  return (
    override ||
    process.env.ANKLUME_NETWORK_BACKUP_DIR ||
    join(homedir(), ".anklume-network-backups")
  );
}

const pad = (n: number) => String(n).padStart(2, "0");
/** `network-YYYYMMDD-HHMMSS-mmm.txt` (local time, as v1, milliseconds so two runs never collide). */
export function backupName(d: Date): string {
  return (
    `network-${d.getFullYear()}${pad(d.getMonth() + 1)}${pad(d.getDate())}-` +
    `${pad(d.getHours())}${pad(d.getMinutes())}${pad(d.getSeconds())}-${String(d.getMilliseconds()).padStart(3, "0")}.txt`
  );
}

/** Write a backup; returns its path. */
export function writeBackup(dir: string, s: NetState, when = new Date()): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, backupName(when));
  writeIfChanged(path, formatBackup(s, when));
  return path;
}

/** The newest backup in `dir`, or null. */
export function newestBackup(dir: string): string | null {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => /^network-.*\.txt$/.test(n));
  } catch {
    return null;
  }
  const last = names.sort().at(-1);
  return last ? join(dir, last) : null;
}

/** Read a backup file. */
export function readBackup(path: string): NetState {
  return parseBackup(readFileSync(path, "utf8"));
}

/** The host's current routes (v4 and v6) and addresses: three `ip -j` calls. */
export async function readNetState(): Promise<NetState> {
  const { $ } = await import("zx");
  const q = $({ quiet: true });
  const [r4, r6, a] = await Promise.all([
    q`ip -j -4 route show table main`,
    q`ip -j -6 route show table main`,
    q`ip -j addr show`,
  ]);
  const json = (t: string) => (t.trim() === "" ? [] : JSON.parse(t));
  return {
    routes: [
      ...routeLines(json(r4.stdout), "inet"),
      ...routeLines(json(r6.stdout), "inet6"),
    ].sort(),
    addresses: addressLines(json(a.stdout)),
  };
}
