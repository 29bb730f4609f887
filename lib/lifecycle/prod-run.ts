/**
 * `bootstrap.sh --prod`, the Incus part, against the host: finds the
 * filesystem under the pool's data (`findmnt`, `lsblk`, `lvs`), reads the
 * pools, the default profile and the admin instance, and runs the plan of
 * `prod.ts`. The preseed it applies is kept in the context directory
 * (`incus-preseed.yml`) so the operator sees what was created.
 */
import { existsSync, mkdirSync, realpathSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { writeIfChanged } from "../core/fswrite.ts";
import { incusRun } from "../incus/client.ts";
import { listAliases, listInstances, listPools, listProfiles } from "../incus/objects.ts";
import { type ProdPlan, type ProdWanted, planProd } from "./prod.ts";
import {
  type Backend,
  chooseBackend,
  existingAncestor,
  type MountInfo,
  mountDevice,
  parseFindmnt,
} from "./storage-backend.ts";

/** Incus's own directory on the host (`INCUS_DIR`, else /var/lib/incus). */
export function incusDir(env: Record<string, string | undefined> = process.env): string {
  return env.INCUS_DIR || "/var/lib/incus";
}

/** The host's Incus socket (`INCUS_SOCKET`, else `<incus dir>/unix.socket`). */
export function hostSocket(env: Record<string, string | undefined> = process.env): string {
  return env.INCUS_SOCKET || join(incusDir(env), "unix.socket");
}

/**
 * The host's tools that anklume runs with, for the admin instance (which has
 * no network to install them): the Bun running this script, the incus
 * client, make (each a file, at /usr/local/bin/<name> inside), and the
 * Ansible virtualenv at its own path (its python is the image's python3,
 * Debian 12's 3.11 like the host's). A tool the host lacks is left out.
 */
export function hostTools(
  env: Record<string, string | undefined> = process.env,
  bunBinary: string | null = process.versions.bun ? process.execPath : null,
): Record<string, { source: string; path: string }> {
  const onPath = (name: string) => {
    for (const dir of (env.PATH ?? "").split(":").filter(Boolean)) {
      const p = join(dir, name);
      if (existsSync(p)) return realpathSync(p);
    }
    return undefined;
  };
  const out: Record<string, { source: string; path: string }> = {};
  if (bunBinary && existsSync(bunBinary)) {
    out.bun = { source: realpathSync(bunBinary), path: "/usr/local/bin/bun" };
  }
  for (const name of ["incus", "make"]) {
    const p = onPath(name);
    if (p) out[name] = { source: p, path: `/usr/local/bin/${name}` };
  }
  const venv = env.ANKLUME_VENV || "/opt/anklume/venv";
  if (existsSync(join(venv, "bin", "ansible-playbook"))) out.venv = { source: venv, path: venv };
  return out;
}

/** The mount holding `path` (or its nearest existing parent). */
export async function mountOf(path: string): Promise<MountInfo> {
  const { $ } = await import("zx");
  const at = existingAncestor(path, existsSync);
  const r = await $({ quiet: true, nothrow: true })`findmnt -J -T ${at} -o TARGET,SOURCE,FSTYPE`;
  const m = r.exitCode === 0 ? parseFindmnt(r.stdout) : null;
  if (!m)
    throw new Error(
      `Cannot tell which filesystem holds "${at}": findmnt -T ${at} failed (${r.stderr.trim() || `exit ${r.exitCode}`})`,
    );
  return m;
}

/** The volume group of a block device that is an LVM logical volume, else null. */
export async function lvmGroup(device: string): Promise<string | null> {
  if (!device.startsWith("/dev/")) return null;
  const { $ } = await import("zx");
  const q = $({ quiet: true, nothrow: true });
  const type = await q`lsblk -ndo TYPE ${device}`;
  if (type.exitCode !== 0 || type.stdout.trim() !== "lvm") return null;
  const vg = await q`lvs --noheadings -o vg_name ${device}`;
  return vg.exitCode === 0 && vg.stdout.trim() ? vg.stdout.trim() : null;
}

/** The backend for the pool: from the filesystem under `source` when given, else under Incus's directory. */
export async function detectBackend(source?: string): Promise<Backend> {
  const path = source ?? join(incusDir(), "storage-pools");
  const mount = await mountOf(path);
  const vg = await lvmGroup(mountDevice(mount.source));
  return chooseBackend(mount, path, vg, source);
}

/** Read what the plan needs. */
export async function readProdState(instance: string) {
  const [pools, profiles, instances, aliases] = await Promise.all([
    listPools(),
    listProfiles("default"),
    listInstances(),
    listAliases("default"),
  ]);
  const inst = instances.find((i) => i.name === instance && i.project === "default");
  return {
    pools: pools.map((p) => ({
      name: p.name,
      driver: p.driver,
      config: (p as { config?: Record<string, string> }).config ?? {},
    })),
    profileDevices: profiles.find((p) => p.name === "default")?.devices ?? {},
    instance: inst
      ? { status: inst.status, devices: inst.devices, expandedDevices: inst.expanded_devices }
      : null,
    aliases: aliases.map((a) => a.name),
  };
}

/** Plan against the live daemon. */
export async function planLive(
  w: Omit<ProdWanted, "backend">,
  source?: string,
): Promise<ProdPlan & { backend: Backend }> {
  const backend = await detectBackend(source);
  const plan = planProd(await readProdState(w.instance), { ...w, backend });
  return { ...plan, backend };
}

/** Run the plan's actions in order; the preseed is written first to `<contextDir>/incus-preseed.yml`. */
export async function runProdPlan(
  plan: ProdPlan,
  contextDir: string,
  say: (line: string) => void,
): Promise<void> {
  if (plan.preseed) {
    mkdirSync(contextDir, { recursive: true });
    const file = join(contextDir, "incus-preseed.yml");
    writeIfChanged(
      file,
      `# Applied by bootstrap.sh --prod (incus admin init --preseed)\n${plan.preseed}`,
    );
    say(`preseed written to ${file}`);
  }
  for (const a of plan.actions) {
    await incusRun(a.args, { input: a.input, timeout: "300s" });
    say(a.done);
  }
}
