/**
 * `make flush` on the daemon: read what it holds, plan (`flush.ts`), delete
 * in order (instances side by side, protection lifted first; then images,
 * volumes and profiles; then projects; then bridges), then the generated
 * tree (`tree.ts`), only when every Incus deletion succeeded, so a failed
 * flush can be run again (it reads this infra's id from the tree).
 */
import { type HostVars, infraId } from "../apply/desired.ts";
import { readInventory } from "../core/inventory.ts";
import { incusRaw } from "../incus/client.ts";
import {
  listImages,
  listInstances,
  listNetworks,
  listPools,
  listProfiles,
  listProjects,
  listVolumes,
} from "../incus/objects.ts";
import { runPool } from "../snapshots/ops.ts";
import { type FlushPlan, type FlushState, type FlushStep, flushSteps, planFlush } from "./flush.ts";
import { applyTree, type FileAction, planTree } from "./tree.ts";

/** The id of the infra whose tree is under `baseDir`, or null without a tree. */
export function infraIdFromTree(baseDir: string): string | null {
  const inv = readInventory(baseDir);
  if (!inv) return null;
  const hosts = inv.hosts.map((h) => h.vars as HostVars);
  if (!hosts.some((h) => h.incus_project)) return null;
  return infraId(hosts);
}

/** Everything flush reads: five listings, plus one per storage pool. */
export async function readFlushState(): Promise<FlushState> {
  const [projects, networks, profiles, instances, images, pools] = await Promise.all([
    listProjects(),
    listNetworks(),
    listProfiles(),
    listInstances(),
    listImages(),
    listPools(),
  ]);
  const volumes = (
    await Promise.all(
      pools.map(async (p) =>
        (
          await listVolumes(p.name)
        ).map((x) => ({ name: x.name, type: x.type, project: x.project, pool: p.name })),
      ),
    )
  ).flat();
  return { projects, networks, profiles, instances, images, volumes };
}

/** One step's outcome. */
export interface StepResult {
  step: FlushStep;
  ok: boolean;
  error?: string;
}

/** What a flush did. */
export interface FlushResult {
  plan: FlushPlan;
  steps: StepResult[];
  tree: FileAction[];
  /** Folders of the tree removed because they were left empty. */
  dirs: string[];
  /** True when the tree was left alone because an Incus deletion failed. */
  treeKept: boolean;
}

async function run(step: FlushStep): Promise<void> {
  if (step.unprotect) {
    const u = await incusRaw(step.unprotect);
    if (u.exitCode !== 0) throw new Error(u.stderr.trim().replace(/^Error: /, ""));
  }
  for (let attempt = 1; ; attempt++) {
    const r = await incusRaw(step.args, { timeout: "300s" });
    if (r.exitCode === 0) return;
    if (attempt >= LINK_RACE_TRIES || !LINK_RACE.test(r.stderr)) {
      throw new Error(r.stderr.trim().replace(/^Error: /, "") || `exit ${r.exitCode}`);
    }
    await new Promise((res) => setTimeout(res, 300 * attempt));
  }
}

/**
 * Incus lists every host link to find a bridge's ports and fails when some
 * other link (a veth, another infra's bridge) vanishes in between ("Failed to
 * run: ip -d -j link show <link>: exit status 1"). Nothing was changed; the
 * same call succeeds once that link is gone, so it is tried again.
 */
const LINK_RACE = /Failed to run: ip -d -j link show \S+: exit status 1/;
const LINK_RACE_TRIES = 5;

/**
 * Flush the infra `id` and the tree under `baseDir`. With `dryRun`, plan
 * only (every step reported as ok, nothing touched).
 */
export async function flush(
  id: string,
  baseDir: string,
  opts: { dryRun?: boolean; jobs?: number; onStep?: (r: StepResult) => void } = {},
): Promise<FlushResult> {
  const plan = planFlush(await readFlushState(), id);
  const tree = planTree(baseDir);
  const onStep = opts.onStep ?? (() => {});
  if (opts.dryRun) {
    const steps = flushSteps(plan).map((step) => ({ step, ok: true }));
    for (const s of steps) onStep(s);
    return { plan, steps, tree, dirs: [], treeKept: false };
  }
  const steps: StepResult[] = [];
  const record = (r: StepResult) => {
    steps.push(r);
    onStep(r);
  };
  // Instances side by side; the other groups one by one, in order (a project
  // goes only once its contents are gone).
  await runPool(plan.instances, opts.jobs ?? 4, run, (r) =>
    record({ step: r.item, ok: r.ok, ...(r.error ? { error: r.error } : {}) }),
  );
  for (const group of [plan.contents, plan.projects, plan.networks]) {
    for (const step of group) {
      try {
        await run(step);
        record({ step, ok: true });
      } catch (e) {
        record({ step, ok: false, error: (e as Error).message });
      }
    }
  }
  const failed = steps.some((s) => !s.ok);
  if (failed) return { plan, steps, tree, dirs: [], treeKept: true };
  const { dirs } = applyTree(baseDir, tree);
  return { plan, steps, tree, dirs, treeKept: false };
}
