/**
 * The one mapping from the generated variables (what `make sync` wrote and
 * Ansible loads: group_vars, host_vars) to the spec of the isolation ruleset
 * (`NftSpec`: bridges, machines, policies, AI override). The role
 * `incus_nftables` passes only paths and knobs; `scripts/nftables.ts` reads
 * the tree with lib/core/inventory.ts and calls `specFromVars`. Pure.
 *
 * Also `specFromJson`: a spec written out by hand (`nftables.ts --spec`).
 */
import * as v from "valibot";
import { hostCachePorts } from "../provision/package-cache.ts";
import type { NftDomain, NftMachine, NftSpec } from "./ruleset.ts";
import { NftSpecError } from "./ruleset.ts";

type Vars = Record<string, unknown>;

/** The generated variables the ruleset depends on, as Ansible sees them in play 3. */
export interface GeneratedVars {
  /** group_vars/all: what the play's own host (localhost) sees. */
  all: Vars;
  /** `groups['all']`: every inventory host and its merged variables (lib/core/inventory.ts `vars`). */
  hosts: Record<string, Vars>;
}

/** The role's knobs that change the spec (the others are paths and switches of the script). */
export interface NftKnobs {
  /** `incus_nftables_ai_override`, as the user wrote it. */
  aiOverride?: unknown;
}

/** The spec, and what the user should know about the variables it came from. */
export interface SpecResult {
  spec: NftSpec;
  warnings: string[];
}

function isMap(x: unknown): x is Vars {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** A string variable; null and absent are "not set" (Ansible sends a declared-but-unset one as null). */
function str(vars: Vars, key: string, host: string, problems: string[]): string | undefined {
  const x = vars[key];
  if (x === undefined || x === null || x === "") return undefined;
  if (typeof x === "string") return x;
  problems.push(
    `Cannot use ${key} ${JSON.stringify(x)} of host "${host}": not a string; fix its host_vars or group_vars, or run make sync`,
  );
  return undefined;
}

/** `001-net-pro` → `pro`: the bridge name without the nesting prefix and `net-` (v1's pattern). */
export function domainOfBridge(bridge: string): string {
  return bridge.replace(/^(\d{3}-)?net-/, "");
}

/**
 * Build the spec from the generated variables: one domain per distinct
 * `incus_network.name` among the inventory hosts, one machine per host with
 * an `instance_domain`, the policies of group_vars/all, and the AI override.
 * Throws NftSpecError when a variable has the wrong type or when no host has
 * a bridge (an empty ruleset, once loaded, would lift the isolation).
 * @example specFromVars({ all: {}, hosts: { "pro-dev": { domain_name: "pro", incus_network: { name: "001-net-pro" }, instance_domain: "pro" } } })
 */
export function specFromVars(vars: GeneratedVars, knobs: NftKnobs = {}): SpecResult {
  const problems: string[] = [];
  const warnings: string[] = [];
  const domains: NftDomain[] = [];
  const seen = new Set<string>();
  const machines: NftMachine[] = [];
  // Inventory order as the Jinja had it (`groups['all'] | sort`), so the output does not depend on file order.
  const hosts = Object.keys(vars.hosts).sort();
  for (const host of hosts) {
    const hv = vars.hosts[host] ?? {};
    // A domain without machines has no inventory host, so no bridge here (it is not created either).
    const net = hv.incus_network;
    if (net !== undefined && net !== null) {
      const bridge = isMap(net) ? net.name : undefined;
      if (typeof bridge !== "string" || bridge === "") {
        problems.push(
          `Cannot use incus_network ${JSON.stringify(net)} of host "${host}": it needs a name (the bridge); run make sync`,
        );
      } else {
        // Fallback for the domain's name (a hand-edited tree without domain_name):
        // operations-contract §2 writes `domain_name` in group_vars/<domain> and
        // `instance_domain` (the unprefixed domain) in host_vars, so they agree;
        // without either, the name comes from the bridge as v1 derived it
        // (§3.7 step 2: "domain names = bridges with the pattern stripped").
        // Whatever the name, the bridge is isolated: it joins the drop set.
        const name =
          str(hv, "domain_name", host, problems) ??
          str(hv, "instance_domain", host, problems) ??
          domainOfBridge(bridge);
        const key = `${name}\n${bridge}`;
        if (!seen.has(key)) {
          seen.add(key);
          domains.push({ name, bridge });
        }
      }
    }
    const domain = str(hv, "instance_domain", host, problems);
    if (domain !== undefined) {
      const instanceName = str(hv, "instance_name", host, problems);
      const ip = str(hv, "instance_ip", host, problems);
      machines.push({
        name: host,
        domain,
        ...(instanceName !== undefined ? { instanceName } : {}),
        ...(ip !== undefined ? { ip } : {}),
      });
    }
  }

  // Fallback for the policies: operations-contract §2 and §3.7 read
  // `network_policies` from group_vars/all (policies are global), so that is
  // the only place they come from; absent means no policy (everything
  // between bridges dropped). A value a domain's group_vars or a host_vars
  // sets for some hosts is ignored, with a warning (the Jinja used to fall
  // back to the first host's value).
  const policies = vars.all.network_policies ?? [];
  const global = JSON.stringify(vars.all.network_policies ?? null);
  const overriding = hosts.filter(
    (h) => JSON.stringify(vars.hosts[h]?.network_policies ?? null) !== global,
  );
  if (overriding.length > 0) {
    warnings.push(
      `network_policies set for ${overriding.map((h) => `"${h}"`).join(", ")} (in group_vars/<domain> or host_vars) is ignored: policies are global; write them in infra.yml and run make sync`,
    );
  }

  if (domains.length === 0 && problems.length === 0) {
    problems.push(
      "no inventory host has incus_network, so there is no bridge to isolate (an empty ruleset would lift the isolation once deployed); run make sync first, from the directory that holds inventory/, group_vars/ and host_vars/",
    );
  }
  if (problems.length > 0) throw new NftSpecError([...new Set(problems)]);
  return {
    spec: {
      domains,
      machines,
      policies,
      hostPorts: hostCachePorts(vars.all.package_cache),
      ...(knobs.aiOverride !== undefined ? { aiOverride: knobs.aiOverride } : {}),
    },
    warnings,
  };
}

const SpecSchema = v.object({
  domains: v.array(v.strictObject({ name: v.string(), bridge: v.string() })),
  machines: v.array(
    v.object({
      name: v.string(),
      domain: v.string(),
      instance_name: v.optional(v.nullable(v.string())),
      ip: v.optional(v.nullable(v.string())),
    }),
  ),
  policies: v.optional(v.unknown()),
  ai_override: v.optional(v.unknown()),
});

/** Parse a JSON spec (`{domains, machines, policies, ai_override}`, nulls allowed). */
export function specFromJson(text: string, source: string): NftSpec {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new Error(`Cannot parse the spec from ${source}: ${(e as Error).message}`);
  }
  const r = v.safeParse(SpecSchema, data);
  if (!r.success) {
    const issue = r.issues[0];
    const where = issue.path?.map((p) => String(p.key)).join(".") ?? "(root)";
    throw new Error(`Cannot use the spec from ${source}: at ${where}: ${issue.message}`);
  }
  const s = r.output;
  return {
    domains: s.domains,
    machines: s.machines.map((m) => ({
      name: m.name,
      domain: m.domain,
      ...(m.instance_name ? { instanceName: m.instance_name } : {}),
      ...(m.ip ? { ip: m.ip } : {}),
    })),
    policies: s.policies,
    aiOverride: s.ai_override,
  };
}
