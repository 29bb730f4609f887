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
}

/** A whole inventory: hosts sorted by name, and each group's hosts. */
export interface Inventory {
  hosts: InventoryHost[];
  groups: Map<string, string[]>;
}

type Vars = Record<string, unknown>;

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
    const hv = loadVars(hvDir, host);
    let project = stringVar(hv, "incus_project");
    for (const g of hostGroups) {
      if (project) break;
      if (!groupVars.has(g)) groupVars.set(g, loadVars(gvDir, g));
      project = stringVar(groupVars.get(g) ?? {}, "incus_project");
    }
    project ??= stringVar(allVars, "incus_project") ?? "default";
    hosts.push({
      host,
      instance: stringVar(hv, "instance_name") ?? host,
      project,
      groups: hostGroups,
    });
  }
  return { hosts, groups };
}

/**
 * The hosts a `--limit` selects: comma- or colon-separated group or host
 * names (`all` selects everything). Throws naming the patterns that match nothing.
 */
export function selectHosts(inv: Inventory, limit: string | undefined): InventoryHost[] {
  if (!limit || limit === "all") return inv.hosts;
  const wanted = new Set<string>();
  const unknown: string[] = [];
  for (const pat of limit
    .split(/[,:]/)
    .map((p) => p.trim())
    .filter((p) => p !== "")) {
    const group = inv.groups.get(pat);
    if (pat === "all") for (const h of inv.hosts) wanted.add(h.host);
    else if (group) for (const h of group) wanted.add(h);
    else if (inv.hosts.some((h) => h.host === pat || h.instance === pat)) {
      for (const h of inv.hosts) if (h.host === pat || h.instance === pat) wanted.add(h.host);
    } else unknown.push(pat);
  }
  if (unknown.length) {
    const known = [...inv.groups.keys()].filter((g) => g !== "all" && g !== "ungrouped").sort();
    throw new Error(
      `Cannot select hosts for --limit "${limit}": ${unknown.map((u) => `"${u}"`).join(", ")} ` +
        `is neither a group nor a host of the inventory; known groups: ${known.join(", ") || "(none)"}`,
    );
  }
  return inv.hosts.filter((h) => wanted.has(h.host));
}
