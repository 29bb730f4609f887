/**
 * `make ai-switch D=<domain>`: move the exclusive AI access to another
 * client domain at runtime. Renders the isolation ruleset from the generated
 * tree with the new holder (lib/nftables/tree.ts), checks it and loads it
 * (lib/nftables/deploy.ts, as make nftables-deploy does), flushes GPU memory
 * in the ai-tools machines first when `global.ai_vram_flush` is true, and
 * records the holder beside the tree (lib/nftables/ai-access.ts), so later
 * `make nftables` and `make apply` keep it.
 */

import { writeIfChanged } from "../core/fswrite.ts";
import { readInventory } from "../core/inventory.ts";
import { formatIssue, isMapping } from "../core/issues.ts";
import { incusRaw } from "../incus/client.ts";
import { listInstances } from "../incus/objects.ts";
import { LoadError, loadInfra } from "../sync/infra-load.ts";
import { AI_DOMAIN, switchProblem, writeHolderRecord } from "./ai-access.ts";
import { checkRuleset, loadRuleset } from "./deploy.ts";
import { rulesetFromTree } from "./tree.ts";

/** A switch that cannot be done; nothing was changed unless the message says so. */
export class SwitchError extends Error {}

/**
 * Services that keep models in GPU memory, restarted by the flush when
 * active: ollama_server's `ollama`, and `speaches` (v1's stt_server).
 */
const VRAM_UNITS = ["ollama", "speaches"] as const;

/**
 * The flush, run with `sh` inside each running ai-tools machine: restart the
 * active VRAM_UNITS (a restart drops every model from GPU memory), then
 * report GPU memory with nvidia-smi when it exists. Exit status: the restarts'.
 */
export const FLUSH_SCRIPT = `rc=0; restarted=""
if command -v systemctl >/dev/null 2>&1; then
  for u in ${VRAM_UNITS.join(" ")}; do
    if systemctl is-active --quiet "$u"; then
      if systemctl restart "$u"; then restarted="$restarted $u"; else rc=1; echo "restart of $u failed" >&2; fi
    fi
  done
fi
echo "restarted:\${restarted:- nothing}"
if command -v nvidia-smi >/dev/null 2>&1; then
  echo "gpu memory used: $(nvidia-smi --query-gpu=memory.used --format=csv,noheader | tr '\\n' ' ')"
fi
exit $rc`;

export interface SwitchOptions {
  /** The generated tree's root (inventory/, group_vars/, host_vars/). */
  baseDir: string;
  /** infra.yml or an infra/ directory: global.ai_access_policy and ai_vram_flush. */
  infra: string;
  /** The client domain that gets the access. */
  domain: string;
  /** Where the ruleset is written (make nftables' output). */
  output: string;
  /** Where it is installed and loaded from (make nftables-deploy's destination). */
  dest: string;
  /** Skip the VRAM flush even when ai_vram_flush is true. */
  noFlush?: boolean;
  /** Render and check only: nothing flushed, written, loaded or recorded. */
  dryRun?: boolean;
  /** Progress lines (stderr). */
  log?: (line: string) => void;
}

/** One ai-tools machine's flush. */
export interface FlushReport {
  instance: string;
  project: string;
  /** "flushed", "not running" or "failed". */
  outcome: string;
  output: string;
}

export interface SwitchResult {
  previous: string | null;
  holder: string;
  /** The ruleset file or the live table changed (false in a dry run). */
  changed: boolean;
  flushed: FlushReport[];
  warnings: string[];
  text: string;
}

/** The `global` keys of infra.yml that the switch reads. */
function aiGlobals(data: unknown, file: string): { flush: boolean } {
  const g = isMapping(data) && isMapping(data.global) ? data.global : {};
  const policy = g.ai_access_policy ?? "open";
  if (policy !== "exclusive") {
    throw new SwitchError(
      `Cannot switch the AI access: global.ai_access_policy is ${JSON.stringify(policy)} in ${file}; make ai-switch moves exclusive access: set ai_access_policy: exclusive and ai_access_default, then run make sync`,
    );
  }
  return { flush: g.ai_vram_flush === true };
}

/** The ai-tools machines of the tree: Incus name and project. */
function aiMachines(baseDir: string): { instance: string; project: string }[] {
  const inv = readInventory(baseDir);
  const out: { instance: string; project: string }[] = [];
  for (const h of inv?.hosts ?? []) {
    if (h.vars.instance_domain !== AI_DOMAIN) continue;
    const instance = typeof h.vars.instance_name === "string" ? h.vars.instance_name : h.host;
    const project = typeof h.vars.incus_project === "string" ? h.vars.incus_project : "default";
    out.push({ instance, project });
  }
  return out;
}

/** Run the flush in every running ai-tools machine; stopped ones hold nothing. */
async function flushVram(baseDir: string): Promise<FlushReport[]> {
  const machines = aiMachines(baseDir);
  const live = await listInstances();
  const reports: FlushReport[] = [];
  for (const m of machines) {
    const inst = live.find((i) => i.name === m.instance && i.project === m.project);
    if (inst === undefined || inst.status !== "Running") {
      reports.push({ ...m, outcome: "not running", output: inst?.status ?? "absent" });
      continue;
    }
    const r = await incusRaw(
      ["exec", "--project", m.project, m.instance, "--", "sh", "-c", FLUSH_SCRIPT],
      { input: "\n", timeout: "180s" },
    );
    reports.push({
      ...m,
      outcome: r.exitCode === 0 ? "flushed" : "failed",
      output: `${r.stdout}${r.stderr}`.trim(),
    });
  }
  return reports;
}

/**
 * Move the AI access to `opts.domain`. Order: refuse what cannot work
 * (nothing changed); render and `nft -c` the new ruleset; flush the VRAM
 * (a failed flush stops here: the previous holder keeps the access);
 * load; record the holder.
 */
export async function aiSwitch(opts: SwitchOptions): Promise<SwitchResult> {
  const log = opts.log ?? (() => {});
  let loaded: Awaited<ReturnType<typeof loadInfra>>;
  try {
    loaded = await loadInfra(opts.infra);
  } catch (e) {
    if (!(e instanceof LoadError)) throw e;
    throw new SwitchError(
      `Cannot read ${opts.infra}: ${e.issues.map(formatIssue).join("; ")}; pass the infra with --infra (make: INFRA_SRC)`,
    );
  }
  const globals = aiGlobals(loaded.data, loaded.files[0] ?? opts.infra);

  const warnings: string[] = [];
  let previous: string | null = null;
  try {
    previous = rulesetFromTree(opts.baseDir).aiHolder;
  } catch (e) {
    // A damaged record is replaced by this switch; anything else fails again just below.
    warnings.push((e as Error).message);
  }
  const after = rulesetFromTree(opts.baseDir, { holder: opts.domain });
  const problem = switchProblem(after.spec, opts.domain);
  if (problem !== null) throw new SwitchError(problem);
  warnings.push(...after.warnings);
  const text = after.ruleset.text;
  const result: SwitchResult = {
    previous,
    holder: opts.domain,
    changed: false,
    flushed: [],
    warnings,
    text,
  };
  if (opts.dryRun) return result;

  const written = writeIfChanged(opts.output, text, { mode: 0o644, dirMode: 0o755 });
  await checkRuleset(text, opts.output, opts.output);
  const moving = previous !== opts.domain;
  if (globals.flush && moving && !opts.noFlush) {
    log(`Flushing GPU memory in the ${AI_DOMAIN} machines (global.ai_vram_flush)`);
    result.flushed = await flushVram(opts.baseDir);
    const failed = result.flushed.filter((f) => f.outcome === "failed");
    if (failed.length > 0) {
      throw new SwitchError(
        `Cannot switch the AI access: the VRAM flush failed in ${failed.map((f) => `"${f.instance}" (${f.output})`).join(", ")}; "${previous ?? "nobody"}" keeps the access; fix the service, or switch without the flush (make ai-switch D=${opts.domain} NO_FLUSH=1)`,
      );
    }
  }
  const { changed } = await loadRuleset(text, opts.dest);
  result.changed = changed || written !== "unchanged";
  writeHolderRecord(opts.baseDir, {
    holder: opts.domain,
    previous,
    switched_at: new Date().toISOString(),
  });
  return result;
}
