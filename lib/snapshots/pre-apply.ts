/**
 * The pre-apply safety net (`make apply`, `make rollback*`) as library
 * functions: `createPreApply` snapshots every instance of the inventory,
 * `rollback` restores them, `cleanup` applies retention and `listPreApply`
 * reads the history. Planning is pure (`planCreate`, `planRollback`,
 * `planDeletes`); the rest reads the tree and the state files and calls incus
 * through ops.ts. Printing, prompts and exit codes are the caller's
 * (scripts/snapshot-apply.ts): progress comes back through callbacks.
 *
 * @example
 * const r = await createPreApply({ baseDir: ".", stateDir: stateDir() });
 * if (r.kind === "done") console.error(`${r.ok} created, ${r.failed} failed`);
 */
import { type InventoryHost, readInventory, selectHosts } from "../core/inventory.ts";
import {
  DEFAULT_KEEP,
  freshTimestamp,
  planCleanup,
  preApplyName,
  preApplyTimestamp,
  readState,
  recordSnapshot,
  writeHistory,
} from "./naming.ts";
import {
  type BatchResult,
  currentHostname,
  listInstancesWithSnapshots,
  runPool,
  type SnapInstance,
  snapshotCall,
  snapshotNames,
} from "./ops.ts";

/** What every pre-apply operation needs. */
export interface PreApplyOptions {
  /** Where inventory/, group_vars/ and host_vars/ live. */
  baseDir: string;
  /** The state files (`latest`, `latest-scope`, `history`). */
  stateDir: string;
  /** How many incus calls run at once (default 4). */
  jobs?: number;
  /** Plan and report; change nothing. */
  dryRun?: boolean;
}

/** Progress callbacks: the plan before any change, then each call as it completes. */
export interface BatchEvents<P> {
  onPlan?: (plan: P) => void;
  onDone?: (r: BatchResult<InventoryHost>, done: number) => void;
}

const key = (name: string, project: string) => `${project}/${name}`;
const byKey = (all: readonly SnapInstance[]) =>
  new Map(all.map((i) => [key(i.name, i.project), i]));

// ---- create ----------------------------------------------------------------

/** Which hosts get snapshot `snap`, and which are not in Incus. */
export interface CreatePlan {
  scope: string;
  ts: string;
  snap: string;
  present: InventoryHost[];
  missing: InventoryHost[];
}

/**
 * Plan a pre-apply snapshot: split `hosts` into those Incus has and those it
 * lacks, and pick a timestamp whose name neither the history nor any of those
 * instances already holds.
 */
export function planCreate(
  hosts: readonly InventoryHost[],
  scope: string,
  instances: readonly SnapInstance[],
  history: readonly string[],
  now: Date,
): CreatePlan {
  const found = byKey(instances);
  const present: InventoryHost[] = [];
  const missing: InventoryHost[] = [];
  for (const h of hosts) (found.has(key(h.instance, h.project)) ? present : missing).push(h);
  const taken = [
    ...history,
    ...present.flatMap((h) => snapshotNames(found.get(key(h.instance, h.project)) as SnapInstance)),
  ];
  const ts = freshTimestamp(now, taken);
  return { scope, ts, snap: preApplyName(ts), present, missing };
}

/** What `createPreApply` did. */
export type CreateResult =
  | { kind: "no-inventory" }
  | { kind: "empty-scope"; scope: string }
  | { kind: "dry-run"; plan: CreatePlan }
  | {
      kind: "done";
      plan: CreatePlan;
      results: BatchResult<InventoryHost>[];
      ok: number;
      failed: number;
      /** True when the state files now point at this snapshot (at least one was taken). */
      recorded: boolean;
    };

/**
 * Snapshot every instance in scope (`limit`: Ansible's pattern syntax, as
 * `selectHosts`) as `pre-apply-<ts>`, and record it when at least one
 * snapshot was taken. A failed snapshot is a result, not an exception; an
 * unknown `limit` throws before anything changes.
 */
export async function createPreApply(
  o: PreApplyOptions & BatchEvents<CreatePlan> & { limit?: string; now?: Date },
): Promise<CreateResult> {
  const inv = readInventory(o.baseDir);
  if (!inv) return { kind: "no-inventory" };
  const hosts = selectHosts(inv, o.limit);
  const scope = o.limit ?? "all";
  if (hosts.length === 0) return { kind: "empty-scope", scope };
  const all = await listInstancesWithSnapshots();
  const plan = planCreate(hosts, scope, all, readState(o.stateDir).history, o.now ?? new Date());
  o.onPlan?.(plan);
  if (o.dryRun) return { kind: "dry-run", plan };
  const results = await runPool(
    plan.present,
    o.jobs ?? 4,
    (h) => snapshotCall("create", h.instance, plan.snap, h.project),
    o.onDone,
  );
  const ok = results.filter((r) => r.ok).length;
  if (ok > 0) recordSnapshot(o.stateDir, plan.ts, scope);
  return { kind: "done", plan, results, ok, failed: results.length - ok, recorded: ok > 0 };
}

// ---- rollback --------------------------------------------------------------

/** Which hosts hold snapshot `snap`: the others first, the one this runs in last. */
export interface RollbackPlan {
  snap: string;
  /** Every host to restore (others, then self). */
  todo: InventoryHost[];
  others: InventoryHost[];
  /** The instance this runs in, restored after the others: restoring it ends the session. */
  self: InventoryHost[];
  skipped: InventoryHost[];
}

/** Plan a rollback to `snap`: the hosts whose instance holds it, this host (`me`) last. */
export function planRollback(
  hosts: readonly InventoryHost[],
  instances: readonly SnapInstance[],
  snap: string,
  me: string,
): RollbackPlan {
  const found = byKey(instances);
  const todo: InventoryHost[] = [];
  const skipped: InventoryHost[] = [];
  for (const h of hosts) {
    const i = found.get(key(h.instance, h.project));
    (i && snapshotNames(i).includes(snap) ? todo : skipped).push(h);
  }
  const others = todo.filter((h) => h.instance !== me);
  const self = todo.filter((h) => h.instance === me);
  return { snap, todo: [...others, ...self], others, self, skipped };
}

/** What `rollback` did. */
export type RollbackResult =
  | { kind: "no-target" }
  | { kind: "no-inventory"; snap: string }
  | { kind: "nothing"; plan: RollbackPlan }
  | { kind: "dry-run"; plan: RollbackPlan }
  | {
      kind: "done";
      plan: RollbackPlan;
      results: BatchResult<InventoryHost>[];
      ok: number;
      failed: number;
    };

/**
 * Restore every instance of the inventory that holds `pre-apply-<ts>` (`ts`,
 * else the latest recorded), the instance this runs in (`hostname`, default
 * `currentHostname()`) last, after `onSelf`. A failed restore is a result.
 */
export async function rollback(
  o: PreApplyOptions &
    BatchEvents<RollbackPlan> & {
      ts?: string;
      hostname?: string;
      onSelf?: (h: InventoryHost) => void;
    },
): Promise<RollbackResult> {
  const ts = o.ts ?? readState(o.stateDir).latest;
  if (!ts) return { kind: "no-target" };
  const snap = preApplyName(ts);
  const inv = readInventory(o.baseDir);
  if (!inv) return { kind: "no-inventory", snap };
  const all = await listInstancesWithSnapshots();
  const plan = planRollback(inv.hosts, all, snap, o.hostname ?? currentHostname());
  o.onPlan?.(plan);
  if (plan.todo.length === 0) return { kind: "nothing", plan };
  if (o.dryRun) return { kind: "dry-run", plan };
  const restore = (h: InventoryHost) => snapshotCall("restore", h.instance, snap, h.project);
  const results = await runPool(plan.others, o.jobs ?? 4, restore, o.onDone);
  for (const h of plan.self) {
    o.onSelf?.(h);
    const done = results.length + 1;
    results.push(...(await runPool([h], 1, restore, (r) => o.onDone?.(r, done))));
  }
  const ok = results.filter((r) => r.ok).length;
  return { kind: "done", plan, results, ok, failed: results.length - ok };
}

// ---- list ------------------------------------------------------------------

/** One line of `make rollback-list`. */
export interface PreApplyRow {
  name: string;
  timestamp: string | null;
  latest: boolean;
}

/** The recorded pre-apply snapshots, oldest first, the latest marked. */
export function listPreApply(stateDir: string): PreApplyRow[] {
  const { history, latest } = readState(stateDir);
  const latestName = latest ? preApplyName(latest) : null;
  return history.map((name) => ({
    name,
    timestamp: preApplyTimestamp(name),
    latest: name === latestName,
  }));
}

// ---- cleanup ---------------------------------------------------------------

/** One snapshot to delete from one instance. */
export interface Deletion {
  name: string;
  inst: SnapInstance;
}

/**
 * Every (name, instance) pair to delete, grouped by instance: one group's
 * deletions run one after the other, because concurrent deletes on one
 * instance make Incus fail ("snapshot record count doesn't match snapshot
 * volume record count"). Every instance of every project that holds a name.
 */
export function planDeletes(remove: readonly string[], instances: readonly SnapInstance[]) {
  const groups = new Map<string, Deletion[]>();
  for (const name of remove) {
    for (const inst of instances) {
      if (!snapshotNames(inst).includes(name)) continue;
      const k = key(inst.name, inst.project);
      groups.set(k, [...(groups.get(k) ?? []), { name, inst }]);
    }
  }
  return [...groups.values()];
}

/** What `cleanup` did. */
export type CleanupResult =
  | { kind: "nothing"; count: number; keep: number }
  | { kind: "dry-run"; remove: string[] }
  | {
      kind: "done";
      /** Names deleted everywhere, with how many instances held each. */
      deleted: { name: string; count: number }[];
      /** Names that stay in the history because a deletion failed. */
      failed: string[];
    };

/**
 * Delete all but the newest `keep` (default 3) recorded pre-apply snapshots
 * from every instance that holds them. A name whose deletion failed stays in
 * the history (reported through `onFailed`), so the next cleanup retries it.
 */
export async function cleanup(
  o: PreApplyOptions & {
    keep?: number;
    onFailed?: (d: Deletion, error: string) => void;
  },
): Promise<CleanupResult> {
  const keep = o.keep ?? DEFAULT_KEEP;
  const { history } = readState(o.stateDir);
  const plan = planCleanup(history, keep);
  if (plan.remove.length === 0) return { kind: "nothing", count: history.length, keep };
  const groups = planDeletes(plan.remove, await listInstancesWithSnapshots());
  if (o.dryRun) return { kind: "dry-run", remove: plan.remove };
  const failed = new Set<string>();
  await runPool(groups, o.jobs ?? 4, async (items) => {
    for (const d of items) {
      try {
        await snapshotCall("delete", d.inst.name, d.name, d.inst.project);
      } catch (e) {
        failed.add(d.name);
        o.onFailed?.(d, (e as Error).message);
      }
    }
  });
  const count = (name: string) => groups.flat().filter((d) => d.name === name).length;
  writeHistory(o.stateDir, [...plan.remove.filter((n) => failed.has(n)), ...plan.keep]);
  return {
    kind: "done",
    deleted: plan.remove
      .filter((n) => !failed.has(n))
      .map((name) => ({ name, count: count(name) })),
    failed: plan.remove.filter((n) => failed.has(n)),
  };
}
