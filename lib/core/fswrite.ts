/**
 * Minimal, atomic file writes (decision 4): a file is written only when its
 * content changes, through a temporary file in the same directory renamed
 * over it, so a reader sees the old file or the new one, never half of one.
 * The existing file's permission bits are kept (unless the caller sets
 * `mode`); a symlink is followed and its target replaced. Data is not fsynced: every generated file can be
 * produced again by `make sync`.
 */
import { Buffer } from "node:buffer";
import {
  accessSync,
  chmodSync,
  closeSync,
  constants,
  existsSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import process from "node:process";

export type WriteOutcome = "created" | "updated" | "unchanged";

let tmpSeq = 0;

function reason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err?.code
    ? `${err.code} (${err.message.replace(/^\w+: /, "")})`
    : String(err?.message ?? e);
}

/** The file's text, or null when it does not exist; any other failure throws a clear Error. */
export function readIfExists(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return null;
    if (code === "ENOTDIR") {
      throw new Error(
        `Cannot read "${path}": a parent of it is a file, not a directory; rename or remove that file`,
      );
    }
    throw new Error(
      `Cannot read "${path}": ${reason(e)}; make it a readable regular file or remove it`,
    );
  }
}

/**
 * A file's text for a script's input: any failure throws an Error that names
 * the file, says what it is instead (missing, a directory…) and what to do.
 * @example readTextFile("plan.json", "--desired")
 */
export function readTextFile(path: string, what = "the file"): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT"
        ? "it does not exist"
        : code === "EISDIR"
          ? "it is a directory, not a file"
          : code === "EACCES" || code === "EPERM"
            ? "permission denied"
            : code === "ENOTDIR"
              ? "a parent of it is a file, not a directory"
              : reason(e);
    throw new Error(`Cannot read ${what} "${path}": ${why}; pass the path of a readable file`);
  }
}

/**
 * Write `content` to `path` unless it already holds exactly that; say what happened.
 * With `dryRun`, only report what would happen: no file, no directory is created.
 * @example writeIfChanged("host_vars/web.yml", text) // "created", then "unchanged"
 */
export function writeIfChanged(
  path: string,
  content: string,
  opts: {
    dryRun?: boolean;
    existing?: string | null;
    /** Receives the written file's size, mtime and inode (fstat: no second path lookup). */
    onStat?: (s: { size: number; mtimeMs: number; ino: number }) => void;
    /** Permission bits the written file gets, whatever the umask and the old file's (default: the old file's; 0o666 minus the umask for a new one). */
    mode?: number;
    /** Permission bits of parent directories it creates (default: 0o777 minus the umask). */
    dirMode?: number;
  } = {},
): WriteOutcome {
  // A caller that has just read the file passes its content to save a read.
  const existing = opts.existing !== undefined ? opts.existing : readIfExists(path);
  if (existing === content) return "unchanged";
  const outcome: WriteOutcome = existing === null ? "created" : "updated";
  if (opts.dryRun) return outcome;

  const staged = stageWrite(path, content, existing, opts);
  commitWrite(staged);
  return outcome;
}

/** A temporary file written beside its target, waiting to be renamed over it. */
export interface StagedWrite {
  /** The path as the caller named it (for messages). */
  path: string;
  /** Where the rename goes (the link's target when `path` is a symlink). */
  target: string;
  tmp: string;
  /** The content the target held when read (null: it did not exist). */
  existing: string | null;
}

/** The folder part of a path, by string slicing (this runs once per generated file). */
function dirOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash);
}

/**
 * Write `content` to a temporary file beside `path` (after following a
 * symlink), keeping the old file's permission bits, and create the missing
 * folders. Nothing is renamed yet: commitWrite does it, discardWrite undoes
 * it. Throws a clear Error (and leaves no temp file) when it cannot.
 */
export function stageWrite(
  path: string,
  content: string,
  existing: string | null,
  opts: {
    mode?: number;
    dirMode?: number;
    onStat?: (s: { size: number; mtimeMs: number; ino: number }) => void;
  } = {},
): StagedWrite {
  let target = path;
  let mode = opts.mode;
  try {
    if (existing !== null) {
      if (lstatSync(path).isSymbolicLink()) target = realpathSync(path);
      mode ??= statSync(target).mode & 0o7777;
    }
  } catch (e) {
    throw new Error(
      `Cannot write "${path}": ${reason(e)}; it changed while anklume was writing, run the command again`,
    );
  }
  // Unique enough with "wx" (which refuses an existing name); no crypto import on the hot path.
  const slash = target.lastIndexOf("/");
  const dir = dirOf(target);
  const tmp = `${target.slice(0, slash + 1)}.${target.slice(slash + 1)}.${process.pid}.${(tmpSeq++).toString(36)}.tmp`;
  try {
    const write = () => {
      const fd = openSync(tmp, "wx", mode ?? 0o666);
      try {
        const buf = Buffer.from(content, "utf8");
        for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off);
        if (opts.onStat) {
          const st = fstatSync(fd);
          opts.onStat({ size: st.size, mtimeMs: st.mtimeMs, ino: st.ino });
        }
      } finally {
        closeSync(fd);
      }
    };
    try {
      write();
    } catch (e) {
      // The folder is missing (a new tree): create it once and write again.
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      mkdirSync(dir, {
        recursive: true,
        ...(opts.dirMode !== undefined ? { mode: opts.dirMode } : {}),
      });
      write();
    }
    if (mode !== undefined) chmodSync(tmp, mode); // the umask narrowed it at creation
  } catch (e) {
    removeQuietly(tmp); // a partly written temp file must not stay behind
    throw new Error(
      `Cannot write "${path}": ${reason(e)}; check that ${dir} is a writable directory on a filesystem with free space`,
    );
  }
  return { path, target, tmp, existing };
}

/** Rename a staged temp file over its target (removing the temp file if that fails). */
export function commitWrite(staged: StagedWrite): void {
  try {
    renameSync(staged.tmp, staged.target);
  } catch (e) {
    removeQuietly(staged.tmp);
    throw new Error(
      `Cannot write "${staged.path}": ${reason(e)}; check that ${dirOf(staged.target)} is a writable directory on a filesystem with free space`,
    );
  }
}

/** Remove a staged temp file: the write will not happen. */
export function discardWrite(staged: StagedWrite): void {
  removeQuietly(staged.tmp);
}

/**
 * True when the target still holds what was read before the temp file was
 * written (the same text, or still no file): renaming over it loses nothing.
 */
export function unchangedSinceRead(staged: StagedWrite): boolean {
  // A new file: existsSync does not throw (a failed read's Error costs ~20 µs × 1,501 files).
  if (staged.existing === null) return !existsSync(staged.target);
  try {
    return readFileSync(staged.target, "utf8") === staged.existing;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ENOENT" && staged.existing === null;
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // never created, or already gone: nothing to clean
  }
}

/** anklume's own temp-file names: `.<name>.<pid>.<counter>.tmp` (see stageWrite). */
export const TEMP_FILE = /^\.(.+)\.([0-9]+)\.([0-9a-z]+)\.tmp$/;

/**
 * Check, before anything is written, that each folder can take new files:
 * it is a writable directory, or it is missing and its nearest existing parent
 * is one. Returns [folder, message] for each folder that cannot (empty: all can).
 */
export function checkWritableDirs(dirs: Iterable<string>): [string, string][] {
  const problems: [string, string][] = [];
  for (const dir of dirs) {
    let d = dir;
    for (;;) {
      let st: ReturnType<typeof statSync>;
      try {
        st = statSync(d);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        const up = dirOf(d);
        if ((code === "ENOENT" || code === "ENOTDIR") && up !== d && d !== ".") {
          d = up; // missing (or under a file): look at its parent
          continue;
        }
        problems.push([
          dir,
          `Cannot write into "${dir}": ${reason(e)}; make it a writable directory`,
        ]);
        break;
      }
      if (!st.isDirectory()) {
        problems.push([
          dir,
          `Cannot write into "${dir}": "${d}" is a file, not a directory; rename or remove that file, then run the command again`,
        ]);
      } else {
        try {
          accessSync(d, constants.W_OK | constants.X_OK);
        } catch (e) {
          problems.push([
            dir,
            `Cannot write into "${dir}": ${reason(e)} on "${d}"; make it a writable directory`,
          ]);
        }
      }
      break;
    }
  }
  return problems;
}

/** A lock older than this is stale whoever has its pid now: no sync runs for 10 minutes. */
const STALE_LOCK_MS = 10 * 60 * 1000;

/** The lock file of an output tree (see lockTree). */
export const LOCK_FILE = ".anklume-sync.lock";

/**
 * Take the lock of the tree rooted at `dir` (a `.anklume-sync.lock` file holding
 * the owner's pid, created with "wx"), so two writers of one tree never mix
 * their files. A lock whose process is gone (a killed sync) is taken over.
 * Waits up to `timeoutMs` for a live owner, then throws a clear Error.
 * Returns the function that releases it.
 */
export async function lockTree(dir: string, timeoutMs = 30_000): Promise<() => void> {
  const path = `${dir.replace(/\/+$/, "") || "."}/${LOCK_FILE}`;
  const problem = checkWritableDirs([dir])[0];
  if (problem) throw new Error(problem[1]);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new Error(`Cannot create "${dir}": ${reason(e)}; make it a writable directory`);
  }
  const deadline = Date.now() + timeoutMs;
  let delay = 10;
  for (;;) {
    try {
      const fd = openSync(path, "wx", 0o644);
      try {
        writeSync(fd, `${process.pid}\n`);
      } finally {
        closeSync(fd);
      }
      return () => removeQuietly(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new Error(
          `Cannot lock "${dir}" for writing: ${reason(e)}; make it a writable directory`,
        );
      }
    }
    let owner = Number.NaN;
    try {
      owner = Number.parseInt(readFileSync(path, "utf8"), 10);
    } catch {
      continue; // released between our open and this read: try again
    }
    const dead = !alive(owner) && !(Number.isNaN(owner) && youngerThan(path, 1000));
    if (dead || !youngerThan(path, STALE_LOCK_MS)) {
      // A sync killed while holding it (an empty lock file is given a second to get its pid),
      // or a lock older than any sync (its pid was reused by another process).
      removeQuietly(path);
      continue;
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `Cannot sync into "${dir}": another sync (pid ${owner}) has been writing it for over ${Math.round(timeoutMs / 1000)} s; wait for it to finish, or remove ${path} if no sync is running`,
      );
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 200);
  }
}

function youngerThan(path: string, ms: number): boolean {
  try {
    return statSync(path).mtimeMs > Date.now() - ms;
  } catch {
    return false;
  }
}

/** True when a process with this pid exists (EPERM: it exists, owned by someone else). */
function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** True when anklume's temp file `name` (TEMP_FILE) was left by a process that is gone. */
export function staleTempFile(name: string): boolean {
  const m = TEMP_FILE.exec(name);
  return m !== null && m[1]?.endsWith(".yml") === true && !alive(Number(m[2]));
}
