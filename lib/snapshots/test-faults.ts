/**
 * Test helper: make a real Incus snapshot call fail, without faking Incus.
 * On the `dir` storage driver an instance's snapshots are directories under
 * `<pool source>/containers-snapshots/<project>_<name>/`; marking that
 * directory immutable (`chattr +i`, root) makes the daemon's own
 * `incus snapshot create` and `incus snapshot delete` fail with "operation
 * not permitted", and an immutable file in the instance's root that the
 * snapshot does not hold makes `incus snapshot restore` fail in its rsync.
 * Incus's database is left as it was (the snapshot list is unchanged).
 * Used by lib/snapshots/pre-apply.test.ts and the snapshot integration tests.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { $ } from "zx";
import { isCI } from "../../tests/helpers.ts";
import { incusRaw, incusRun } from "../incus/client.ts";
import { listInstances, listPools } from "../incus/objects.ts";

const q = $({ quiet: true, nothrow: true });

/**
 * True when faults can be injected here (root, and the test instances' pool
 * uses the dir driver); throws under CI=true when they cannot, else warns.
 */
export async function faultsOrSkip(suite: string): Promise<boolean> {
  const pools = await listPools();
  const dir = pools.find((p) => p.name === "default")?.driver === "dir";
  const root = process.getuid?.() === 0;
  if (dir && root) return true;
  const why = `failure paths need root and the dir storage driver on pool "default" (root=${root}, dir=${dir})`;
  if (isCI()) throw new Error(`${suite}: ${why}, and CI=true requires them`);
  console.warn(`skipping the failure paths of ${suite}: ${why}`);
  return false;
}

/** The on-disk volume name of an instance: `<project>_<name>`, or `<name>` in default. */
async function volumeDir(
  name: string,
  project: string,
  kind: "containers" | "containers-snapshots",
) {
  const inst = (await listInstances()).find((i) => i.name === name && i.project === project);
  if (!inst) throw new Error(`no instance ${name} in project ${project}`);
  const pool = inst.expanded_devices.root?.pool ?? "default";
  const source = (await incusRun(["storage", "get", pool, "source"])).stdout.trim();
  return join(source, kind, project === "default" ? name : `${project}_${name}`);
}

async function chattr(flag: "+i" | "-i", path: string): Promise<void> {
  const r = await q`chattr ${flag} ${path}`;
  if (r.exitCode !== 0) throw new Error(`chattr ${flag} ${path} failed: ${r.stderr.trim()}`);
}

/**
 * Make every `incus snapshot create` and `delete` of this instance fail until
 * the returned function is called.
 */
export async function blockSnapshots(name: string, project: string): Promise<() => Promise<void>> {
  const dir = await volumeDir(name, project, "containers-snapshots");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  await chattr("+i", dir);
  return () => chattr("-i", dir);
}

/**
 * Make `incus snapshot restore` of this instance fail until the returned
 * function is called: `file` (absolute inside the container, written here)
 * becomes immutable, so the restore cannot delete it. The undo also starts
 * the instance again when the failed restore left it stopped.
 */
export async function blockRestore(
  name: string,
  project: string,
  file: string,
): Promise<() => Promise<void>> {
  await incusRun(["exec", name, "--project", project, "--", "sh", "-c", `echo block > ${file}`]);
  const path = join(await volumeDir(name, project, "containers"), "rootfs", file);
  await chattr("+i", path);
  return async () => {
    await chattr("-i", path);
    await incusRaw(["start", name, "--project", project]);
  };
}
