/**
 * Helpers for the apply integration tests and the benchmark: a throwaway
 * copy of the repository (symlinks to the code, its own generated tree),
 * `make` runs in it, PLAY RECAP parsing, free subnets, and a cleanup that
 * removes everything an infra created in Incus (protected instances too).
 */
import { cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import * as v from "valibot";
import { $ } from "zx";
import { incusJson, incusRaw } from "../lib/incus/client.ts";
import { listInstances } from "../lib/incus/objects.ts";

export const REPO = resolve(import.meta.dir, "..");

/** A temp directory that behaves like the repository root for make. */
export function makeWorkdir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  for (const f of ["roles", "scripts", "lib", "node_modules", "package.json"]) {
    symlinkSync(join(REPO, f), join(dir, f));
  }
  for (const f of ["Makefile", "site.yml", "ansible.cfg"]) cpSync(join(REPO, f), join(dir, f));
  return dir;
}

/** Run make in a workdir; never throws; stdout+stderr together. */
export async function make(dir: string, args: string[], env: Record<string, string> = {}) {
  const r = await $({
    cwd: dir,
    nothrow: true,
    quiet: true,
    // The stamp and shape caches live in the workdir, never in ~/.cache (test audit 5.2).
    env: {
      ...process.env,
      ANKLUME_SKIP_NETWORK_CHECK: "1",
      NO_COLOR: "1",
      ANKLUME_CACHE_DIR: join(dir, ".cache"),
      ...env,
    },
  })`make --no-print-directory ${args}`;
  return { code: r.exitCode ?? 1, out: r.stdout + r.stderr };
}

/** PLAY RECAP counters per host. */
export function recap(
  out: string,
): Record<string, { ok: number; changed: number; unreachable: number; failed: number }> {
  const res: Record<string, { ok: number; changed: number; unreachable: number; failed: number }> =
    {};
  const re = /^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/gm;
  for (const m of out.matchAll(re)) {
    res[m[1] as string] = {
      ok: Number(m[2]),
      changed: Number(m[3]),
      unreachable: Number(m[4]),
      failed: Number(m[5]),
    };
  }
  return res;
}

/** The sorted host names of the PLAY RECAP (empty when no recap was printed). */
export function recapHosts(out: string): string[] {
  return Object.keys(recap(out)).sort();
}

/** The per-host result lines Ansible printed under `TASK [<task>]` (all its occurrences). */
export function taskOutput(out: string, task: string): string {
  const parts: string[] = [];
  const head = `TASK [${task}]`;
  let i = out.indexOf(head);
  while (i >= 0) {
    const rest = out.slice(i + head.length);
    const end = rest.search(/^(TASK|PLAY|RUNNING HANDLER) \[/m);
    parts.push(end < 0 ? rest : rest.slice(0, end));
    i = out.indexOf(head, i + head.length);
  }
  return parts.join("\n");
}

/** Total `changed` over every host of the last PLAY RECAP. */
export function totalChanged(out: string): number {
  return Object.values(recap(out)).reduce((n, h) => n + h.changed, 0);
}

const NetSchema = v.array(
  v.looseObject({ name: v.string(), config: v.optional(v.record(v.string(), v.string()), {}) }),
);

/** `count` distinct third octets under `base` (e.g. "10.231") that no bridge uses yet. */
export async function freeSubnets(base: string, count: number): Promise<number[]> {
  const nets = await incusJson(["network", "list"], NetSchema);
  const used = new Set<number>();
  for (const n of nets) {
    const a = n.config["ipv4.address"] ?? "";
    if (a.startsWith(`${base}.`)) used.add(Number(a.split(".")[2]));
  }
  const out: number[] = [];
  while (out.length < count) {
    const id = 10 + Math.floor(Math.random() * 240);
    if (!used.has(id) && !out.includes(id)) out.push(id);
  }
  return out;
}

export { testImage } from "./helpers.ts";

const ProjSchema = v.array(
  v.looseObject({ name: v.string(), config: v.optional(v.record(v.string(), v.string()), {}) }),
);
const ImgSchema = v.array(
  v.looseObject({ fingerprint: v.string(), project: v.optional(v.string(), "default") }),
);
const VolSchema = v.array(v.looseObject({ name: v.string(), type: v.string() }));
const ProfSchema = v.array(
  v.looseObject({ name: v.string(), project: v.optional(v.string(), "default") }),
);

/** Delete every instance, image, profile, project and bridge marked with this infra id. */
export async function cleanupInfra(infraId: string, extraProjects: string[] = []): Promise<void> {
  const projects = (await incusJson(["project", "list"], ProjSchema))
    .filter((p) => p.config["user.anklume.infra"] === infraId || extraProjects.includes(p.name))
    .map((p) => p.name);
  const set = new Set(projects);
  for (const i of (await listInstances()).filter((x) => set.has(x.project))) {
    await incusRaw([
      "config",
      "set",
      i.name,
      "security.protection.delete=false",
      "--project",
      i.project,
    ]);
    await incusRaw(["delete", i.name, "--project", i.project, "--force"]);
  }
  // Images, custom volumes and profiles block a project's deletion; retry a
  // few times in case a copy was still landing.
  for (let attempt = 0; attempt < 3 && set.size > 0; attempt++) {
    for (const img of (await incusJson(["image", "list", "--all-projects"], ImgSchema)).filter(
      (x) => set.has(x.project),
    )) {
      await incusRaw(["image", "delete", img.fingerprint, "--project", img.project]);
    }
    for (const p of set) {
      const vols = await incusJson(
        ["storage", "volume", "list", "default", "--project", p],
        VolSchema,
      );
      for (const vol of vols.filter((x) => x.type === "custom")) {
        await incusRaw(["storage", "volume", "delete", "default", vol.name, "--project", p]);
      }
    }
    for (const p of (await incusJson(["profile", "list", "--all-projects"], ProfSchema)).filter(
      (x) => set.has(x.project) && x.name !== "default",
    )) {
      await incusRaw(["profile", "delete", p.name, "--project", p.project]);
    }
    for (const p of [...set]) {
      if ((await incusRaw(["project", "delete", p])).exitCode === 0) set.delete(p);
    }
  }
  for (const n of (await incusJson(["network", "list"], NetSchema)).filter(
    (x) => x.config["user.anklume.infra"] === infraId,
  )) {
    await incusRaw(["network", "delete", n.name]);
  }
  // Verify: nothing of this infra (or the extra projects) survives on the daemon.
  const leftProjects = (await incusJson(["project", "list"], ProjSchema))
    .filter((p) => p.config["user.anklume.infra"] === infraId || extraProjects.includes(p.name))
    .map((p) => `project ${p.name}`);
  const leftNets = (await incusJson(["network", "list"], NetSchema))
    .filter((x) => x.config["user.anklume.infra"] === infraId)
    .map((x) => `network ${x.name}`);
  const left = [...leftProjects, ...leftNets];
  if (left.length > 0) throw new Error(`cleanupInfra(${infraId}) left: ${left.join(", ")}`);
}

/** Write a file (helper for infra.yml and context files). */
export function write(path: string, text: string): void {
  writeFileSync(path, text);
}

/** Remove a workdir. */
export function removeWorkdir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
