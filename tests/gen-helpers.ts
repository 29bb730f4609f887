/** Helpers for generator tests: temp workspaces, in-process and child-process runs. */
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import process from "node:process";
import { main } from "../scripts/generate.ts";

export const ROOT = join(import.meta.dir, "..");
const made: string[] = [];

/** A fresh temp directory holding `files` (path → content); removed by cleanup(). */
export function workspace(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "anklume-gen-"));
  made.push(dir);
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), content);
  }
  return dir;
}

export function cleanup(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
  for (const d of [NO_CONTEXT, CACHE]) rmSync(d, { recursive: true, force: true });
}

/** An empty context dir: no /etc/anklume, so the prefix is 001- whatever this machine has. */
export const NO_CONTEXT = mkdtempSync(join(tmpdir(), "anklume-ctx-"));
/** Sync stamps of the tests stay out of the user's ~/.cache. */
export const CACHE = mkdtempSync(join(tmpdir(), "anklume-cache-"));

/**
 * bun loads this module once for every test file of a run, and each file's
 * afterAll(cleanup) removes NO_CONTEXT and CACHE: every run puts them back
 * first, so nothing of them is left in $TMPDIR after the last file.
 */
function ensureDirs(): void {
  mkdirSync(NO_CONTEXT, { recursive: true });
  mkdirSync(CACHE, { recursive: true });
}

/** Environment every generator test runs with (host check off unless a test turns it on). */
export function testEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  ensureDirs();
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    ANKLUME_CONTEXT_DIR: NO_CONTEXT,
    ANKLUME_CACHE_DIR: CACHE,
    ANKLUME_SKIP_HOST_SUBNET_CHECK: "1",
    NO_COLOR: "1",
  };
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the generator in-process (fast; for property tests). Env vars are set for the call. */
export async function runInProcess(
  argv: string[],
  env: Record<string, string | undefined> = {},
): Promise<RunResult> {
  ensureDirs();
  const saved: Record<string, string | undefined> = {};
  const base = {
    ANKLUME_CONTEXT_DIR: NO_CONTEXT,
    ANKLUME_CACHE_DIR: CACHE,
    ANKLUME_SKIP_HOST_SUBNET_CHECK: "1",
    NO_COLOR: "1",
    ...env,
  };
  for (const [k, v] of Object.entries(base)) {
    saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  let stdout = "";
  let stderr = "";
  try {
    const code = await main(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
    return { code, stdout, stderr };
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** Run `bun scripts/generate.ts` as a child process in `cwd`. */
export function runProcess(
  argv: string[],
  cwd: string,
  env: Record<string, string | undefined> = {},
  stdin?: string,
): RunResult {
  const r = Bun.spawnSync(["bun", join(ROOT, "scripts/generate.ts"), ...argv], {
    cwd,
    env: testEnv(env),
    stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin),
  });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** Every generated file under dir (inventory/, group_vars/, host_vars/): relative path → content. */
export function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const sub of ["inventory", "group_vars", "host_vars"]) {
    const d = join(dir, sub);
    let names: string[] = [];
    try {
      names = readdirSync(d);
    } catch {
      continue;
    }
    for (const n of names.sort()) out[relative(dir, join(d, n))] = readFileSync(join(d, n), "utf8");
  }
  return out;
}

/** Modification times of the generated files, to prove nothing was rewritten. */
export function mtimes(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const rel of Object.keys(tree(dir))) out[rel] = statSync(join(dir, rel)).mtimeMs;
  return out;
}
