/**
 * Names and addresses anklume gives Incus objects: the nesting prefix, bridge
 * names, the base subnet (generator-contract §7). Pure facts shared by the
 * generator's validator, enricher and renderer and by the nftables ruleset.
 */

/** Linux limits interface names (Incus bridges) to 15 characters. */
export const IFNAMSIZ = 15;

/** The first two octets of every domain's network when global.base_subnet is absent. */
export const DEFAULT_BASE_SUBNET = "10.100";

/** Parse `"A.B"`; null when it is not two octets (`"010.5"` → `"10.5"`). */
export function parseBaseSubnet(value: unknown): string | null {
  if (typeof value !== "string") return null;
  const m = /^(\d{1,3})\.(\d{1,3})$/.exec(value);
  if (!m || Number(m[1]) > 255 || Number(m[2]) > 255) return null;
  return `${Number(m[1])}.${Number(m[2])}`;
}

/** The `NNN-` prefix for a nesting level: 1 → "001-", 1000 → "1000-", -1 → "-01-". */
export function nestingPrefix(level: number): string {
  const sign = level < 0 ? "-" : "";
  return `${sign}${String(Math.abs(level)).padStart(level < 0 ? 2 : 3, "0")}-`;
}

/**
 * The bridge name of a domain: `<prefix>net-<domain>`, or `<prefix>net<subnet_id>`
 * when that would exceed Linux's 15-character interface names (e.g. `001-net-ai-tools`).
 */
export function bridgeName(prefix: string, domain: string, subnetId: number): string {
  const name = `${prefix}net-${domain}`;
  return name.length <= IFNAMSIZ ? name : `${prefix}net${subnetId}`;
}

/**
 * True for interfaces that are anklume bridges (`net-*`, `NNN-net-*`, `NNN-netN`):
 * every name `bridgeName` gives, with any prefix `nestingPrefix` gives.
 */
export function isAnklumeBridge(ifname: string): boolean {
  return /^(-?\d+-)?net(-|\d+$)/.test(ifname);
}

/**
 * Names a domain or machine cannot take, with the reason. Ansible reserves the
 * groups `all` and `ungrouped` and the implicit host `localhost` (a domain named
 * `all` would also overwrite group_vars/all.yml, the global variables); network
 * policies use `host` for the physical host.
 */
export const RESERVED_NAMES: ReadonlyMap<string, string> = new Map([
  ["all", "Ansible's group of every host; group_vars/all.yml holds the global variables"],
  ["ungrouped", "Ansible's group of hosts without a group"],
  ["localhost", "Ansible's implicit host for the machine running Ansible"],
  ["host", "network policies use host to mean the physical host"],
]);

/**
 * Why `base` ("A.B") cannot be the base of anklume's networks, or null when it can:
 * 0/8, loopback 127/8, link-local 169.254/16, multicast 224/4 and the reserved 240/4.
 */
export function reservedBaseSubnet(base: string): string | null {
  const [a = 0, b = 0] = base.split(".").map(Number);
  if (a === 0) return "0.0.0.0/8 is reserved for 'this network'";
  if (a === 127) return "127.0.0.0/8 is the loopback range";
  if (a === 169 && b === 254) return "169.254.0.0/16 is the link-local range";
  if (a >= 224 && a <= 239) return "224.0.0.0/4 is the multicast range";
  if (a >= 240) return "240.0.0.0/4 is reserved (and holds the broadcast address)";
  return null;
}
