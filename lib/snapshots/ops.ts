/**
 * Snapshot operations on the daemon, shared by `scripts/snap.ts` and
 * `scripts/snapshot-apply.ts`: one `incus list --all-projects` read, instance
 * resolution (real name, or short name under an `NNN-` prefix), and a bounded
 * pool that runs one incus call per instance.
 */
import os from "node:os";
import process from "node:process";
import { incusRaw } from "../incus/client.ts";
import { type IncusInstance, listInstances } from "../incus/objects.ts";

/** The fields of an instance that snapshot commands read. */
export type SnapInstance = Pick<
  IncusInstance,
  "name" | "project" | "status" | "type" | "snapshots"
>;

/** Every instance of every project, with snapshots: one incus call. */
export function listInstancesWithSnapshots(): Promise<SnapInstance[]> {
  return listInstances({ snapshots: true });
}

/** Snapshot names of an instance. */
export function snapshotNames(i: SnapInstance): string[] {
  return (i.snapshots ?? []).map((s) => s.name);
}

/** The current hostname; ANKLUME_HOSTNAME overrides it (tests fake `self` with it). */
export function currentHostname(): string {
  return process.env.ANKLUME_HOSTNAME || os.hostname();
}

const PREFIX_RE = /^\d{3}-/;

/**
 * Find an instance by its real Incus name, else by its short name from
 * infra.yml (`<NNN->short`). Throws a message that names the fix when none
 * or several match.
 */
export function resolveInstance(
  all: readonly SnapInstance[],
  name: string,
  project?: string,
): SnapInstance {
  const pool = project ? all.filter((i) => i.project === project) : all;
  let found = pool.filter((i) => i.name === name);
  if (found.length === 0) {
    found = pool.filter((i) => PREFIX_RE.test(i.name) && i.name.replace(PREFIX_RE, "") === name);
  }
  if (found.length === 1 && found[0]) return found[0];
  const where = project ? ` in project "${project}"` : " in any Incus project";
  if (found.length === 0) {
    throw new Error(
      `Cannot find instance "${name}"${where}; run \`make snap-list\` or \`incus list --all-projects\` to see the names`,
    );
  }
  const list = found.map((i) => `${i.name} (project ${i.project})`).join(", ");
  throw new Error(
    `Cannot tell which instance "${name}" means: ${list}; give the full name, or add --project`,
  );
}

/** One line per instance of a batch: what happened to it. */
export interface BatchResult<T> {
  item: T;
  ok: boolean;
  error?: string;
}

/**
 * Run `work` over `items` with at most `jobs` running at once, in order of
 * start; `onDone` sees each result as it completes.
 */
export async function runPool<T>(
  items: readonly T[],
  jobs: number,
  work: (item: T) => Promise<void>,
  onDone: (r: BatchResult<T>, done: number) => void = () => {},
): Promise<BatchResult<T>[]> {
  const results: BatchResult<T>[] = new Array(items.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < items.length) {
      const idx = next++;
      const item = items[idx] as T;
      let r: BatchResult<T>;
      try {
        await work(item);
        r = { item, ok: true };
      } catch (e) {
        r = { item, ok: false, error: (e as Error).message };
      }
      results[idx] = r;
      onDone(r, ++done);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs, items.length)) }, worker));
  return results;
}

/** Run one `incus snapshot <action>` and throw incus's own message when it fails. */
export async function snapshotCall(
  action: "create" | "restore" | "delete",
  instance: string,
  snap: string,
  project: string,
): Promise<void> {
  const r = await incusRaw(["snapshot", action, instance, snap, "--project", project], {
    timeout: "600s",
    // `incus snapshot create` reads YAML from a stdin that is not a terminal and
    // zx ignores an empty input: give it an empty YAML document.
    input: "\n",
  });
  if (r.exitCode !== 0) {
    throw new Error(r.stderr.trim().replace(/^Error: /, "") || `incus exit ${r.exitCode}`);
  }
}
