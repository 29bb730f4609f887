/**
 * Read a generated Ansible tree (inventory/, group_vars/, host_vars/) without
 * running Ansible: for every host, its Incus instance name, its Incus project
 * and its groups. Files are parsed whole with the `yaml` package, so user keys
 * below the managed block count too.
 *
 * Speed: parsing the tree of 3 domains x 6 machines with the `yaml` package
 * (and importing it) took about 0.1 s of every no-op apply's 0.45 s process
 * (bench/apply.ts). The values parsed are kept in the cache
 * (lib/core/cache.ts), keyed by a hash of every file's path and text, so an
 * unchanged tree is one JSON read; `yaml` is imported only on a miss.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { join, relative, resolve } from "node:path";
import process from "node:process";
import { cacheDir, cacheEnabled, textHash } from "./cache.ts";

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

/** The YAML files directly in `dir`, sorted. */
function yamlFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => join(dir, f));
}

/** The directories directly in `dir`. */
function subDirs(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => join(dir, e.name));
}

/**
 * Every file the reader may parse, by path: inventory/*.y(a)ml, and in
 * group_vars/ and host_vars/ each `<name>.y(a)ml` and `<name>/*.y(a)ml`.
 */
function treeTexts(baseDir: string): Map<string, string> {
  const paths = yamlFiles(join(baseDir, "inventory"));
  for (const d of ["group_vars", "host_vars"]) {
    const dir = join(baseDir, d);
    paths.push(...yamlFiles(dir));
    for (const sub of subDirs(dir)) paths.push(...yamlFiles(sub));
  }
  const texts = new Map<string, string>();
  for (const p of paths) {
    try {
      texts.set(p, readFileSync(p, "utf8"));
    } catch (e) {
      throw new Error(`Cannot read ${p}: ${(e as Error).message}`);
    }
  }
  return texts;
}

// `yaml` is loaded on a cache miss only, synchronously (createRequire), so
// that readInventory stays a plain function for its callers.
let yaml: typeof import("yaml") | undefined;
function yamlModule(): typeof import("yaml") {
  yaml ??= createRequire(import.meta.url)("yaml") as typeof import("yaml");
  return yaml;
}

type Load = (path: string) => unknown;
const NOT_CACHED = Symbol("not cached");

/** The cache file of one tree, and the key of its texts. */
function cacheEntry(baseDir: string, texts: Map<string, string>): { file: string; key: string } {
  const root = resolve(baseDir);
  let all = "";
  for (const [p, text] of texts) all += `${relative(root, p)}\0${text}\0`;
  return { file: join(cacheDir(), "inventory", `${textHash(root)}.json`), key: textHash(all) };
}

/** The values parsed last time, when every file is as it was then. */
function cachedValues(entry: { file: string; key: string }): Map<string, unknown> | undefined {
  try {
    const c = JSON.parse(readFileSync(entry.file, "utf8")) as {
      key?: string;
      values?: [string, unknown][];
    };
    if (c.key === entry.key && Array.isArray(c.values)) return new Map(c.values);
  } catch {
    // Missing or unreadable: parse.
  }
  return undefined;
}

/** At most this many trees are remembered; the oldest go first. */
export const INVENTORY_CACHE_ENTRIES = 32;

function saveValues(entry: { file: string; key: string }, values: Map<string, unknown>): void {
  try {
    const dir = join(entry.file, "..");
    mkdirSync(dir, { recursive: true });
    const tmp = `${entry.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ key: entry.key, values: [...values] }));
    renameSync(tmp, entry.file);
    const files = readdirSync(dir).filter((f) => f.endsWith(".json"));
    if (files.length > INVENTORY_CACHE_ENTRIES) {
      const byAge = files
        .map((f) => ({ f: join(dir, f), t: statSync(join(dir, f)).mtimeMs }))
        .sort((a, b) => a.t - b.t);
      for (const { f } of byAge.slice(0, files.length - INVENTORY_CACHE_ENTRIES))
        rmSync(f, { force: true });
    }
  } catch {
    // Only an optimisation: the next read parses again.
  }
}

/** Variables for a group or host: `<dir>/<name>.yml|.yaml` and every file in `<dir>/<name>/`, merged. */
function loadVars(
  texts: Map<string, string>,
  byDir: Map<string, string[]>,
  load: Load,
  dir: string,
  name: string,
): Vars {
  const out: Vars = {};
  const paths = [join(dir, `${name}.yml`), join(dir, `${name}.yaml`)].filter((p) => texts.has(p));
  paths.push(...(byDir.get(join(dir, name)) ?? []));
  for (const p of paths) {
    const data = load(p);
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
  const texts = treeTexts(baseDir);
  const useCache = cacheEnabled();
  const entry = cacheEntry(baseDir, texts);
  const cached = useCache ? cachedValues(entry) : undefined;
  if (cached) {
    const fromCache: Load = (p) => {
      if (!cached.has(p)) throw NOT_CACHED;
      return cached.get(p);
    };
    try {
      return buildInventory(baseDir, texts, fromCache);
    } catch (e) {
      if (e !== NOT_CACHED) throw e;
    }
  }
  const { parse } = yamlModule();
  const values = new Map<string, unknown>();
  const inv = buildInventory(baseDir, texts, (p) => {
    let v: unknown;
    try {
      v = parse(texts.get(p) as string);
    } catch (e) {
      throw new Error(`Cannot parse ${p}: ${(e as Error).message.split("\n")[0]}; run make sync`);
    }
    values.set(p, v);
    return v;
  });
  if (useCache) saveValues(entry, values);
  return inv;
}

/** The inventory of a tree whose files are `texts`, each parsed by `load`. */
function buildInventory(baseDir: string, texts: Map<string, string>, load: Load): Inventory | null {
  const files = [...texts.keys()].filter((p) => join(p, "..") === join(baseDir, "inventory"));
  if (files.length === 0) return null;
  const groupHosts = new Map<string, Set<string>>();
  const children = new Map<string, Set<string>>();
  for (const f of files) {
    const data = load(f);
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
  const byDir = new Map<string, string[]>();
  for (const p of texts.keys()) {
    const dir = join(p, "..");
    byDir.set(dir, [...(byDir.get(dir) ?? []), p]);
  }
  const vars = (dir: string, name: string) => loadVars(texts, byDir, load, dir, name);
  const allVars = vars(gvDir, "all");
  const groupVars = new Map<string, Vars>();
  const hosts: InventoryHost[] = [];
  for (const host of [...hostNames].sort()) {
    const hostGroups = [...groups.entries()]
      .filter(([g, hs]) => g !== "all" && g !== "ungrouped" && hs.includes(host))
      .map(([g]) => g)
      .sort();
    const merged: Vars = { ...allVars };
    for (const g of hostGroups) {
      if (!groupVars.has(g)) groupVars.set(g, vars(gvDir, g));
      Object.assign(merged, groupVars.get(g));
    }
    Object.assign(merged, vars(hvDir, host));
    hosts.push({
      host,
      instance: stringVar(merged, "instance_name") ?? host,
      project: stringVar(merged, "incus_project") ?? "default",
      groups: hostGroups,
      vars: merged,
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
