/**
 * incus-guard, the pure part: what `ip -json` prints, which bridges conflict
 * with the host's uplink network (real CIDR overlap, any prefix length), how
 * `ip monitor` lines are read, and the systemd drop-in text. No I/O here.
 */
import * as v from "valibot";
import { type Cidr, formatCidr, overlaps, parseCidr } from "../core/cidr.ts";
import type { IncusNetwork as LiveNetwork } from "../incus/objects.ts";

/** The fields of an Incus network that the guard reads. */
export type IncusNetwork = Pick<LiveNetwork, "name" | "type" | "managed" | "project" | "config">;

/** One address of `ip -json addr show`. */
const AddrInfoSchema = v.looseObject({
  family: v.string(),
  local: v.optional(v.string()),
  prefixlen: v.optional(v.number()),
});

/** One link of `ip -json -details addr show` (the fields the guard reads). */
export const IpAddrLinkSchema = v.looseObject({
  ifindex: v.number(),
  ifname: v.string(),
  linkinfo: v.optional(v.looseObject({ info_kind: v.optional(v.string()) })),
  addr_info: v.optional(v.array(AddrInfoSchema), []),
});
export type IpAddrLink = v.InferOutput<typeof IpAddrLinkSchema>;
export const IpAddrSchema = v.array(IpAddrLinkSchema);

/** One route of `ip -json -4 route show default`. */
export const IpRouteSchema = v.array(
  v.looseObject({
    dst: v.string(),
    gateway: v.optional(v.string()),
    dev: v.optional(v.string()),
    metric: v.optional(v.number()),
  }),
);
export type IpRoute = v.InferOutput<typeof IpRouteSchema>[number];

/** One entry of `ip -json neigh show`. */
export const IpNeighSchema = v.array(
  v.looseObject({ dst: v.string(), state: v.optional(v.array(v.string()), []) }),
);

/** The host's way out: the device of the default route and its gateway. */
export interface Uplink {
  dev: string;
  gateway: string | null;
}

/** A kernel interface (bridge) whose IPv4 network overlaps a host network. */
export interface BridgeConflict {
  ifname: string;
  /** The bridge's own network, e.g. `192.0.2.0/24`. */
  network: string;
  /** The host network it overlaps. */
  host: string;
}

/** The default route with the lowest metric that names a device; null when there is none. */
export function pickDefaultRoute(routes: IpRoute[]): Uplink | null {
  const usable = routes
    .filter((r) => r.dst === "default" && r.dev !== undefined)
    .sort((a, b) => (a.metric ?? 0) - (b.metric ?? 0));
  const best = usable[0];
  return best?.dev ? { dev: best.dev, gateway: best.gateway ?? null } : null;
}

/** The IPv4 networks of one link (`192.0.2.7/24` gives `192.0.2.0/24`). */
export function ipv4Networks(link: IpAddrLink): Cidr[] {
  const out: Cidr[] = [];
  for (const a of link.addr_info) {
    if (a.family !== "inet" || a.local === undefined) continue;
    const c = parseCidr(`${a.local}/${a.prefixlen ?? 32}`);
    if (c) out.push(c);
  }
  return out;
}

/** True when the link is a Linux bridge (needs `ip -details`). */
export function isBridge(link: IpAddrLink): boolean {
  return link.linkinfo?.info_kind === "bridge";
}

/** The first host network that `net` overlaps, or null. */
export function overlapping(net: Cidr, hostNets: Cidr[]): Cidr | null {
  return hostNets.find((h) => overlaps(net, h)) ?? null;
}

/**
 * Every bridge except the uplink whose IPv4 network overlaps a host network,
 * compared as real ranges: a /24 inside a host /16 conflicts, so does a /16
 * around a host /24; 10.1.10.0/24 and 10.1.1.0/24 do not.
 */
export function findBridgeConflicts(
  links: IpAddrLink[],
  uplinkDev: string,
  hostNets: Cidr[],
): BridgeConflict[] {
  const out: BridgeConflict[] = [];
  for (const link of links) {
    if (link.ifname === uplinkDev || !isBridge(link)) continue;
    for (const net of ipv4Networks(link)) {
      const host = overlapping(net, hostNets);
      if (host) {
        out.push({ ifname: link.ifname, network: formatCidr(net), host: formatCidr(host) });
        break;
      }
    }
  }
  return out;
}

/** An Incus-managed bridge whose `ipv4.address` overlaps a host network. */
export interface IncusConflict {
  name: string;
  project: string;
  network: string;
  host: string;
}

/** Managed Incus bridges whose `ipv4.address` overlaps a host network (`none`/`auto` are skipped). */
export function findIncusConflicts(nets: IncusNetwork[], hostNets: Cidr[]): IncusConflict[] {
  const out: IncusConflict[] = [];
  for (const n of nets) {
    if (!n.managed || n.type !== "bridge") continue;
    const c = parseCidr(n.config["ipv4.address"] ?? "");
    if (!c) continue;
    const host = overlapping(c, hostNets);
    if (host)
      out.push({
        name: n.name,
        project: n.project,
        network: formatCidr(c),
        host: formatCidr(host),
      });
  }
  return out;
}

/** What one line of `ip -o -d monitor link address` says. */
export type MonitorEvent =
  /** `bridge` is null when the line does not say (bridge-port events carry no link kind). */
  | { kind: "link"; deleted: boolean; ifindex: number; ifname: string; bridge: boolean | null }
  | { kind: "addr"; deleted: boolean; ifindex: number; ifname: string; cidr: Cidr }
  | { kind: "other" };

const LINK_LINE = /^(Deleted )?(\d+): ([^\s:@]+)(?:@[^\s:]+)?: </;
const ADDR_LINE = /^(Deleted )?(\d+): (\S+)\s+inet (\d+\.\d+\.\d+\.\d+)(?: peer \S+)?(?:\/(\d+))?/;
/** The link kind that `-details` prints after a backslash-joined line break. */
const BRIDGE_KIND = /\\\s+bridge\s/;
/** Only a full link message (not a bridge-port event) prints `promiscuity`. */
const FULL_LINK = / promiscuity \d/;

/**
 * Parse one line of `ip -oneline -details monitor link address` (iproute2
 * prints no JSON for `monitor`). IPv6 and unknown lines are `other`.
 */
export function parseMonitorLine(line: string): MonitorEvent {
  const a = ADDR_LINE.exec(line);
  if (a) {
    const cidr = parseCidr(`${a[4]}/${a[5] ?? "32"}`);
    if (cidr) {
      return {
        kind: "addr",
        deleted: a[1] !== undefined,
        ifindex: Number(a[2]),
        ifname: a[3] ?? "",
        cidr,
      };
    }
  }
  const l = LINK_LINE.exec(line);
  if (l) {
    return {
      kind: "link",
      deleted: l[1] !== undefined,
      ifindex: Number(l[2]),
      ifname: l[3] ?? "",
      bridge: BRIDGE_KIND.test(line) ? true : FULL_LINK.test(line) ? false : null,
    };
  }
  return { kind: "other" };
}

/** The systemd drop-in that runs the guard after every Incus start. */
export function renderDropIn(binary: string): string {
  return [
    "# Written by `incus-guard install` (anklume): after every start of Incus,",
    "# delete any bridge whose subnet overlaps the host's network and restore",
    "# the default route. The leading '-' means a failure never blocks Incus.",
    "[Service]",
    `ExecStartPost=-${binary} post-start`,
    "",
  ].join("\n");
}

/** One log line: ISO-8601 timestamp, the command, the message. */
export function logLine(command: string, message: string, now: Date = new Date()): string {
  return `${now.toISOString()} incus-guard[${command}]: ${message}\n`;
}

/** What the neighbour table says about the gateway: answered ARP, failed, cannot tell (no ARP), not yet. */
export type NeighbourVerdict = "answered" | "failed" | "unknown" | "pending";

/** Read the neighbour states of the gateway's entry (`ip -json neigh`). */
export function neighbourVerdict(states: string[]): NeighbourVerdict {
  if (states.includes("REACHABLE")) return "answered";
  if (states.includes("FAILED")) return "failed";
  if (states.includes("NOARP") || states.includes("PERMANENT")) return "unknown";
  return "pending";
}
