/**
 * The host's uplink as incus-guard sees it: the default route's device and
 * gateway, saved in the run directory (`incus-guard-host-dev`, v1's file,
 * and `incus-guard-host-gw`) so a lost default route can be rebuilt, and the
 * IPv4 networks of that device, which no bridge may overlap.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Cidr } from "../core/cidr.ts";
import { type IpAddrLink, ipv4Networks, type Uplink } from "./guard.ts";
import { readDefaultRoute, readLinks } from "./kernel.ts";
import type { GuardLog } from "./log.ts";

/** What every guard pipeline needs, from flags and environment. */
export interface GuardContext {
  log: GuardLog;
  /** Where the uplink is saved (default `/run`). */
  runDir: string;
  /** Do not read or change Incus's networks. */
  noIncus: boolean;
}

/** The files that keep the uplink device and gateway across runs. */
export function stateFiles(runDir: string): { dev: string; gw: string } {
  return {
    dev: join(runDir, "incus-guard-host-dev"),
    gw: join(runDir, "incus-guard-host-gw"),
  };
}

/** The saved uplink, or null when none was saved (or the device file is empty). */
export function readSavedUplink(runDir: string): Uplink | null {
  const f = stateFiles(runDir);
  try {
    const dev = readFileSync(f.dev, "utf8").trim();
    if (!dev) return null;
    const gw = existsSync(f.gw) ? readFileSync(f.gw, "utf8").trim() : "";
    return { dev, gateway: gw || null };
  } catch {
    return null;
  }
}

/** Save the uplink; a failure is a warning, never fatal. */
export function saveUplink(ctx: GuardContext, up: Uplink): void {
  const f = stateFiles(ctx.runDir);
  try {
    mkdirSync(ctx.runDir, { recursive: true });
    writeFileSync(f.dev, `${up.dev}\n`);
    if (up.gateway) writeFileSync(f.gw, `${up.gateway}\n`);
  } catch (e) {
    ctx.log.line(`cannot save the uplink to ${f.dev}: ${(e as Error).message}`, "warn");
  }
}

/** The uplink: from the default route (`routed`), else from the saved files; null when neither exists. */
export async function detectUplink(
  runDir: string,
): Promise<{ up: Uplink; routed: boolean } | null> {
  const route = await readDefaultRoute();
  if (route) return { up: route, routed: true };
  const saved = readSavedUplink(runDir);
  return saved ? { up: saved, routed: false } : null;
}

/** Every link, and the IPv4 networks of `dev` (empty when it is gone or has no IPv4 address). */
export async function hostNetworksOf(
  dev: string,
): Promise<{ links: IpAddrLink[]; hostNets: Cidr[] }> {
  const links = await readLinks();
  const link = links.find((l) => l.ifname === dev);
  return { links, hostNets: link ? ipv4Networks(link) : [] };
}
