/**
 * The speculative no-op of `make apply`: play 1's reconcile, planned while
 * Ansible starts.
 *
 * Why: on a converged infra the reconcile process is the part of a no-op
 * apply that is not Ansible's own start (0.45 s of 1.45 s for 3 x 6
 * containers, against 0.75 s for an empty play; bench/apply.ts). The Make
 * apply targets start, beside `ansible-playbook`, the same process with the
 * arguments the role's task passed it the last time (recorded by that task's
 * run, per generated tree), in check mode: it reads the tree and Incus and
 * plans while Ansible loads. When the plan changes nothing, it leaves the
 * line the task would have printed; the task uses it only when its own
 * arguments are exactly the recorded ones (same tags, hosts, knobs, check
 * mode), else it runs the process as before. A plan with a change, an
 * error, no recorded run or other arguments leave no result: the task runs
 * the process, which reads Incus again and writes. Nothing here ever writes
 * to Incus.
 *
 * The speculation reads Incus when `make` starts rather than when the task
 * runs, a second or so later: for that run, an `incus` command typed in
 * between is seen by the next apply, as it would be had it come just after.
 *
 * Files, in the run's directory (`ANKLUME_SPECULATION`, made by the Makefile
 * as `$TMPDIR/anklume-speculation.<make's pid>`): `argv` (the arguments, one
 * per line, as the task's shell reads them), `result` (the task's line),
 * `quiet` when that line has nothing to show (play 1 then ends on a `meta`
 * task, without a worker), then `done`, last, whatever happened. The `debug`
 * task removes the directory when it runs, the Makefile after the command;
 * one that a failed run left is removed by the next speculation after an
 * hour.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import { cacheDir, cacheEnabled, textHash } from "../core/cache.ts";

/** Where the arguments of the last `apply --ansible` run on a tree are kept. */
export function recordFile(baseDir: string): string {
  return join(cacheDir(), "speculation", `${textHash(resolve(baseDir))}.json`);
}

/** Record the arguments of an `apply --ansible` run (after the script's path), when they changed. */
export function recordArgs(baseDir: string, args: string[]): void {
  if (!cacheEnabled()) return;
  const file = recordFile(baseDir);
  const text = JSON.stringify({ args });
  try {
    if (readFileSync(file, "utf8") === text) return;
  } catch {
    // Not recorded yet.
  }
  try {
    mkdirSync(join(file, ".."), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  } catch {
    // Only an optimisation: the next apply runs the process as before.
  }
}

/** The recorded arguments of a tree, or undefined. */
export function recordedArgs(baseDir: string): string[] | undefined {
  if (!cacheEnabled()) return undefined;
  try {
    const { args } = JSON.parse(readFileSync(recordFile(baseDir), "utf8")) as { args?: unknown };
    if (Array.isArray(args) && args.every((a) => typeof a === "string")) return args;
  } catch {
    // Missing or unreadable.
  }
  return undefined;
}

/** The task's line for the recorded arguments when they change nothing, or undefined. */
export type Speculation = (args: string[]) => Promise<string | undefined>;

/**
 * Speculate for the tree under `baseDir` into `outDir` (which must exist):
 * `argv` and `result` when `run` finds nothing to change, then `done` in
 * every case. Also removes the directories of earlier runs that no `make`
 * cleaned up (older than an hour).
 */
export async function speculate(baseDir: string, outDir: string, run: Speculation): Promise<void> {
  // The Makefile makes the directory before starting this process and removes
  // it after the command: one that is gone means the apply ended first (an
  // early failure), and is never made again (it would be left behind).
  if (!existsSync(outDir)) return;
  try {
    removeStale(join(outDir, ".."));
    const args = recordedArgs(baseDir);
    if (!args || args.some((a) => a.includes("\n"))) return;
    const line = await run(args);
    if (line === undefined) return;
    writeFileSync(join(outDir, "argv"), args.map((a) => `${a}\n`).join(""));
    writeFileSync(join(outDir, "result"), line.endsWith("\n") ? line : `${line}\n`);
    if (quiet(line)) writeFileSync(join(outDir, "quiet"), "");
  } catch {
    // No result: the task runs the process.
  } finally {
    try {
      writeFileSync(join(outDir, "done"), "");
    } catch {
      // The task waits its bounded time, then runs the process.
    }
  }
}

/**
 * Whether the task's line has nothing to show: no change, no failure, an
 * empty report (no orphan, no warning). Then play 1 ends on a `meta` task,
 * in Ansible's own process, without printing it (roles/incus_reconcile).
 */
export function quiet(line: string): boolean {
  try {
    const o = JSON.parse(line) as Record<string, unknown>;
    const report = o.report;
    return (
      o.changed === false &&
      o.failed === false &&
      o.errors === undefined &&
      typeof report === "object" &&
      report !== null &&
      Object.keys(report).length === 0
    );
  } catch {
    return false;
  }
}

const STALE_MS = 3_600_000;

function removeStale(parent: string): void {
  const cutoff = Date.now() - STALE_MS;
  for (const name of readdirSync(parent)) {
    if (!name.startsWith("anklume-speculation.")) continue;
    const dir = join(parent, name);
    try {
      if (statSync(dir).mtimeMs < cutoff) rmSync(dir, { recursive: true, force: true });
    } catch {
      // Gone already.
    }
  }
}
