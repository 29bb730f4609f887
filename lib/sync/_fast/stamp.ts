/**
 * Private to lib/sync (reached only through `sync` in lib/sync/sync.ts).
 *
 * The sync stamp: what the last successful sync read and wrote, so that a sync
 * with nothing to do costs a few stats instead of a full parse, validation and
 * render (make's idea: outputs newer than unchanged inputs need no rebuild).
 *
 * Why: it buys bench/sync.ts's no-op re-sync figure (goal ≤ 3× a plain write):
 * ~0.8× with it, ~4.5× without (the whole pipeline). Measure without it:
 * `ANKLUME_NO_CACHE=1 make bench-sync` (the no-op row then runs the pipeline).
 *
 * A stamp holds the exact text of every input (infra files, nesting context
 * files, the host routes the subnet check used, the switches in effect), a
 * fingerprint of the generator's own code, and the size, mtime and inode of
 * every file written. The fast path is taken only when all of these are
 * identical; anything else (an edited infra.yml, a generated file touched by
 * hand, an upgraded generator, a new host interface) runs the full pipeline.
 *
 * Stamps live outside the working tree, in $ANKLUME_CACHE_DIR (default
 * $XDG_CACHE_HOME/anklume or ~/.cache/anklume), one per output directory.
 * ANKLUME_NO_CACHE=1 turns them off. Any failure to read or write one is
 * ignored: the stamp is only an optimisation.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { cacheDir, cacheEnabled } from "../../core/cache.ts";
import type { Issue } from "../../core/issues.ts";
import { CONTEXT_FILES, type ContextFiles } from "../../core/nesting.ts";

const VERSION = 1;

/** What a sync depends on, as text compared exactly. */
export interface StampInputs {
  /** The input argument and every file read for it (path → content). */
  files: [string, string][];
  /** Everything else that changes the output or the messages. */
  context: string;
}

/** One generated file (as printed) with its size, mtime and inode after the sync. */
export interface StampedFile {
  path: string;
  size: number;
  mtimeMs: number;
  ino: number;
}

/** What the last sync produced. */
export interface StampOutputs {
  files: StampedFile[];
  domains: string[];
  machines: string[];
  warnings: Issue[];
  info: string[];
}

interface Stamp extends StampInputs {
  version: number;
  code: string;
  outputs: StampedFile[];
  domains: string[];
  machines: string[];
  warnings: Issue[];
  info: string[];
}

/**
 * The stamp's inputs: the infra files, the nesting context files as read by
 * lib/core/nesting.ts, and the host routes the subnet check reads ("skip" when
 * the check is off).
 */
export function stampInputs(
  files: [string, string][],
  nesting: ContextFiles,
  routes: string,
): StampInputs {
  const context = [nesting.dir, ...CONTEXT_FILES.map((f) => nesting.texts[f])];
  return { files, context: JSON.stringify([context, routes]) };
}

/** One stamp file per output directory (its absolute path, flattened). */
function stampPath(baseDir: string): string {
  const key = resolve(baseDir).replaceAll("/", "%");
  return join(cacheDir(), "sync", `${key}.json`);
}

let codeFingerprint: string | undefined;

/** Size and mtime of the generator's own sources: a changed generator never trusts old stamps. */
function codeStamp(): string {
  if (codeFingerprint !== undefined) return codeFingerprint;
  const sync = join(dirname(fileURLToPath(import.meta.url)), "..");
  const parts: string[] = [];
  for (const dir of ["", "_fast", "../core", "../incus", "../../scripts"].map((d) =>
    join(sync, d),
  )) {
    try {
      for (const name of readdirSync(dir).sort()) {
        if (!name.endsWith(".ts") || name.endsWith(".test.ts")) continue;
        const s = statSync(join(dir, name));
        parts.push(`${name}:${s.size}:${s.mtimeMs}`);
      }
    } catch {
      parts.push(`${dir}:unreadable`);
    }
  }
  codeFingerprint = parts.join("|");
  return codeFingerprint;
}

function statOf(path: string) {
  const s = statSync(path);
  return { size: s.size, mtimeMs: s.mtimeMs, ino: s.ino };
}

/**
 * The outputs of the last sync when nothing it depends on has changed and every
 * file it wrote is still exactly as it left it; undefined otherwise.
 */
export function freshStamp(baseDir: string, inputs: StampInputs): StampOutputs | undefined {
  if (!cacheEnabled()) return undefined;
  let stamp: Stamp;
  try {
    stamp = JSON.parse(readFileSync(stampPath(baseDir), "utf8")) as Stamp;
  } catch {
    return undefined;
  }
  if (stamp.version !== VERSION || stamp.code !== codeStamp() || stamp.context !== inputs.context) {
    return undefined;
  }
  if (stamp.files.length !== inputs.files.length) return undefined;
  for (const [i, [path, text]] of inputs.files.entries()) {
    const [p, t] = stamp.files[i] as [string, string];
    if (p !== path || t !== text) return undefined;
  }
  try {
    for (const f of stamp.outputs) {
      const s = statOf(f.path);
      if (s.size !== f.size || s.mtimeMs !== f.mtimeMs || s.ino !== f.ino) return undefined;
    }
  } catch {
    return undefined;
  }
  return {
    files: stamp.outputs,
    domains: stamp.domains,
    machines: stamp.machines,
    warnings: stamp.warnings,
    info: stamp.info,
  };
}

/** Record a successful sync (best effort: failures are ignored). */
export function writeStamp(
  baseDir: string,
  inputs: StampInputs,
  outputs: Omit<StampOutputs, "files"> & {
    paths: string[];
    /** Stats already known (from the writes), to save a stat per file. */
    known?: ReadonlyMap<string, Omit<StampedFile, "path">>;
  },
): void {
  if (!cacheEnabled()) return;
  try {
    const stamp = {
      version: VERSION,
      code: codeStamp(),
      context: inputs.context,
      files: inputs.files,
      outputs: outputs.paths.map((path) => ({
        path,
        ...(outputs.known?.get(path) ?? statOf(path)),
      })),
      domains: outputs.domains,
      machines: outputs.machines,
      warnings: outputs.warnings,
      info: outputs.info,
    };
    const file = stampPath(baseDir);
    mkdirSync(dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(stamp));
    renameSync(tmp, file);
  } catch {
    // Only an optimisation.
  }
}
