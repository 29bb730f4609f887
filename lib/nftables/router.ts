/**
 * The forward rules of the firewall instance (role firewall_router): the
 * resolved `network_policies` (lib/nftables/ruleset.ts `resolveSpec`, the
 * same resolution as the host's isolation ruleset) mapped onto the firewall's
 * interfaces (`firewall_router_interfaces`, one NIC per bridge). The role
 * renders each rule as an `accept` in its forward chain, whose policy is
 * drop. Pure.
 */
import type { ResolvedPolicy } from "./ruleset.ts";

/** One NIC of the firewall: its name inside the instance and the bridge it sits on. */
export interface RouterInterface {
  name: string;
  bridge: string;
}

/** One accept rule of the firewall's forward chain (the shape of `firewall_router_rules`). */
export interface RouterRule {
  description: string;
  iif: string;
  oif: string;
  saddr?: string;
  daddr?: string;
  /** Only with `ports`: without ports the rule accepts every protocol. */
  protocol?: "tcp" | "udp";
  ports?: number[];
}

/** The rules, and the policies the firewall cannot enforce (with why). */
export interface RouterRules {
  rules: RouterRule[];
  warnings: string[];
}

function oneRule(
  description: string,
  iif: string,
  oif: string,
  from: ResolvedPolicy["from"],
  to: ResolvedPolicy["to"],
  p: ResolvedPolicy,
): RouterRule {
  return {
    description,
    iif,
    oif,
    ...(from.ip !== undefined ? { saddr: from.ip } : {}),
    ...(to.ip !== undefined ? { daddr: to.ip } : {}),
    ...(p.ports !== "all" ? { protocol: p.protocol, ports: [...p.ports] } : {}),
  };
}

/**
 * Map resolved policies onto the firewall's interfaces: a policy from bridge
 * F to bridge T becomes `iif <NIC on F> oif <NIC on T>` (and the reverse when
 * bidirectional), narrowed to the machines' static IPs and to the ports.
 * A policy whose bridge has no NIC on the firewall is left out with a
 * warning; one inside a single bridge never crosses the firewall.
 * @example routerRules([{ description: "web", from: { bridge: "net-a" }, to: { bridge: "net-b" }, ports: [80], protocol: "tcp", bidirectional: false }], [{ name: "eth0", bridge: "net-a" }, { name: "eth1", bridge: "net-b" }])
 */
export function routerRules(
  policies: ResolvedPolicy[],
  interfaces: RouterInterface[],
): RouterRules {
  const nic = new Map<string, string>();
  for (const i of interfaces) if (!nic.has(i.bridge)) nic.set(i.bridge, i.name);
  const rules: RouterRule[] = [];
  const seen = new Set<string>();
  const warnings: string[] = [];
  const add = (r: RouterRule) => {
    const key = JSON.stringify({ ...r, description: "" });
    if (seen.has(key)) return;
    seen.add(key);
    rules.push(r);
  };
  for (const p of policies) {
    const iif = nic.get(p.from.bridge);
    const oif = nic.get(p.to.bridge);
    const lacking = [p.from.bridge, p.to.bridge].filter((b) => !nic.has(b));
    if (iif === undefined || oif === undefined) {
      warnings.push(
        `policy "${p.description}": the firewall has no interface on ${[...new Set(lacking)].map((b) => `"${b}"`).join(" and ")}; it does not forward this traffic (run make apply-infra so its multi-NIC profile covers every bridge)`,
      );
      continue;
    }
    if (iif === oif) continue;
    add(oneRule(p.description, iif, oif, p.from, p.to, p));
    if (p.bidirectional) add(oneRule(p.description, oif, iif, p.to, p.from, p));
  }
  return { rules, warnings };
}

const IFACE = /^[A-Za-z0-9_.-]{1,15}$/;

/** Parse `--interfaces` (JSON list of {name, bridge}); throws a message that says what is wrong. */
export function parseInterfaces(text: string): RouterInterface[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new Error(`Cannot parse the interfaces as JSON: ${(e as Error).message}`);
  }
  // Ansible's to_json of a string that holds JSON: decode once more.
  if (typeof data === "string") return parseInterfaces(data);
  if (!Array.isArray(data)) {
    throw new Error(`Cannot use the interfaces ${text}: expected a list of {name, bridge}`);
  }
  return data.map((x, i) => {
    const ok =
      typeof x === "object" &&
      x !== null &&
      typeof (x as RouterInterface).name === "string" &&
      typeof (x as RouterInterface).bridge === "string";
    if (!ok) {
      throw new Error(
        `Cannot use interface ${i} ${JSON.stringify(x)}: each one needs a name and a bridge (strings)`,
      );
    }
    if (!IFACE.test((x as RouterInterface).name)) {
      throw new Error(
        `Cannot use interface name ${JSON.stringify((x as RouterInterface).name)}: a Linux interface name has 1 to 15 letters, digits, '.', '_' or '-'`,
      );
    }
    return { name: (x as RouterInterface).name, bridge: (x as RouterInterface).bridge };
  });
}
