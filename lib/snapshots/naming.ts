/**
 * Snapshot naming, timestamps, retention and the pre-apply state files
 * (`latest`, `latest-scope`, `history` in `~/.anklume/pre-apply-snapshots/`).
 * Everything here is pure except the three small state-file helpers.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import process from "node:process";

/** Prefix of the snapshots taken before every apply. */
export const PRE_APPLY_PREFIX = "pre-apply-";
/** Prefix of the snapshots `snap create` names by default. */
export const USER_PREFIX = "snap-";
/** Retention when `--keep` / `KEEP=` is not given. */
export const DEFAULT_KEEP = 3;

const TS_RE = /^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})$/;

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** Local-time timestamp `YYYYMMDD-HHMMSS`, as v1's `date +%Y%m%d-%H%M%S`. */
export function timestamp(d: Date = new Date()): string {
  return (
    `${pad(d.getFullYear(), 4)}${pad(d.getMonth() + 1)}${pad(d.getDate())}-` +
    `${pad(d.getHours())}${pad(d.getMinutes())}${pad(d.getSeconds())}`
  );
}

/** True for a well-formed `YYYYMMDD-HHMMSS` with a real date and time. */
export function isTimestamp(ts: string): boolean {
  const m = TS_RE.exec(ts);
  if (!m) return false;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, ...number[]];
  const date = new Date(y, (mo ?? 0) - 1, d, h, mi, s);
  return (
    date.getFullYear() === y &&
    date.getMonth() === (mo ?? 0) - 1 &&
    date.getDate() === d &&
    date.getHours() === h &&
    date.getMinutes() === mi &&
    date.getSeconds() === s
  );
}

/** `pre-apply-<ts>`. */
export function preApplyName(ts: string): string {
  return `${PRE_APPLY_PREFIX}${ts}`;
}

/** The timestamp of a `pre-apply-<ts>` name, or null for any other name. */
export function preApplyTimestamp(name: string): string | null {
  if (!name.startsWith(PRE_APPLY_PREFIX)) return null;
  const ts = name.slice(PRE_APPLY_PREFIX.length);
  return isTimestamp(ts) ? ts : null;
}

/** Default name of a user snapshot: `snap-YYYYMMDD-HHMMSS`. */
export function userSnapshotName(d: Date = new Date()): string {
  return `${USER_PREFIX}${timestamp(d)}`;
}

/**
 * Accept a rollback target given as `<ts>` or `pre-apply-<ts>`; return the
 * timestamp, or null when it is neither.
 */
export function parseRollbackTarget(arg: string): string | null {
  if (isTimestamp(arg)) return arg;
  return preApplyTimestamp(arg);
}

/**
 * Check a snapshot name the way Incus will (no `/`, not empty, not `.`/`..`,
 * no whitespace); return an error message or null.
 */
export function snapshotNameProblem(name: string): string | null {
  if (name === "") return "a snapshot name cannot be empty";
  if (name.includes("/")) return `snapshot name "${name}" contains "/"; use letters, digits, - _ .`;
  if (name === "." || name === "..") return `snapshot name "${name}" is reserved`;
  if (/\s/.test(name)) return `snapshot name "${name}" contains whitespace; use - or _ instead`;
  return null;
}

/** What `cleanup --keep N` does to a history (oldest first): names to delete and the new history. */
export function planCleanup(history: string[], keep: number): { remove: string[]; keep: string[] } {
  if (!Number.isInteger(keep) || keep < 0)
    throw new Error(`keep must be an integer >= 0, got ${keep}`);
  if (history.length <= keep) return { remove: [], keep: [...history] };
  const cut = history.length - keep;
  return { remove: history.slice(0, cut), keep: history.slice(cut) };
}

/** Parse a `--keep` value: a non-negative integer, else null. */
export function parseKeep(raw: string): number | null {
  return /^\d+$/.test(raw) ? Number(raw) : null;
}

/**
 * The timestamp for a new pre-apply snapshot: `now`, moved forward one second
 * at a time until its name is not already in the history.
 */
export function freshTimestamp(now: Date, history: readonly string[]): string {
  const taken = new Set(history);
  const d = new Date(now.getTime());
  while (taken.has(preApplyName(timestamp(d)))) d.setSeconds(d.getSeconds() + 1);
  return timestamp(d);
}

// ---- state files ----------------------------------------------------------

/** The pre-apply state directory: $ANKLUME_SNAPSHOT_STATE_DIR, else ~/.anklume/pre-apply-snapshots. */
export function stateDir(override?: string): string {
  return (
    override ||
    process.env.ANKLUME_SNAPSHOT_STATE_DIR ||
    join(homedir(), ".anklume", "pre-apply-snapshots")
  );
}

/** What the state files hold. */
export interface PreApplyState {
  latest: string | null;
  scope: string | null;
  history: string[];
}

function readLine(path: string): string | null {
  if (!existsSync(path)) return null;
  const s = readFileSync(path, "utf8").trim();
  return s === "" ? null : s;
}

/** Parse a history file: one `pre-apply-<ts>` per line, oldest first; blank lines dropped. */
export function parseHistory(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
}

/** Read the state directory; missing files read as empty. */
export function readState(dir: string): PreApplyState {
  const h = join(dir, "history");
  return {
    latest: readLine(join(dir, "latest")),
    scope: readLine(join(dir, "latest-scope")),
    history: existsSync(h) ? parseHistory(readFileSync(h, "utf8")) : [],
  };
}

function writeAtomic(path: string, content: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}

/** Record a new snapshot: `latest`, `latest-scope`, and one line appended to `history`. */
export function recordSnapshot(dir: string, ts: string, scope: string): void {
  mkdirSync(dir, { recursive: true });
  const { history } = readState(dir);
  const name = preApplyName(ts);
  const next = history.includes(name) ? history : [...history, name];
  writeAtomic(join(dir, "history"), formatHistory(next));
  writeAtomic(join(dir, "latest"), `${ts}\n`);
  writeAtomic(join(dir, "latest-scope"), `${scope}\n`);
}

/** Replace the history file (after cleanup); `latest` is left alone, as in v1. */
export function writeHistory(dir: string, history: string[]): void {
  mkdirSync(dir, { recursive: true });
  writeAtomic(join(dir, "history"), formatHistory(history));
}

function formatHistory(history: string[]): string {
  return history.length ? `${history.join("\n")}\n` : "";
}
