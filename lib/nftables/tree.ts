/**
 * Read the generated variables that `specFromVars` maps (lib/nftables/spec.ts)
 * from a tree that `make sync` wrote: every inventory host's merged variables
 * through lib/core/inventory.ts, and group_vars/all (what play 3's localhost
 * sees). Files are parsed whole, so user keys below the managed block count.
 */
import { join } from "node:path";
import { readInventory } from "../core/inventory.ts";
import { AI_HOLDER_FILE, holderOverride, readHolderRecord } from "./ai-access.ts";
import { buildRuleset, type NftSpec, type Ruleset } from "./ruleset.ts";
import { type GeneratedVars, specFromVars } from "./spec.ts";

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

/** A ruleset rendered from a generated tree, and who holds the AI access in it. */
export interface TreeRuleset {
  spec: NftSpec;
  ruleset: Ruleset;
  /** The domain that reaches ai-tools with this ruleset (null: no access policy). */
  aiHolder: string | null;
  /** About the variables, the AI access record and the policies (spec and ruleset warnings). */
  warnings: string[];
}

/** An override that says nothing: absent, null, "" or `{}` (the role's default). */
function emptyOverride(x: unknown): boolean {
  return (
    x === undefined ||
    x === null ||
    x === "" ||
    (typeof x === "object" && !Array.isArray(x) && Object.keys(x).length === 0)
  );
}

/**
 * Render the isolation ruleset from the tree under `baseDir` (what `make
 * nftables` writes). The AI access follows, in this order: an explicit
 * `aiOverride` (incus_nftables_ai_override); `holder` (a switch in progress);
 * the record `make ai-switch` left beside the tree (AI_HOLDER_FILE); else
 * network_policies. Throws NftSpecError for invalid variables, Error for an
 * unreadable record or tree.
 */
export function rulesetFromTree(
  baseDir: string,
  opts: { aiOverride?: unknown; holder?: string } = {},
): TreeRuleset {
  const { spec, warnings } = specFromVars(readGeneratedVars(baseDir));
  let aiHolder: string | null;
  if (!emptyOverride(opts.aiOverride)) {
    spec.aiOverride = opts.aiOverride;
    aiHolder = null;
    const o = opts.aiOverride as Record<string, unknown>;
    if (typeof o.from === "string") aiHolder = o.from;
    if (opts.holder === undefined && readHolderRecord(baseDir) !== null) {
      warnings.push(
        `the AI access record "${join(baseDir, AI_HOLDER_FILE)}" is ignored: incus_nftables_ai_override is set`,
      );
    }
  } else {
    const record = opts.holder !== undefined ? { holder: opts.holder } : readHolderRecord(baseDir);
    const h = holderOverride(spec, record, join(baseDir, AI_HOLDER_FILE));
    if (h.override !== undefined) spec.aiOverride = h.override;
    aiHolder = h.holder;
    warnings.push(...h.warnings);
  }
  const ruleset = buildRuleset(spec);
  return { spec, ruleset, aiHolder, warnings: [...warnings, ...ruleset.warnings] };
}
