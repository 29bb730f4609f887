/**
 * Read a generated Ansible tree (inventory/, group_vars/, host_vars/) without
 * running Ansible: for every host, its Incus instance name, its Incus project
 * and its groups. Files are parsed whole with the `yaml` package, so user keys
 * below the managed block count too.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";

/** One host of the inventory, as Incus knows it. */
export interface InventoryHost {
  /** Ansible inventory name (the machine name in infra.yml). */
  host: string;
  /** Real Incus instance name (`instance_name`, e.g. `001-pro-dev`); the host name if unset. */
  instance: string;
  /** Incus project (`incus_project` from host_vars, then the host's groups, then all); `default` if unset. */
  project: string;
  /** Every group the host belongs to (direct and parent groups), sorted. */
  groups: string[];
  /** The host's variables as Ansible merges them: group_vars/all, then its groups (sorted), then host_vars. */
  vars: Vars;
}

/** A whole inventory: hosts sorted by name, each group's hosts, and group_vars/all. */
export interface Inventory {
  hosts: InventoryHost[];
  groups: Map<string, string[]>;
  /** The variables of group `all` alone (what a play on localhost sees). */
  all: Vars;
}

export type Vars = Record<string, unknown>;

function isMap(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function yamlFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => join(dir, f));
}

function loadYaml(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new Error(`Cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    return parse(text);
  } catch (e) {
    throw new Error(`Cannot parse ${path}: ${(e as Error).message.split("\n")[0]}; run make sync`);
  }
}

/** Variables for a group or host: `<dir>/<name>.yml|.yaml` and every file in `<dir>/<name>/`, merged. */
function loadVars(dir: string, name: string): Vars {
  const out: Vars = {};
  const paths = [join(dir, `${name}.yml`), join(dir, `${name}.yaml`)].filter((p) => existsSync(p));
  const sub = join(dir, name);
  if (existsSync(sub) && statSync(sub).isDirectory()) paths.push(...yamlFiles(sub));
  for (const p of paths) {
    const data = loadYaml(p);
    if (isMap(data)) Object.assign(out, data);
  }
  return out;
}

/** Walk one group node of an inventory file, collecting hosts and child groups. */
function walkGroup(
  name: string,
  node: unknown,
  groupHosts: Map<string, Set<string>>,
  children: Map<string, Set<string>>,
): void {
  if (!groupHosts.has(name)) groupHosts.set(name, new Set());
  if (!children.has(name)) children.set(name, new Set());
  if (!isMap(node)) return;
  if (isMap(node.hosts)) for (const h of Object.keys(node.hosts)) groupHosts.get(name)?.add(h);
  if (isMap(node.children)) {
    for (const [child, sub] of Object.entries(node.children)) {
      children.get(name)?.add(child);
      walkGroup(child, sub, groupHosts, children);
    }
  }
}

function stringVar(vars: Vars, key: string): string | undefined {
  const v = vars[key];
  return typeof v === "string" && v !== "" ? v : undefined;
}

/**
 * Read the tree under `baseDir`. Returns null when there is no inventory
 * (no `inventory/*.yml` with any host or group).
 */
export function readInventory(baseDir: string): Inventory | null {
  const files = yamlFiles(join(baseDir, "inventory"));
  if (files.length === 0) return null;
  const groupHosts = new Map<string, Set<string>>();
  const children = new Map<string, Set<string>>();
  for (const f of files) {
    const data = loadYaml(f);
    if (data === null || data === undefined) continue;
    if (!isMap(data)) throw new Error(`Cannot read inventory ${f}: not a mapping; run make sync`);
    for (const [group, node] of Object.entries(data)) walkGroup(group, node, groupHosts, children);
  }
  // Every group's full host set, including the hosts of its child groups.
  const allHosts = (g: string, seen = new Set<string>()): Set<string> => {
    const out = new Set(groupHosts.get(g) ?? []);
    if (seen.has(g)) return out;
    seen.add(g);
    for (const c of children.get(g) ?? []) for (const h of allHosts(c, seen)) out.add(h);
    return out;
  };
  const groups = new Map<string, string[]>();
  for (const g of groupHosts.keys()) groups.set(g, [...allHosts(g)].sort());
  const hostNames = new Set<string>();
  for (const hs of groups.values()) for (const h of hs) hostNames.add(h);
  if (hostNames.size === 0 && groups.size === 0) return null;

  const gvDir = join(baseDir, "group_vars");
  const hvDir = join(baseDir, "host_vars");
  const allVars = loadVars(gvDir, "all");
  const groupVars = new Map<string, Vars>();
  const hosts: InventoryHost[] = [];
  for (const host of [...hostNames].sort()) {
    const hostGroups = [...groups.entries()]
      .filter(([g, hs]) => g !== "all" && g !== "ungrouped" && hs.includes(host))
      .map(([g]) => g)
      .sort();
    const vars: Vars = { ...allVars };
    for (const g of hostGroups) {
      if (!groupVars.has(g)) groupVars.set(g, loadVars(gvDir, g));
      Object.assign(vars, groupVars.get(g));
    }
    Object.assign(vars, loadVars(hvDir, host));
    hosts.push({
      host,
      instance: stringVar(vars, "instance_name") ?? host,
      project: stringVar(vars, "incus_project") ?? "default",
      groups: hostGroups,
      vars,
    });
  }
  return { hosts, groups, all: allVars };
}

/**
 * The hosts a `--limit` selects, with Ansible's pattern syntax: names of
 * groups, hosts or Incus instances separated by `,` or `:`; `all` or `*`;
 * globs (`pro-*`); `~regex`; `!x` excludes, `&x` intersects. Throws naming
 * the patterns that match nothing.
 */
export function selectHosts(inv: Inventory, limit: string | undefined): InventoryHost[] {
  if (!limit || limit === "all") return inv.hosts;
  const every = new Set(inv.hosts.map((h) => h.host));
  const unknown: string[] = [];
  const match = (pat: string): Set<string> => {
    if (pat === "all" || pat === "*") return new Set(every);
    const group = inv.groups.get(pat);
    if (group) return new Set(group);
    const exact = inv.hosts.filter((h) => h.host === pat || h.instance === pat);
    if (exact.length) return new Set(exact.map((h) => h.host));
    let re: RegExp | null = null;
    if (pat.startsWith("~")) {
      try {
        re = new RegExp(pat.slice(1));
      } catch {
        re = null;
      }
    } else if (/[*?]/.test(pat)) {
      const esc = pat
        .replace(/[.+^${}()|[\]\\]/g, "\\$&")
        .replace(/\*/g, ".*")
        .replace(/\?/g, ".");
      re = new RegExp(`^${esc}$`);
    }
    const out = new Set<string>();
    if (re) {
      for (const [g, hs] of inv.groups) if (re.test(g)) for (const h of hs) out.add(h);
      for (const h of inv.hosts) if (re.test(h.host) || re.test(h.instance)) out.add(h.host);
    }
    if (out.size === 0 && !(re && [...inv.groups.keys()].some((g) => re?.test(g))))
      unknown.push(pat);
    return out;
  };
  const union = new Set<string>();
  const intersections: Set<string>[] = [];
  const exclusions: Set<string>[] = [];
  for (const raw of limit
    .split(/[,:]/)
    .map((p) => p.trim())
    .filter((p) => p !== "")) {
    if (raw.startsWith("!")) exclusions.push(match(raw.slice(1)));
    else if (raw.startsWith("&")) intersections.push(match(raw.slice(1)));
    else for (const h of match(raw)) union.add(h);
  }
  if (unknown.length) {
    const known = [...inv.groups.keys()].filter((g) => g !== "all" && g !== "ungrouped").sort();
    throw new Error(
      `Cannot select hosts for --limit "${limit}": ${unknown.map((u) => `"${u}"`).join(", ")} ` +
        `is neither a group nor a host of the inventory; known groups: ${known.join(", ") || "(none)"}`,
    );
  }
  const keep = (h: string) =>
    union.has(h) && intersections.every((s) => s.has(h)) && exclusions.every((s) => !s.has(h));
  return inv.hosts.filter((h) => keep(h.host));
}
