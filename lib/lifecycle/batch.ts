/**
 * v1's batch snapshot targets (`make snapshot`, `snapshot-domain`, `restore`,
 * `restore-domain`, `snapshot-delete`, `snapshot-list`): one snapshot name
 * over every instance of the inventory, or of one domain (`D=`, Ansible's
 * `--limit` syntax). The plan is pure (`planBatch`); `runBatch` reads the
 * daemon once and runs one `incus snapshot` call per instance, instances
 * side by side in a bounded pool, each failure reported with its instance.
 */
import { type InventoryHost, readInventory, selectHosts } from "../core/inventory.ts";
import {
  type BatchResult,
  currentHostname,
  listInstancesWithSnapshots,
  runPool,
  type SnapInstance,
  snapshotCall,
  snapshotNames,
} from "../snapshots/ops.ts";
import { type SnapshotRow, snapshotRows } from "../snapshots/user.ts";

export type BatchAction = "create" | "restore" | "delete";

/**
 * What happens to one instance: `run` the call; `exists` (create: the name is
 * taken, skipped as v1 did); `absent` (delete: nothing to delete, skipped);
 * `missing` (restore: no such snapshot, a failure); `no-instance` (not in
 * Incus: a failure for create and restore, skipped for delete).
 */
export type Verdict = "run" | "exists" | "absent" | "missing" | "no-instance";

/** One instance of a batch and what will happen to it. */
export interface BatchItem {
  host: string;
  instance: string;
  project: string;
  verdict: Verdict;
  /** The instance's snapshot names (empty when it does not exist). */
  available: string[];
  /** True for the instance this command runs in: restored last. */
  self: boolean;
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/**
 * v1's default batch snapshot name: Ansible's `iso8601_basic_short`,
 * `YYYYMMDDTHHMMSS` in local time (e.g. `20260222T020800`).
 */
export function batchSnapshotName(d: Date = new Date()): string {
  return (
    `${pad(d.getFullYear(), 4)}${pad(d.getMonth() + 1)}${pad(d.getDate())}T` +
    `${pad(d.getHours())}${pad(d.getMinutes())}${pad(d.getSeconds())}`
  );
}

/** True when the verdict makes the batch fail. */
export function isFailure(action: BatchAction, v: Verdict): boolean {
  return v === "missing" || (v === "no-instance" && action !== "delete");
}

/**
 * Plan `action` of snapshot `name` over `hosts`, from one listing of the
 * daemon (`live`). Hosts keep their order, except that the instance named
 * `me` goes last: restoring it ends the session that runs the batch.
 * @example planBatch("restore", hosts, live, "before", "anklume-instance")
 */
export function planBatch(
  action: BatchAction,
  hosts: readonly InventoryHost[],
  live: readonly SnapInstance[],
  name: string,
  me: string,
): BatchItem[] {
  const found = new Map(live.map((i) => [`${i.project}/${i.name}`, i]));
  const items = hosts.map<BatchItem>((h) => {
    const inst = found.get(`${h.project}/${h.instance}`);
    const available = inst ? snapshotNames(inst) : [];
    const has = available.includes(name);
    let verdict: Verdict;
    if (!inst) verdict = "no-instance";
    else if (action === "create") verdict = has ? "exists" : "run";
    else if (action === "restore") verdict = has ? "run" : "missing";
    else verdict = has ? "run" : "absent";
    return {
      host: h.host,
      instance: h.instance,
      project: h.project,
      verdict,
      available,
      self: h.instance === me,
    };
  });
  return [...items.filter((i) => !i.self), ...items.filter((i) => i.self)];
}

/** The hosts of the inventory under `baseDir` that `limit` selects (all without one). */
export function batchHosts(baseDir: string, limit?: string): InventoryHost[] {
  const inv = readInventory(baseDir);
  if (!inv) {
    throw new Error(
      `Cannot find any instance: no generated inventory under ${baseDir}/inventory; run make sync (and make apply) first`,
    );
  }
  return selectHosts(inv, limit);
}

/** One instance's outcome. */
export interface BatchOutcome {
  item: BatchItem;
  status: "done" | "dry-run" | "skipped" | "failed";
  /** Why it was skipped or failed. */
  reason?: string;
}

/** The reason of a verdict that is not `run`. */
export function verdictReason(action: BatchAction, name: string, item: BatchItem): string {
  const list = item.available.length ? item.available.join(", ") : "(none)";
  switch (item.verdict) {
    case "exists":
      return `snapshot "${name}" already exists`;
    case "absent":
      return `no snapshot "${name}"`;
    case "missing":
      return `no snapshot "${name}"; available: ${list}`;
    case "no-instance":
      return action === "delete"
        ? "not in Incus"
        : "not in Incus; run make apply to create it, or leave it out with D=";
    default:
      return "";
  }
}

/**
 * Run `action` of snapshot `name` on the instances of the inventory under
 * `baseDir` (`limit` narrows them), `jobs` at a time; the instance this runs in
 * (`hostname`) is restored last, after `onSelf`. Nothing changes with `dryRun`.
 */
export async function runBatch(
  action: BatchAction,
  name: string,
  o: {
    baseDir: string;
    limit?: string;
    jobs?: number;
    dryRun?: boolean;
    hostname?: string;
    onOutcome?: (r: BatchOutcome) => void;
    onSelf?: (item: BatchItem) => void;
  },
): Promise<BatchOutcome[]> {
  const hosts = batchHosts(o.baseDir, o.limit);
  const live = await listInstancesWithSnapshots();
  const plan = planBatch(action, hosts, live, name, o.hostname ?? currentHostname());
  const out: BatchOutcome[] = [];
  const emit = (r: BatchOutcome) => {
    out.push(r);
    o.onOutcome?.(r);
  };
  const todo: BatchItem[] = [];
  for (const item of plan) {
    if (item.verdict === "run") todo.push(item);
    else {
      const reason = verdictReason(action, name, item);
      emit({ item, status: isFailure(action, item.verdict) ? "failed" : "skipped", reason });
    }
  }
  if (o.dryRun) {
    for (const item of todo) emit({ item, status: "dry-run" });
    return out;
  }
  const call = (i: BatchItem) => snapshotCall(action, i.instance, name, i.project);
  const done = (r: BatchResult<BatchItem>) =>
    emit(
      r.ok
        ? { item: r.item, status: "done" }
        : { item: r.item, status: "failed", reason: r.error ?? "failed" },
    );
  const others = todo.filter((i) => !(action === "restore" && i.self));
  await runPool(others, o.jobs ?? 4, call, done);
  for (const self of todo.filter((i) => action === "restore" && i.self)) {
    o.onSelf?.(self);
    await runPool([self], 1, call, done);
  }
  return out;
}

/** The snapshots of the selected instances, as `make snap-list` prints them; and the hosts not in Incus. */
export async function batchList(
  baseDir: string,
  limit?: string,
): Promise<{ rows: SnapshotRow[]; missing: InventoryHost[] }> {
  const hosts = batchHosts(baseDir, limit);
  const live = await listInstancesWithSnapshots();
  const found = new Map(live.map((i) => [`${i.project}/${i.name}`, i]));
  const insts: SnapInstance[] = [];
  const missing: InventoryHost[] = [];
  for (const h of hosts) {
    const i = found.get(`${h.project}/${h.instance}`);
    if (i) insts.push(i);
    else missing.push(h);
  }
  return { rows: snapshotRows(insts), missing };
}
