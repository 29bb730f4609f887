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
