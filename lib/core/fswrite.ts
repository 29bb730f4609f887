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
  chmodSync,
  closeSync,
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

  let target = path;
  let mode = opts.mode;
  if (existing !== null) {
    if (lstatSync(path).isSymbolicLink()) target = realpathSync(path);
    mode ??= statSync(target).mode & 0o7777;
  }
  // String slicing, not path.dirname/join: this runs once per generated file.
  // Unique enough with "wx" (which refuses an existing name); no crypto import on the hot path.
  const slash = target.lastIndexOf("/");
  const dir = slash < 0 ? "." : slash === 0 ? "/" : target.slice(0, slash);
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
    renameSync(tmp, target);
  } catch (e) {
    try {
      unlinkSync(tmp); // a partly written temp file must not stay behind
    } catch {
      // never created: nothing to clean
    }
    throw new Error(
      `Cannot write "${path}": ${reason(e)}; check that ${dir} is a writable directory on a filesystem with free space`,
    );
  }
  return outcome;
}
