/**
 * Read the generated variables that `specFromVars` maps (lib/nftables/spec.ts)
 * from a tree that `make sync` wrote: every inventory host's merged variables
 * through lib/core/inventory.ts, and group_vars/all (what play 3's localhost
 * sees). Files are parsed whole, so user keys below the managed block count.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { readInventory } from "../core/inventory.ts";
import type { GeneratedVars } from "./spec.ts";

type Vars = Record<string, unknown>;

/** group_vars/all: `all.yml`, `all.yaml`, then every YAML file of `all/`, merged in that order. */
function allVars(baseDir: string): Vars {
  const dir = join(baseDir, "group_vars");
  const paths = ["all.yml", "all.yaml"].map((f) => join(dir, f)).filter((p) => existsSync(p));
  const sub = join(dir, "all");
  if (existsSync(sub) && statSync(sub).isDirectory()) {
    for (const f of readdirSync(sub).sort()) if (/\.ya?ml$/.test(f)) paths.push(join(sub, f));
  }
  const out: Vars = {};
  for (const p of paths) {
    let data: unknown;
    try {
      data = parse(readFileSync(p, "utf8"));
    } catch (e) {
      throw new Error(`Cannot read "${p}": ${(e as Error).message.split("\n")[0]}; run make sync`);
    }
    if (typeof data === "object" && data !== null && !Array.isArray(data)) Object.assign(out, data);
  }
  return out;
}

/**
 * The generated variables under `baseDir` (inventory/, group_vars/, host_vars/).
 * Throws, saying to run make sync, when there is no inventory.
 */
export function readGeneratedVars(baseDir: string): GeneratedVars {
  const inv = readInventory(baseDir);
  if (inv === null) {
    throw new Error(
      `Cannot find a generated inventory under "${baseDir}" (inventory/*.yml); run make sync first, or pass --base-dir`,
    );
  }
  return {
    all: allVars(baseDir),
    hosts: Object.fromEntries(inv.hosts.map((h) => [h.host, h.vars])),
  };
}
