/**
 * v1's zone-based addressing (`global.addressing`, v1's ADR-038 and its
 * docs/addressing-convention.md), mapped onto anklume's per-domain /24s:
 *
 *   <base_octet>.<zone_base + zone offset>.<domain seq>.<host>/24
 *
 * The zone comes from the domain's `trust_level` (offsets in zone steps:
 * admin 0, trusted 1, semi-trusted 2, untrusted 4, disposable 5; no
 * trust_level reads as semi-trusted). Within a zone, domains without a
 * `subnet_id` take the lowest free sequence number in alphabetical order;
 * an explicit `subnet_id` is kept. Machines without `ip` get `.1`, `.2`, …
 * in declaration order, skipping the static ones (at most `.99`).
 *
 * `applyAddressing` fills `subnet_id` and `ip` in place and records each
 * domain's first two octets, read back by `domainBase` (validate, render,
 * enrich): everything downstream sees an ordinary infra.
 */
import { DEFAULT_BASE_SUBNET, parseBaseSubnet } from "../core/naming.ts";
import type { Domain, Infra } from "./schema.ts";

/** Zone offset of each trust level, in zone steps (v1: 0, 10, 20, 40, 50 with step 10). */
export const ZONE_STEPS: Readonly<Record<string, number>> = {
  admin: 0,
  trusted: 1,
  "semi-trusted": 2,
  untrusted: 4,
  disposable: 5,
};
/** The zone of a domain without trust_level. */
export const DEFAULT_ZONE_TRUST = "semi-trusted";

/** The first two octets of each domain's network, when addressing chose them. */
const bases = new WeakMap<object, string>();

/** A domain's first two octets: its zone's under `global.addressing`, else `base_subnet`'s. */
export function domainBase(global: unknown, dom: unknown): string {
  if (dom && typeof dom === "object") {
    const b = bases.get(dom);
    if (b) return b;
  }
  const raw = (global as { base_subnet?: unknown } | null)?.base_subnet;
  return parseBaseSubnet(raw) ?? DEFAULT_BASE_SUBNET;
}

/** True when the domain's network was chosen by `global.addressing`. */
export function zoned(dom: unknown): boolean {
  return Boolean(dom && typeof dom === "object" && bases.has(dom));
}

/** The addressing settings with v1's defaults. */
export function addressingOf(
  infra: Infra,
): { baseOctet: number; zoneBase: number; zoneStep: number } | null {
  const a = infra.global?.addressing;
  if (!a) return null;
  return {
    baseOctet: a.base_octet ?? 10,
    zoneBase: a.zone_base ?? 100,
    zoneStep: a.zone_step ?? 10,
  };
}

/** The zone's second octet for a trust level. */
export function zoneOctet(
  trust: string | null | undefined,
  zoneBase: number,
  zoneStep: number,
): number {
  return zoneBase + (ZONE_STEPS[trust ?? DEFAULT_ZONE_TRUST] ?? 2) * zoneStep;
}

/**
 * Fill subnet_id and machine IPs from `global.addressing`, in place (the
 * caller passes a copy); returns one info line per domain. Values out of
 * range are left for `addressingIssues` to report.
 */
export function applyAddressing(infra: Infra): string[] {
  const a = addressingOf(infra);
  if (!a) return [];
  const info: string[] = [];
  const domains = infra.domains ?? {};
  const zones = new Map<number, [string, Domain][]>();
  for (const [d, dom] of Object.entries(domains)) {
    const z = zoneOctet(dom.trust_level, a.zoneBase, a.zoneStep);
    zones.set(z, [...(zones.get(z) ?? []), [d, dom]]);
  }
  for (const [z, members] of zones) {
    const used = new Set(
      members.map(([, dom]) => dom.subnet_id).filter((s) => s !== undefined && s !== null),
    );
    for (const [, dom] of [...members].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))) {
      if (dom.subnet_id === undefined || dom.subnet_id === null) {
        let seq = 0;
        while (used.has(seq)) seq++;
        used.add(seq);
        dom.subnet_id = seq;
      }
      bases.set(dom, `${a.baseOctet}.${z}`);
    }
  }
  for (const [d, dom] of Object.entries(domains)) {
    const base = bases.get(dom) as string;
    const prefix = `${base}.${dom.subnet_id}.`;
    const taken = new Set<number>();
    for (const m of Object.values(dom.machines ?? {})) {
      if (typeof m.ip === "string" && m.ip.startsWith(prefix))
        taken.add(Number(m.ip.slice(prefix.length)));
    }
    const given: string[] = [];
    let host = 1;
    for (const [name, m] of Object.entries(dom.machines ?? {})) {
      if (m.ip) continue;
      while (taken.has(host)) host++;
      if (host > 99) break; // reported by addressingIssues
      m.ip = `${prefix}${host}`;
      taken.add(host);
      given.push(`${name} .${host}`);
    }
    const trust = dom.trust_level ?? `${DEFAULT_ZONE_TRUST} (no trust_level)`;
    info.push(
      `global.addressing: domain "${d}" (${trust}) uses ${prefix}0/24${given.length > 0 ? `; IPs assigned: ${given.join(", ")}` : ""}`,
    );
  }
  return info;
}

/** A problem with the addressing settings or what they produced: [path, message, fix]. */
export type AddressingIssue = [path: (string | number)[], message: string, fix: string];

const isObj = (x: unknown): x is Record<string, unknown> =>
  typeof x === "object" && x !== null && !Array.isArray(x);

/**
 * What `applyAddressing` could not do, and base_subnet beside addressing.
 * Reads any data (also a file the shape check refused): what is not a
 * mapping is skipped, the shape check reports it.
 */
export function addressingIssues(data: unknown): {
  errors: AddressingIssue[];
  warnings: AddressingIssue[];
} {
  const errors: AddressingIssue[] = [];
  const warnings: AddressingIssue[] = [];
  if (!isObj(data) || !isObj(data.global) || !isObj(data.global.addressing))
    return { errors, warnings };
  const infra = data as Infra;
  const raw = data.global.addressing;
  const num = (x: unknown, d: number) => (typeof x === "number" ? x : d);
  const a = {
    baseOctet: num(raw.base_octet, 10),
    zoneBase: num(raw.zone_base, 100),
    zoneStep: num(raw.zone_step, 10),
  };
  if (a.baseOctet !== 10) {
    errors.push([
      ["global", "addressing", "base_octet"],
      `base_octet ${a.baseOctet} is not a private /8: zone-based addressing needs 10 (RFC 1918)`,
      "set base_octet: 10, or use global.base_subnet and subnet_id instead of addressing",
    ]);
  }
  if (infra.global?.base_subnet !== undefined && infra.global?.base_subnet !== null) {
    warnings.push([
      ["global", "base_subnet"],
      "base_subnet is ignored: global.addressing chooses every domain's network",
      "remove base_subnet, or remove addressing to use base_subnet and subnet_id",
    ]);
  }
  for (const [d, dom] of Object.entries(isObj(infra.domains) ? infra.domains : {})) {
    if (!isObj(dom)) continue;
    const z = zoneOctet(dom.trust_level, a.zoneBase, a.zoneStep);
    if (z > 255) {
      errors.push([
        ["global", "addressing"],
        `domain "${d}" (${dom.trust_level ?? DEFAULT_ZONE_TRUST}) falls in zone ${z}: zone_base ${a.zoneBase} + ${ZONE_STEPS[dom.trust_level ?? DEFAULT_ZONE_TRUST]} x zone_step ${a.zoneStep} is over 255`,
        "lower zone_base or zone_step so that zone_base + 5 x zone_step is at most 255",
      ]);
    }
    // What applyAddressing left undone (only on the domains it went through).
    if (!zoned(dom)) continue;
    if (typeof dom.subnet_id === "number" && dom.subnet_id > 254) {
      errors.push([
        ["domains", d],
        `zone ${z} has no free /24 left for domain "${d}"`,
        "give some domains of this trust level another trust_level, or an explicit subnet_id",
      ]);
    }
    const machines = isObj(dom.machines) ? dom.machines : {};
    const missing = Object.entries(machines)
      .filter(([, m]) => isObj(m) && !m.ip)
      .map(([n]) => n);
    if (missing.length > 0) {
      errors.push([
        ["domains", d, "machines", missing[0] as string],
        `no address left in .1-.99 for ${missing.map((n) => `"${n}"`).join(", ")} (addressing assigns static IPs from .1 to .99)`,
        "give these machines an explicit ip, or move some to another domain",
      ]);
    }
  }
  return { errors, warnings };
}
