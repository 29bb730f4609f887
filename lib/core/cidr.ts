/**
 * IPv4 addresses and CIDR ranges as numbers: parsing, containment, overlap.
 * Used by the generator's host-subnet check and by incus-guard.
 */

/** An IPv4 network: first address and prefix length. */
export interface Cidr {
  /** Network address as an unsigned 32-bit number. */
  base: number;
  prefix: number;
}

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** Parse a dotted-quad IPv4 address; null when it is not one. `parseIpv4("10.0.0.1") === 167772161` */
export function parseIpv4(text: string): number | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let n = 0;
  for (const p of parts) {
    if (!OCTET.test(p)) return null;
    n = n * 256 + Number(p);
  }
  return n;
}

/** Format an unsigned 32-bit number as a dotted quad. */
export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** The netmask of a prefix length as an unsigned number. */
function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parse `A.B.C.D/N` (host bits allowed, they are cleared); null when invalid. */
export function parseCidr(text: string): Cidr | null {
  const [addr, len, extra] = text.split("/");
  if (addr === undefined || len === undefined || extra !== undefined) return null;
  if (!/^\d{1,2}$/.test(len)) return null;
  const prefix = Number(len);
  const ip = parseIpv4(addr);
  if (ip === null || prefix > 32) return null;
  return { base: (ip & mask(prefix)) >>> 0, prefix };
}

/** Format a network as `A.B.C.D/N`. */
export function formatCidr(c: Cidr): string {
  return `${formatIpv4(c.base)}/${c.prefix}`;
}

/** True when the address lies inside the network. */
export function contains(c: Cidr, ip: number): boolean {
  return (ip & mask(c.prefix)) >>> 0 === c.base;
}

/** True when two networks share at least one address (whatever their prefix lengths). */
export function overlaps(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return (a.base & mask(p)) >>> 0 === (b.base & mask(p)) >>> 0;
}
