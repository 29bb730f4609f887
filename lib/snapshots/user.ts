/**
 * Snapshots of one instance on demand (`make snap`, `snap-restore`,
 * `snap-list`, `snap-delete`) as library functions. The instance is given as
 * its Incus name, its short name from infra.yml, or `self`; each operation
 * reads the daemon once (`incus list --all-projects`) and makes at most one
 * change. Printing, the confirmation prompt and exit codes are the caller's
 * (scripts/snap.ts): the prompt comes in as `confirm`.
 *
 * @example
 * const r = await createSnapshot("pro-dev", "before-upgrade");
 * if (r.status === "exists") console.error(`already there: ${r.available}`);
 */
import {
  currentHostname,
  listInstancesWithSnapshots,
  resolveInstance,
  type SnapInstance,
  snapshotCall,
  snapshotNames,
} from "./ops.ts";

/** Where to look, and whether to change anything. */
export interface SnapOptions {
  /** Only look for the instance in this project. */
  project?: string;
  /** Resolve and check; change nothing. */
  dryRun?: boolean;
  /** This host's name for `self` (default `currentHostname()`). */
  hostname?: string;
  /** Called once the instance is known and checked, right before the change (also with dryRun). */
  onStart?: (inst: SnapInstance) => void;
}

/** What an operation on one snapshot did. */
export interface SnapResult {
  /**
   * done / dry-run; exists: create refused, the name is taken; missing:
   * restore or delete of a name the instance does not hold; aborted: the
   * restore of this very instance was not confirmed.
   */
  status: "done" | "dry-run" | "exists" | "missing" | "aborted";
  inst: SnapInstance;
  /** The instance's snapshot names before the operation. */
  available: string[];
}

/**
 * Resolve `<instance|self>` in a listing: `self` is the instance named like
 * this host (`hostname`). Throws a message that names the fix.
 */
export function resolveTarget(
  all: readonly SnapInstance[],
  arg: string,
  project: string | undefined,
  hostname: string,
): SnapInstance {
  if (arg !== "self") return resolveInstance(all, arg, project);
  try {
    return resolveInstance(all, hostname, project);
  } catch {
    throw new Error(
      `Cannot use "self": this host's name "${hostname}" is not an Incus instance in any project; ` +
        "run the command inside an anklume instance that sees the Incus socket, or give the instance name",
    );
  }
}

/** True when `inst` is the instance named like this host (looked up in every project). */
export function isSelf(
  all: readonly SnapInstance[],
  inst: SnapInstance,
  hostname: string,
): boolean {
  try {
    const me = resolveInstance(all, hostname);
    return me.name === inst.name && me.project === inst.project;
  } catch {
    return false;
  }
}

async function prepare(target: string, o: SnapOptions) {
  const all = await listInstancesWithSnapshots();
  const hostname = o.hostname ?? currentHostname();
  const inst = resolveTarget(all, target, o.project, hostname);
  return { all, hostname, inst, available: snapshotNames(inst) };
}

async function change(
  action: "create" | "restore" | "delete",
  inst: SnapInstance,
  snap: string,
  available: string[],
  o: SnapOptions,
): Promise<SnapResult> {
  o.onStart?.(inst);
  if (o.dryRun) return { status: "dry-run", inst, available };
  await snapshotCall(action, inst.name, snap, inst.project);
  return { status: "done", inst, available };
}

/**
 * Take snapshot `snap` of `target`; refused (`exists`) when the name is taken.
 * Snapshotting the instance this runs in freezes it, this client included,
 * while a `dir` pool copies its root file system: when that takes long the
 * daemon drops the frozen client's connection ("broken pipe") although the
 * snapshot is made. So for `self`, a failed call is checked against the
 * daemon: the snapshot there means it was taken.
 */
export async function createSnapshot(
  target: string,
  snap: string,
  o: SnapOptions & { settleMs?: number } = {},
): Promise<SnapResult> {
  const { all, hostname, inst, available } = await prepare(target, o);
  if (available.includes(snap)) return { status: "exists", inst, available };
  if (!isSelf(all, inst, hostname)) return change("create", inst, snap, available, o);
  try {
    return await change("create", inst, snap, available, o);
  } catch (e) {
    const dropped = /broken pipe|connection reset|EOF|closed network connection/i;
    if (!dropped.test((e as Error).message)) throw e;
    if (await snapshotTaken(inst, snap, o.settleMs ?? 30_000)) {
      return { status: "done", inst, available };
    }
    throw e;
  }
}

/** Whether `inst` has snapshot `snap`, asking the daemon every second for up to `settleMs`. */
export async function snapshotTaken(
  inst: Pick<SnapInstance, "name" | "project">,
  snap: string,
  settleMs: number,
): Promise<boolean> {
  const end = Date.now() + settleMs;
  for (;;) {
    const now = (await listInstancesWithSnapshots()).find(
      (i) => i.name === inst.name && i.project === inst.project,
    );
    if (now && snapshotNames(now).includes(snap)) return true;
    if (Date.now() >= end) return false;
    await new Promise((res) => setTimeout(res, 1000));
  }
}

/** Delete snapshot `snap` of `target`; `missing` when it has none of that name. */
export async function deleteSnapshot(
  target: string,
  snap: string,
  o: SnapOptions = {},
): Promise<SnapResult> {
  const { inst, available } = await prepare(target, o);
  if (!available.includes(snap)) return { status: "missing", inst, available };
  return change("delete", inst, snap, available, o);
}

/**
 * Restore `target` to snapshot `snap`. Restoring the instance this runs in
 * ends the session: unless `force` (or dryRun), `confirm` is asked first and
 * anything but true aborts.
 */
export async function restoreSnapshot(
  target: string,
  snap: string,
  o: SnapOptions & { force?: boolean; confirm?: (inst: SnapInstance) => Promise<boolean> } = {},
): Promise<SnapResult> {
  const { all, hostname, inst, available } = await prepare(target, o);
  if (!available.includes(snap)) return { status: "missing", inst, available };
  if (isSelf(all, inst, hostname) && !o.force && !o.dryRun) {
    if (!(await o.confirm?.(inst))) return { status: "aborted", inst, available };
  }
  return change("restore", inst, snap, available, o);
}

/** One line of `make snap-list`: an instance and one snapshot (null when it has none). */
export interface SnapshotRow {
  instance: string;
  project: string;
  snapshot: string | null;
  created: string | null;
}

/** The rows of a listing, in the order of `insts`; an instance without snapshots gets one row. */
export function snapshotRows(insts: readonly SnapInstance[]): SnapshotRow[] {
  const rows: SnapshotRow[] = [];
  for (const i of insts) {
    const snaps = i.snapshots ?? [];
    if (snaps.length === 0)
      rows.push({ instance: i.name, project: i.project, snapshot: null, created: null });
    for (const s of snaps)
      rows.push({
        instance: i.name,
        project: i.project,
        snapshot: s.name,
        created: s.created_at || null,
      });
  }
  return rows;
}

/**
 * The snapshots of `target` (`<instance|self>`), or of every instance (of
 * `project`, when given), sorted by project then name.
 */
export async function listSnapshots(
  target: string | undefined,
  o: Pick<SnapOptions, "project" | "hostname"> = {},
): Promise<SnapshotRow[]> {
  const all = await listInstancesWithSnapshots();
  const insts = target
    ? [resolveTarget(all, target, o.project, o.hostname ?? currentHostname())]
    : all.filter((i) => !o.project || i.project === o.project);
  insts.sort((a, b) => a.project.localeCompare(b.project) || a.name.localeCompare(b.name));
  return snapshotRows(insts);
}

/** An Incus `created_at` as `YYYY-MM-DD HH:MM:SS UTC`; empty for none, as given when unparsable. */
export function formatCreated(iso: string | null): string {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime())
    ? iso
    : d
        .toISOString()
        .replace("T", " ")
        .replace(/\.\d+Z$/, " UTC");
}

/** The `make snap-list` table: a header and one aligned line per row, no trailing spaces. */
export function snapshotTable(rows: readonly SnapshotRow[]): string {
  const head = ["INSTANCE", "PROJECT", "SNAPSHOT", "CREATED"];
  const cells = rows.map((r) => [
    r.instance,
    r.project,
    r.snapshot ?? "(no snapshots)",
    formatCreated(r.created),
  ]);
  const widths = head.map((h, c) =>
    Math.max(h.length, ...cells.map((row) => (row[c] ?? "").length)),
  );
  const line = (cols: string[]) =>
    cols
      .map((s, c) => s.padEnd(widths[c] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(head), ...cells.map(line)].join("\n");
}
