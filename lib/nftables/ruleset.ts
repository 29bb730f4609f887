/**
 * The inter-bridge isolation ruleset (`table inet anklume`, chain `isolation`,
 * forward hook, priority -1) as a pure function of the generated variables:
 * each domain's bridge (`incus_network.name`), each machine's domain and
 * address, `network_policies` and `incus_nftables_ai_override`. Also the
 * content checks that `nftables-deploy` runs before loading a ruleset.
 */
import { parseIpv4 } from "../core/cidr.ts";
import { IFNAMSIZ } from "../core/naming.ts";

/** A domain and its Incus bridge (`incus_network.name`, e.g. `001-net-pro`). */
export interface NftDomain {
  name: string;
  bridge: string;
}

/** A machine: inventory name, its domain (`instance_domain`), optional Incus name and static IP. */
export interface NftMachine {
  name: string;
  domain: string;
  instanceName?: string;
  ip?: string;
}

/** Everything the ruleset depends on. `policies` and `aiOverride` are taken as users wrote them. */
export interface NftSpec {
  domains: NftDomain[];
  machines: NftMachine[];
  policies?: unknown;
  aiOverride?: unknown;
  /**
   * TCP ports of the host that the domains may open (the package cache of
   * `global.package_cache`). Everything else from an anklume bridge to the
   * host is dropped, except DHCP, DNS and ICMP, which the bridges need.
   */
  hostPorts?: number[];
}

/** One side of a rule: a bridge, narrowed to one address for a machine with a static IP. */
export interface Endpoint {
  bridge: string;
  ip?: string;
}

/** A policy resolved to bridges. */
export interface ResolvedPolicy {
  description: string;
  from: Endpoint;
  to: Endpoint;
  ports: "all" | number[];
  protocol: "tcp" | "udp";
  bidirectional: boolean;
}

/** The rendered ruleset and what was learnt on the way. */
export interface Ruleset {
  text: string;
  bridges: string[];
  policies: ResolvedPolicy[];
  /** Things the user should fix (unknown references, machines without a static IP). */
  warnings: string[];
  /** Policies left out of the forward chain on purpose (`host` ones). */
  skipped: string[];
  /** TCP ports of the host the domains may reach (sorted, unique). */
  hostPorts: number[];
}

/** Invalid input: every problem found, one per line. */
export class NftSpecError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join("\n"));
  }
}

/** Where the role writes the ruleset and where the host deploy installs it (v1 paths). */
export const DEFAULT_OUTPUT = "/opt/anklume/nftables-isolation.nft";
export const DEFAULT_DEST = "/etc/nftables.d/anklume-isolation.nft";

const BRIDGE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function isMap(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** A comment that stays on one line whatever the description holds. */
function commentText(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we strip
  return text.replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
}

function checkBridge(name: string, where: string, problems: string[]): void {
  if (!BRIDGE_NAME.test(name)) {
    problems.push(
      `Cannot use bridge name "${name}" (${where}): only letters, digits, '.', '_' and '-' are allowed; run make sync`,
    );
  } else if (name.length > IFNAMSIZ) {
    problems.push(
      `Cannot use bridge name "${name}" (${where}): Linux interface names have at most ${IFNAMSIZ} characters; shorten the domain name`,
    );
  }
}

interface Resolver {
  domains: Map<string, string>;
  machines: Map<string, NftMachine & { bridge: string }>;
  warnings: string[];
}

function makeResolver(spec: NftSpec, problems: string[]): Resolver {
  const domains = new Map<string, string>();
  for (const d of spec.domains) {
    checkBridge(d.bridge, `domain "${d.name}"`, problems);
    domains.set(d.name, d.bridge);
  }
  const machines = new Map<string, NftMachine & { bridge: string }>();
  const warnings: string[] = [];
  for (const m of spec.machines) {
    const bridge = domains.get(m.domain);
    if (bridge === undefined) {
      warnings.push(`machine "${m.name}" belongs to unknown domain "${m.domain}": ignored`);
      continue;
    }
    if (m.ip !== undefined && parseIpv4(m.ip) === null) {
      problems.push(`Cannot use ip "${m.ip}" of machine "${m.name}": not an IPv4 address`);
    }
    const entry = { ...m, bridge };
    machines.set(m.name, entry);
    if (m.instanceName !== undefined && !machines.has(m.instanceName)) {
      machines.set(m.instanceName, entry);
    }
  }
  return { domains, machines, warnings };
}

/** Resolve one reference: a domain (its bridge), else a machine (its bridge and static IP). */
function resolveRef(r: Resolver, ref: string, label: string): Endpoint | null {
  const bridge = r.domains.get(ref);
  if (bridge !== undefined) return { bridge };
  const m = r.machines.get(ref);
  if (m === undefined) {
    r.warnings.push(
      `${label}: "${ref}" is not a known domain or machine: policy left out; fix network_policies in infra.yml and run make sync`,
    );
    return null;
  }
  if (m.ip === undefined) {
    r.warnings.push(
      `${label}: machine "${ref}" has no static ip: the rule opens its whole bridge "${m.bridge}"; give it an ip in infra.yml`,
    );
    return { bridge: m.bridge };
  }
  return { bridge: m.bridge, ip: m.ip };
}

function parsePorts(raw: unknown, label: string, problems: string[]): "all" | number[] {
  if (raw === undefined || raw === null || raw === "all") return "all";
  if (!Array.isArray(raw)) {
    problems.push(`${label}: ports must be a list or 'all', got ${JSON.stringify(raw)}`);
    return "all";
  }
  const out: number[] = [];
  for (const p of raw) {
    if (typeof p !== "number" || !Number.isInteger(p) || p < 1 || p > 65535) {
      problems.push(`${label}: invalid port ${JSON.stringify(p)} (must be 1-65535)`);
    } else if (!out.includes(p)) {
      out.push(p);
    }
  }
  if (out.length === 0 && raw.length === 0) {
    problems.push(`${label}: ports is an empty list; write 'all' or list the ports`);
  }
  return out;
}

function parseProtocol(raw: unknown, label: string, problems: string[]): "tcp" | "udp" {
  if (raw === undefined || raw === null) return "tcp";
  if (raw === "tcp" || raw === "udp") return raw;
  problems.push(`${label}: protocol must be 'tcp' or 'udp', got ${JSON.stringify(raw)}`);
  return "tcp";
}

function parseBool(raw: unknown, label: string, problems: string[]): boolean {
  if (raw === undefined || raw === null) return false;
  if (typeof raw === "boolean") return raw;
  problems.push(`${label}: bidirectional must be true or false, got ${JSON.stringify(raw)}`);
  return false;
}

/** Resolve `network_policies` to bridge-level rules; `host` policies are skipped, unknown references warned. */
function resolvePolicies(
  raw: unknown,
  r: Resolver,
  problems: string[],
  skipped: string[],
): ResolvedPolicy[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) {
    problems.push("network_policies must be a list; run make sync");
    return [];
  }
  const out: ResolvedPolicy[] = [];
  raw.forEach((p, i) => {
    const label = `network_policies[${i}]`;
    if (!isMap(p)) {
      problems.push(`${label}: must be a mapping`);
      return;
    }
    const description = commentText(
      typeof p.description === "string" && p.description !== "" ? p.description : `policy ${i + 1}`,
    );
    const ends: string[] = [];
    for (const field of ["from", "to"] as const) {
      const v = p[field];
      if (typeof v !== "string" || v === "") problems.push(`${label}: missing '${field}'`);
      else ends.push(v);
    }
    const ports = parsePorts(p.ports, label, problems);
    const protocol = parseProtocol(p.protocol, label, problems);
    const bidirectional = parseBool(p.bidirectional, label, problems);
    if (ends.length !== 2) return;
    const [fromRef, toRef] = ends as [string, string];
    if (fromRef === "host" || toRef === "host") {
      skipped.push(
        `${label} (${description}): involves host, which the forward chain does not filter; not enforced`,
      );
      return;
    }
    const from = resolveRef(r, fromRef, label);
    const to = resolveRef(r, toRef, label);
    if (from === null || to === null) return;
    out.push({ description, from, to, ports, protocol, bidirectional });
  });
  return out;
}

/** Resolve an endpoint of the AI override: `<side>_bridge` (a bridge) or `<side>` (a reference). */
function overrideEnd(
  o: Record<string, unknown>,
  side: "from" | "to",
  r: Resolver,
  problems: string[],
): Endpoint | null {
  const bridge = o[`${side}_bridge`];
  if (typeof bridge === "string" && bridge !== "") {
    checkBridge(bridge, `incus_nftables_ai_override.${side}_bridge`, problems);
    return { bridge };
  }
  const ref = o[side];
  if (typeof ref === "string" && ref !== "") {
    return resolveRef(r, ref, "incus_nftables_ai_override");
  }
  problems.push(
    `incus_nftables_ai_override: missing '${side}_bridge' (a bridge name) or '${side}' (a domain or machine)`,
  );
  return null;
}

/** Apply `incus_nftables_ai_override`: replace every policy towards its bridge by one rule (bidirectional unless it says `bidirectional: false`). */
function applyOverride(
  policies: ResolvedPolicy[],
  raw: unknown,
  r: Resolver,
  problems: string[],
): ResolvedPolicy[] {
  if (raw === undefined || raw === null || raw === "") return policies;
  if (!isMap(raw)) {
    problems.push("incus_nftables_ai_override must be a mapping");
    return policies;
  }
  if (Object.keys(raw).length === 0) return policies;
  const label = "incus_nftables_ai_override";
  const from = overrideEnd(raw, "from", r, problems);
  const to = overrideEnd(raw, "to", r, problems);
  const ports = parsePorts(raw.ports, label, problems);
  const protocol = parseProtocol(raw.protocol, label, problems);
  // v1's override is bidirectional; `make ai-switch` passes the moved policy's direction.
  const bidirectional =
    raw.bidirectional === undefined || raw.bidirectional === null
      ? true
      : parseBool(raw.bidirectional, label, problems);
  if (from === null || to === null) return policies;
  const kept = policies.filter((p) => p.to.bridge !== to.bridge);
  kept.push({
    description: "AI access override (dynamic)",
    from,
    to,
    ports,
    protocol,
    bidirectional,
  });
  return kept;
}

function ruleLine(
  from: Endpoint,
  to: Endpoint,
  ports: "all" | number[],
  protocol: "tcp" | "udp",
): string {
  const parts = [`iifname "${from.bridge}"`, `oifname "${to.bridge}"`];
  if (from.ip !== undefined) parts.push(`ip saddr ${from.ip}`);
  if (to.ip !== undefined) parts.push(`ip daddr ${to.ip}`);
  if (ports !== "all") parts.push(`${protocol} dport { ${ports.join(", ")} }`);
  parts.push("accept");
  return parts.join(" ");
}

/** Resolve and check a spec; throws NftSpecError listing every problem. */
export function resolveSpec(spec: NftSpec): Omit<Ruleset, "text"> {
  const problems: string[] = [];
  const skipped: string[] = [];
  const r = makeResolver(spec, problems);
  let policies = resolvePolicies(spec.policies, r, problems, skipped);
  policies = applyOverride(policies, spec.aiOverride, r, problems);
  if (problems.length > 0) throw new NftSpecError(problems);
  const bridges = [...new Set(spec.domains.map((d) => d.bridge))].sort();
  const hostPorts = [...new Set(spec.hostPorts ?? [])].sort((a, b) => a - b);
  for (const p of hostPorts) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) {
      throw new NftSpecError([`Cannot open host port ${JSON.stringify(p)}: a port is 1 to 65535`]);
    }
  }
  return { bridges, policies, warnings: r.warnings, skipped, hostPorts };
}

/** Render the ruleset text from resolved bridges and policies (the shape of operations-contract §3.7). */
export function renderRuleset(
  bridges: string[],
  policies: ResolvedPolicy[],
  hostPorts: number[] = [],
): string {
  const i1 = "    ";
  const i2 = "        ";
  const lines = [
    "#!/usr/sbin/nft -f",
    "# Generated by anklume (role incus_nftables): inter-bridge isolation.",
    "# Do not edit: this file is overwritten on every run.",
    "# Regenerate with `make nftables`; load on the host with `make nftables-deploy`.",
    "",
    "# Atomic replace: make sure the table exists, delete it, create it again.",
    "table inet anklume;",
    "delete table inet anklume;",
    "",
    "table inet anklume {",
    `${i1}chain isolation {`,
    `${i2}type filter hook forward priority -1; policy accept;`,
    "",
    `${i2}ct state established,related accept`,
    `${i2}ct state invalid drop`,
  ];
  if (bridges.length > 0) {
    lines.push("", `${i2}# Traffic inside one domain's bridge`);
    for (const b of bridges) lines.push(`${i2}iifname "${b}" oifname "${b}" accept`);
  }
  if (policies.length > 0) {
    lines.push("", `${i2}# network_policies`);
    for (const p of policies) {
      lines.push(`${i2}# ${p.description}`);
      lines.push(`${i2}${ruleLine(p.from, p.to, p.ports, p.protocol)}`);
      if (p.bidirectional) lines.push(`${i2}${ruleLine(p.to, p.from, p.ports, p.protocol)}`);
    }
  }
  if (bridges.length >= 2) {
    const set = `{ ${bridges.map((b) => `"${b}"`).join(", ")} }`;
    lines.push("", `${i2}# Everything else between anklume bridges is dropped`);
    lines.push(`${i2}iifname ${set} oifname ${set} drop`);
  }
  lines.push(`${i1}}`);
  if (bridges.length > 0) lines.push("", ...hostInput(bridges, hostPorts, i1, i2));
  lines.push("}", "");
  return lines.join("\n");
}

/**
 * What the domains may open on the host itself: DHCP and DNS (the bridge's
 * dnsmasq), ICMP, and `hostPorts` (the package cache). Only packets that
 * come in on an anklume bridge are filtered; the host's own interfaces are
 * never touched (the chain's policy is accept).
 */
function hostInput(bridges: string[], hostPorts: number[], i1: string, i2: string): string[] {
  const set = `{ ${bridges.map((b) => `"${b}"`).join(", ")} }`;
  const lines = [
    `${i1}chain host-input {`,
    `${i2}type filter hook input priority -1; policy accept;`,
    "",
    `${i2}# Only traffic from anklume bridges to the host is filtered here`,
    `${i2}iifname != ${set} accept`,
    `${i2}ct state established,related accept`,
    `${i2}ct state invalid drop`,
    `${i2}meta l4proto { icmp, ipv6-icmp } accept`,
    `${i2}udp dport { 53, 67, 547 } accept`,
    `${i2}tcp dport 53 accept`,
  ];
  if (hostPorts.length > 0) {
    lines.push(`${i2}# The host package caches: apt, PyPI, npm (global.package_cache)`);
    lines.push(`${i2}tcp dport { ${hostPorts.join(", ")} } accept`);
  }
  lines.push(`${i2}# Nothing else on the host answers the domains`, `${i2}drop`, `${i1}}`);
  return lines;
}

/** Resolve a spec and render it. */
export function buildRuleset(spec: NftSpec): Ruleset {
  const resolved = resolveSpec(spec);
  return {
    ...resolved,
    text: renderRuleset(resolved.bridges, resolved.policies, resolved.hostPorts),
  };
}

/**
 * Content checks before a ruleset is loaded on a host: every `table` line and
 * every command naming a table names `inet anklume`; nothing flushes the
 * ruleset, deletes `inet filter`, sets a drop policy on an input chain or
 * includes another file. Comment lines are skipped. Returns the offending
 * lines (empty: safe).
 */
export function unsafeLines(text: string): string[] {
  const bad: string[] = [];
  const command =
    /^(add|create|insert|replace|delete|destroy|flush|reset|list)\s+(rule|chain|set|map|element|flowtable|counter|quota|limit|ct\s+\w+)\s+(\S+)\s+(\S+)/i;
  text.split("\n").forEach((line, i) => {
    const code = line.trim();
    if (code === "" || code.startsWith("#")) return;
    const where = `line ${i + 1}: ${code}`;
    const cmd = command.exec(code);
    if (/^(\w+\s+)?table\b/i.test(code)) {
      if (!/^(\w+\s+)?table\s+inet\s+anklume\s*(;|\{|$)/i.test(code)) bad.push(where);
    } else if (cmd && !(cmd[3]?.toLowerCase() === "inet" && cmd[4]?.toLowerCase() === "anklume")) {
      bad.push(where);
    } else if (/flush\s+ruleset/i.test(code)) bad.push(where);
    else if (/delete\s+table\s+inet\s+filter/i.test(code)) bad.push(where);
    else if (/drop.*input.*policy|hook\s+input\b.*policy\s+drop/i.test(code)) bad.push(where);
    else if (/^include\b/i.test(code)) bad.push(where);
  });
  return bad;
}
