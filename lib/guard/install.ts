/**
 * `incus-guard install`: put the compiled binary at `<root>/opt/anklume/incus-guard`
 * (0755, plus the v1 path `incus-guard.sh` as a symlink to it) and the
 * incus.service drop-in `network-guard.conf`. Writes are atomic and skipped
 * when nothing changes.
 */
import { existsSync, readFileSync } from "node:fs";
import {
  chmod,
  copyFile,
  lstat,
  mkdir,
  readlink,
  rename,
  rm,
  symlink,
  writeFile,
} from "node:fs/promises";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { renderDropIn } from "./guard.ts";

/** Where the guard lives on the host (inside `root`, joined at install time). */
export const BINARY_PATH = "/opt/anklume/incus-guard";
/** v1's path; kept as a symlink so anything that still calls it runs the new guard. */
export const V1_BINARY_PATH = "/opt/anklume/incus-guard.sh";
export const DROP_IN_PATH = "/etc/systemd/system/incus.service.d/network-guard.conf";

/** One thing `install` puts on disk. */
export type InstallStep =
  | { kind: "binary"; path: string; from: string; mode: number }
  | { kind: "symlink"; path: string; target: string }
  | { kind: "file"; path: string; content: string; mode: number };

/** True when this code runs inside a `bun build --compile` binary. */
export function isCompiled(): boolean {
  return import.meta.url.includes("$bunfs") || import.meta.url.includes("~BUN");
}

/** The binary to install: this binary when compiled, else `dist/incus-guard` of the repository. */
export function defaultBinary(): string {
  if (isCompiled()) return process.execPath;
  return fileURLToPath(new URL("../../dist/incus-guard", import.meta.url));
}

/** What `install` writes under `root` (pure: reads nothing). */
export function installPlan(root: string, binary: string): InstallStep[] {
  return [
    { kind: "binary", path: join(root, BINARY_PATH), from: binary, mode: 0o755 },
    { kind: "symlink", path: join(root, V1_BINARY_PATH), target: "incus-guard" },
    {
      kind: "file",
      path: join(root, DROP_IN_PATH),
      content: renderDropIn(BINARY_PATH),
      mode: 0o644,
    },
  ];
}

function sameFile(a: string, b: string): boolean {
  try {
    return readFileSync(a).equals(readFileSync(b));
  } catch {
    return false;
  }
}

/** Carry out one step; returns true when something changed on disk. */
export async function applyStep(step: InstallStep): Promise<boolean> {
  await mkdir(dirname(step.path), { recursive: true, mode: 0o755 });
  const tmp = `${step.path}.tmp-${process.pid}`;
  if (step.kind === "binary") {
    if (step.from === step.path || sameFile(step.from, step.path)) {
      await chmod(step.path, step.mode);
      return false;
    }
    // Copy then rename: replacing a running binary in place fails ("text file busy").
    await copyFile(step.from, tmp);
    await chmod(tmp, step.mode);
    await rename(tmp, step.path);
    return true;
  }
  if (step.kind === "symlink") {
    const current = await lstat(step.path).catch(() => null);
    if (current?.isSymbolicLink() && (await readlink(step.path)) === step.target) return false;
    await rm(tmp, { force: true });
    await symlink(step.target, tmp);
    await rename(tmp, step.path);
    return true;
  }
  if (existsSync(step.path) && readFileSync(step.path, "utf8") === step.content) return false;
  await writeFile(tmp, step.content, { mode: step.mode });
  await chmod(tmp, step.mode);
  await rename(tmp, step.path);
  return true;
}

/** One line per step, for `--dry-run` and for the log. */
export function describeStep(step: InstallStep): string {
  if (step.kind === "binary") return `install ${step.from} as ${step.path} (mode 0755)`;
  if (step.kind === "symlink") return `link ${step.path} -> ${step.target} (v1 path)`;
  return `write ${step.path} (mode 0644):\n${step.content.replace(/^/gm, "    ")}`;
}
