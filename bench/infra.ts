/**
 * Helpers for the apply benchmark (no imports from tests/): a throwaway copy
 * of the repository (symlinks to the code, its own generated tree), `make`
 * runs in it, PLAY RECAP parsing, free subnets, medians, and a cleanup that
 * removes everything an infra created in Incus (protected instances too).
 */
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import process from "node:process";
import { $ } from "zx";
import { incusRaw } from "../lib/incus/client.ts";
import {
  listImages,
  listInstances,
  listNetworks,
  listProfiles,
  listProjects,
  listVolumes,
} from "../lib/incus/objects.ts";

export const REPO = resolve(import.meta.dir, "..");

/** The image bench containers use: $ANKLUME_TEST_IMAGE, else anklume-busybox. */
export function benchImage(): string {
  return process.env.ANKLUME_TEST_IMAGE ?? "anklume-busybox";
}

/** Put the Ansible venv on PATH when ansible-playbook is not there already. */
export function ansibleOnPath(venvBin = "/opt/anklume/venv/bin"): void {
  const path = process.env.PATH ?? "";
  const found = path.split(delimiter).some((d) => d && existsSync(join(d, "ansible-playbook")));
  if (!found && existsSync(join(venvBin, "ansible-playbook"))) {
    process.env.PATH = `${venvBin}${delimiter}${path}`;
  }
}

/** A temp directory that behaves like the repository root for make. */
export function makeWorkdir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  for (const f of ["roles", "scripts", "lib", "node_modules", "package.json"]) {
    symlinkSync(join(REPO, f), join(dir, f));
  }
  for (const f of ["Makefile", "site.yml", "ansible.cfg"]) cpSync(join(REPO, f), join(dir, f));
  return dir;
}

/** Remove a workdir. */
export function removeWorkdir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Run make in a workdir; never throws; stdout+stderr together. */
export async function make(dir: string, args: string[], env: Record<string, string> = {}) {
  const r = await $({
    cwd: dir,
    nothrow: true,
    quiet: true,
    env: { ...process.env, ANKLUME_SKIP_NETWORK_CHECK: "1", NO_COLOR: "1", ...env },
  })`make --no-print-directory ${args}`;
  return { code: r.exitCode ?? 1, out: r.stdout + r.stderr };
}

/** Total `changed` over every host of the last PLAY RECAP. */
export function totalChanged(out: string): number {
  const re = /^\S+\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=\d+\s+failed=\d+/gm;
  return [...out.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0);
}

/** The median of a non-empty list (mean of the two middle values when even). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Seconds taken by `fn`, and its result. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ s: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { s: (performance.now() - t0) / 1000, value };
}

/** `count` distinct third octets under `base` (e.g. "10.234") that no bridge uses yet. */
export async function freeSubnets(base: string, count: number): Promise<number[]> {
  const used = new Set<number>();
  for (const n of await listNetworks()) {
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

/**
 * Delete every instance, image, custom volume, profile, project and bridge
 * marked with this infra id (`user.anklume.infra`). Never throws: a cleanup
 * runs in `finally` blocks and signal handlers.
 */
export async function cleanupInfra(infraId: string): Promise<void> {
  try {
    const set = new Set(
      (await listProjects())
        .filter((p) => p.config["user.anklume.infra"] === infraId)
        .map((p) => p.name),
    );
    for (const i of (await listInstances()).filter((x) => set.has(x.project))) {
      const p = ["--project", i.project];
      await incusRaw(["config", "set", i.name, "security.protection.delete=false", ...p]);
      await incusRaw(["delete", i.name, ...p, "--force"]);
    }
    // Images, custom volumes and profiles block a project's deletion; retry a
    // few times in case a copy was still landing.
    for (let attempt = 0; attempt < 3 && set.size > 0; attempt++) {
      for (const img of (await listImages()).filter((x) => set.has(x.project))) {
        await incusRaw(["image", "delete", img.fingerprint, "--project", img.project]);
      }
      const vols = await listVolumes("default").catch(() => []);
      for (const vol of vols.filter((x) => set.has(x.project) && x.type === "custom")) {
        await incusRaw([
          "storage",
          "volume",
          "delete",
          "default",
          vol.name,
          "--project",
          vol.project,
        ]);
      }
      for (const p of (await listProfiles()).filter(
        (x) => set.has(x.project) && x.name !== "default",
      )) {
        await incusRaw(["profile", "delete", p.name, "--project", p.project]);
      }
      for (const p of [...set]) {
        if ((await incusRaw(["project", "delete", p])).exitCode === 0) set.delete(p);
      }
    }
    for (const n of (await listNetworks()).filter(
      (x) => x.config["user.anklume.infra"] === infraId,
    )) {
      await incusRaw(["network", "delete", n.name]);
    }
  } catch (e) {
    console.error(`cleanup of ${infraId} failed: ${e instanceof Error ? e.message : e}`);
  }
}
