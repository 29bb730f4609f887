/**
 * Read the generated variables that `specFromVars` maps (lib/nftables/spec.ts)
 * from a tree that `make sync` wrote: every inventory host's merged variables
 * through lib/core/inventory.ts, and group_vars/all (what play 3's localhost
 * sees). Files are parsed whole, so user keys below the managed block count.
 */
import { readInventory } from "../core/inventory.ts";
import type { GeneratedVars } from "./spec.ts";

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
    all: inv.all,
    hosts: Object.fromEntries(inv.hosts.map((h) => [h.host, h.vars])),
  };
}
