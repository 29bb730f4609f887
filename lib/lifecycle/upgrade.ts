/**
 * `make upgrade`: bring the framework up to its upstream without touching the
 * user's files. Pure planning (which paths are the user's, which local changes
 * the update would overwrite, the backup names, the report) sits above; the
 * git calls (zx) below. Nothing changes before every check has passed: a
 * refusal leaves the checkout exactly as it was.
 */
import { existsSync, mkdirSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

/** Paths that belong to the user, never written by an upgrade (a trailing `/` is a folder). */
export const USER_PATHS = [
  "infra.yml",
  "infra/",
  "roles_custom/",
  "anklume.conf.yml",
  "inventory/",
  "group_vars/",
  "host_vars/",
] as const;

/** True when `path` (relative to the checkout, `/`-separated) is the user's. */
export function isUserPath(path: string): boolean {
  return USER_PATHS.some((u) => (u.endsWith("/") ? path.startsWith(u) : path === u));
}

/** One entry of `git status --porcelain=v1 -z`: its two-letter code and path. */
export interface StatusEntry {
  code: string;
  path: string;
}

/** Parse `git status --porcelain=v1 -z --no-renames` output. */
export function parseStatus(text: string): StatusEntry[] {
  const out: StatusEntry[] = [];
  for (const rec of text.split("\0")) {
    if (rec.length < 4) continue;
    out.push({ code: rec.slice(0, 2), path: rec.slice(3) });
  }
  return out;
}

/** Not in HEAD: untracked (`??`) or only staged as added (`A`). */
export const notInHead = (e: StatusEntry) => e.code === "??" || e.code[0] === "A";

/** What an upgrade will do with the local state, before doing anything. */
export interface UpgradePlan {
  /** Framework files changed locally that the update rewrites: saved to `.bak` first. */
  backup: StatusEntry[];
  /** Framework files changed locally that the update does not touch: left as they are. */
  kept: StatusEntry[];
  /** User files that the update would write: the upgrade refuses. */
  userConflicts: string[];
  /** Unmerged paths (a merge or rebase in progress): the upgrade refuses. */
  unmerged: string[];
}

/**
 * Sort the local changes against the paths the update changes (`incoming`).
 * A user file the update would write is a refusal, never a backup.
 */
export function planUpgrade(status: StatusEntry[], incoming: Iterable<string>): UpgradePlan {
  const touched = new Set(incoming);
  const plan: UpgradePlan = { backup: [], kept: [], userConflicts: [], unmerged: [] };
  for (const e of status) {
    if (e.code.includes("U") || e.code === "AA" || e.code === "DD") {
      plan.unmerged.push(e.path);
      continue;
    }
    // `.bak` files of an earlier upgrade are the user's copies: never touched.
    if (isUserPath(e.path) || /\.bak(\.\d+)?$/.test(e.path)) {
      if (touched.has(e.path)) plan.userConflicts.push(e.path);
      continue;
    }
    if (touched.has(e.path)) plan.backup.push(e);
    else if (e.code !== "??") plan.kept.push(e);
  }
  return plan;
}

/** Where the local version of `path` is saved: `<path>.bak`, or `<path>.bak.<n>` when taken. */
export function backupName(path: string, taken: (p: string) => boolean): string {
  if (!taken(`${path}.bak`)) return `${path}.bak`;
  for (let n = 1; ; n++) if (!taken(`${path}.bak.${n}`)) return `${path}.bak.${n}`;
}

/** An upstream spec split into remote and branch (`origin/release/2` with remote `origin`). */
export interface Upstream {
  remote: string;
  branch: string;
}

/**
 * Split `remote/branch` against the known remotes (the longest remote name that
 * prefixes it wins, so a branch may contain slashes); null when no remote fits.
 */
export function parseUpstream(spec: string, remotes: string[]): Upstream | null {
  const fits = remotes
    .filter((r) => spec.startsWith(`${r}/`) && spec.length > r.length + 1)
    .sort((a, b) => b.length - a.length);
  const remote = fits[0];
  return remote === undefined ? null : { remote, branch: spec.slice(remote.length + 1) };
}

/** The report's facts. */
export interface UpgradeReport {
  upstream: string;
  from: string;
  to: string;
  /** `<short sha> <subject>` per commit pulled, newest first. */
  commits: string[];
  fastForward: boolean;
  backups: { path: string; backup: string; deleted: boolean }[];
  kept: string[];
  userFiles: string[];
  dryRun: boolean;
}

/** The summary printed after an upgrade (or what one would do, under --dry-run). */
export function reportLines(r: UpgradeReport, maxCommits = 20): string[] {
  const n = r.commits.length;
  const out: string[] = [];
  const head = r.dryRun ? "Would upgrade" : "Upgraded";
  out.push(
    `${head} anklume from ${r.from.slice(0, 7)} to ${r.to.slice(0, 7)}: ${n} commit${n === 1 ? "" : "s"} from ${r.upstream}${r.fastForward ? "" : " (merged with your own commits)"}`,
  );
  for (const c of r.commits.slice(0, maxCommits)) out.push(`  ${c}`);
  if (n > maxCommits)
    out.push(`  … and ${n - maxCommits} more (git log ${r.from.slice(0, 7)}..${r.to.slice(0, 7)})`);
  if (r.backups.length > 0) {
    out.push(
      `${r.dryRun ? "Would back up" : "Backed up"} your changes to framework files the update ${r.dryRun ? "rewrites" : "rewrote"} (compare, then carry over what you still need):`,
    );
    for (const b of r.backups) {
      out.push(
        b.deleted
          ? `  ${b.path}: you had deleted it; upstream's version is back`
          : `  ${b.path} -> ${b.backup}`,
      );
    }
  } else {
    out.push("No framework file of yours needed a backup.");
  }
  if (r.kept.length > 0) {
    out.push("Kept your changes to framework files the update does not touch:");
    for (const k of r.kept) out.push(`  ${k}`);
  }
  if (r.userFiles.length > 0) out.push(`Not touched (yours): ${r.userFiles.join(", ")}`);
  return out;
}

/** The one-line notice of the update check, or null when nothing is new. */
export function noticeLine(behind: number, upstream: string, dir: string): string | null {
  if (!(behind > 0)) return null;
  return `anklume: ${behind} update${behind === 1 ? "" : "s"} available on ${upstream}. Run 'make -C ${dir} upgrade'`;
}

/** At most one fetch an hour: is the last one (the cache file's mtime) older than `maxAgeMs`? */
export function fetchDue(cacheFile: string, now = Date.now(), maxAgeMs = 3_600_000): boolean {
  try {
    return now - statSync(cacheFile).mtimeMs >= maxAgeMs || statSync(cacheFile).mtimeMs > now;
  } catch {
    return true;
  }
}

/** Record a fetch attempt now (the cache file's mtime). */
export function markFetched(cacheFile: string, now = Date.now()): void {
  try {
    mkdirSync(dirname(cacheFile), { recursive: true });
    if (!existsSync(cacheFile)) writeFileSync(cacheFile, "");
    utimesSync(cacheFile, now / 1000, now / 1000);
  } catch {
    // Only a throttle: a read-only home fetches every time, within its timeout.
  }
}

/** The user files present in a checkout, for the report. */
export function presentUserFiles(root: string): string[] {
  return USER_PATHS.filter((p) => existsSync(join(root, p)));
}

// ---------------------------------------------------------------------------
// The git side (zx). Every check runs before the first change.

/** Options of `runUpgrade`. */
export interface UpgradeOptions {
  /** Any directory of the checkout. */
  dir: string;
  /** `remote/branch`; default: the current branch's configured upstream. */
  upstream?: string;
  dryRun?: boolean;
  /** Skip the sync and its compatibility check (tests of the git side). */
  noSync?: boolean;
  /** Seconds the fetch may take. */
  fetchTimeout?: number;
  /** Progress and report lines (stderr). */
  say: (line: string) => void;
  /** Colour for the refusals. */
  error: (text: string) => string;
}

/** A refusal: printed as `error: <message>`, exit 1, nothing changed. */
class Refusal extends Error {}

async function git(cwd: string) {
  const { $ } = await import("zx");
  return $({ cwd, quiet: true, nothrow: true });
}

/** Pull the framework's upstream into the checkout at `o.dir`; the exit code. */
export async function runUpgrade(o: UpgradeOptions): Promise<number> {
  try {
    return await upgradeSteps(o);
  } catch (e) {
    if (!(e instanceof Refusal)) throw e;
    o.say(`${o.error("error:")} ${e.message}`);
    return 1;
  }
}

async function upgradeSteps(o: UpgradeOptions): Promise<number> {
  let g = await git(o.dir);
  const top = await g`git rev-parse --show-toplevel`;
  if (top.exitCode !== 0) {
    throw new Refusal(
      `Cannot upgrade ${o.dir}: it is not a git checkout (make upgrade pulls the framework with git); clone anklume with git, copy your infra.yml into it, and run make upgrade there`,
    );
  }
  const root = top.stdout.trim();
  g = await git(root);

  // 1. The upstream: UPSTREAM=<remote/branch>, else the branch's configured one.
  const up = await resolveUpstream(g, o.upstream);
  const spec = `${up.remote}/${up.branch}`;

  // 2. Fetch it (bounded), then compare.
  o.say(`Fetching ${spec}...`);
  const { $ } = await import("zx");
  const fetched = await $({
    cwd: root,
    quiet: true,
    nothrow: true,
  })`git fetch --quiet --no-tags ${up.remote} ${`refs/heads/${up.branch}`}`.timeout(
    `${o.fetchTimeout ?? 60}s`,
  );
  if (fetched.exitCode !== 0) {
    const why =
      fetched.stderr.trim().split("\n").at(-1) || `no answer within ${o.fetchTimeout ?? 60} s`;
    throw new Refusal(
      `Cannot upgrade: the upstream ${spec} cannot be reached (${why}); check the network and \`git remote -v\`, or name another one with UPSTREAM=<remote/branch>. Nothing was changed`,
    );
  }
  const from = (await g`git rev-parse HEAD`).stdout.trim();
  const to = (await g`git rev-parse FETCH_HEAD`).stdout.trim();
  const behind = Number((await g`git rev-list --count ${`HEAD..${to}`}`).stdout.trim());
  const ahead = Number((await g`git rev-list --count ${`${to}..HEAD`}`).stdout.trim());
  if (behind === 0) {
    o.say(
      `Already up to date: ${from.slice(0, 7)} has every commit of ${spec} (${to.slice(0, 7)})${ahead > 0 ? `, plus ${ahead} commit(s) of your own` : ""}. Nothing was changed.`,
    );
    return 0;
  }

  // 3. What the update touches, and what of the local state that meets.
  const base = (await g`git merge-base HEAD ${to}`).stdout.trim();
  const incoming = splitZ((await g`git diff --name-only -z --no-renames ${base} ${to}`).stdout);
  const status = parseStatus(
    (await g`git status --porcelain=v1 -z --no-renames --untracked-files=all`).stdout,
  );
  const plan = planUpgrade(status, incoming);
  if (plan.unmerged.length > 0) {
    throw new Refusal(
      `Cannot upgrade while a merge or rebase is unfinished (${plan.unmerged.join(", ")}); finish it (git status) or abort it (git merge --abort, git rebase --abort), then run make upgrade again. Nothing was changed`,
    );
  }
  if (plan.userConflicts.length > 0) {
    throw new Refusal(
      `Cannot upgrade: ${spec} changes ${plan.userConflicts.join(", ")}, which ${plan.userConflicts.length === 1 ? "is" : "are"} yours and changed here; make upgrade never writes your files: commit them (git commit) or move them away, then run make upgrade again. Nothing was changed`,
    );
  }
  const fastForward = ahead === 0;
  if (!fastForward) {
    // Your own commits: merge only when git can do it without a conflict.
    const trial = await g`git merge-tree --write-tree --name-only ${"HEAD"} ${to}`;
    if (trial.exitCode !== 0) {
      // --name-only: the tree, the conflicted paths, an empty line, then git's messages.
      const lines = trial.stdout.split("\n").slice(1);
      const end = lines.indexOf("");
      const files = (end < 0 ? lines : lines.slice(0, end)).slice(0, 20);
      throw new Refusal(
        `Cannot upgrade: your ${ahead} commit(s) conflict with ${spec}${files.length ? ` in ${[...new Set(files)].join(", ")}` : ""}; merge by hand (git merge ${spec}) or rebase your commits (git rebase ${spec}). Nothing was changed`,
      );
    }
  }
  const commits = splitLines(
    (await g`git log --no-merges --format=${"%h %s"} ${`HEAD..${to}`}`).stdout,
  );
  const taken = (p: string) => existsSync(join(root, p));
  const backups = plan.backup.map((e) => ({
    entry: e,
    path: e.path,
    backup: backupName(e.path, taken),
    deleted: !existsSync(join(root, e.path)),
  }));
  const report: UpgradeReport = {
    upstream: spec,
    from,
    to,
    commits,
    fastForward,
    backups,
    kept: plan.kept.map((e) => e.path),
    userFiles: presentUserFiles(root),
    dryRun: Boolean(o.dryRun),
  };
  if (o.dryRun) {
    for (const l of reportLines(report)) o.say(l);
    o.say("Dry run: nothing was changed (make upgrade does it).");
    return 0;
  }

  // 4. Save the local versions the update rewrites, then give git a clean path.
  const { copyFileSync, renameSync } = await import("node:fs");
  for (const b of backups) {
    const file = join(root, b.path);
    if (notInHead(b.entry)) {
      if (b.entry.code[0] === "A") await g`git rm --cached --quiet -- ${b.path}`;
      renameSync(file, join(root, b.backup));
    } else {
      if (!b.deleted) copyFileSync(file, join(root, b.backup));
      const reset = await g`git checkout HEAD -- ${b.path}`;
      if (reset.exitCode !== 0)
        throw new Refusal(`Cannot restore ${b.path} for the update: ${reset.stderr.trim()}`);
    }
  }

  // 5. The update itself.
  const merged = fastForward
    ? await g`git merge --ff-only --quiet ${to}`
    : await g`git merge --no-edit --quiet -m ${`Merge ${spec} (make upgrade)`} ${to}`;
  if (merged.exitCode !== 0) {
    if (!fastForward) await g`git merge --abort`;
    throw new Refusal(
      `The update from ${spec} failed: ${merged.stderr.trim() || merged.stdout.trim()}${backups.length ? `; your versions are saved in ${backups.map((b) => b.backup).join(", ")}` : ""}`,
    );
  }
  for (const l of reportLines(report)) o.say(l);

  // 6. Dependencies, then the user's infra against the new framework.
  if (incoming.some((p) => p === "package.json" || p === "bun.lock")) {
    o.say("The update changes the dependencies: bun install --frozen-lockfile");
    const inst = await $({ cwd: root, quiet: true, nothrow: true })`bun install --frozen-lockfile`;
    if (inst.exitCode !== 0) {
      throw new Refusal(
        `The framework is updated, but bun install --frozen-lockfile failed (${inst.stderr.trim().split("\n").at(-1)}); run it by hand, then make sync`,
      );
    }
  }
  if (o.noSync) return 0;
  return syncAfter(root, o, from);
}

/** Check the user's infra with the new framework (sync-dry), then sync; 1 when it is rejected. */
async function syncAfter(root: string, o: UpgradeOptions, from: string): Promise<number> {
  const src = existsSync(join(root, "infra/base.yml"))
    ? "infra/"
    : existsSync(join(root, "infra.yml"))
      ? "infra.yml"
      : null;
  if (src === null) {
    o.say("No infra.yml (or infra/) yet: nothing to sync; write one, then make sync.");
    return 0;
  }
  const { $ } = await import("zx");
  const m = $({ cwd: root, quiet: true, nothrow: true });
  const dry = await m`make --no-print-directory sync-dry`;
  if (dry.exitCode !== 0) {
    for (const l of splitLines(`${dry.stdout}\n${dry.stderr}`)) o.say(`  ${l}`);
    throw new Refusal(
      `The updated framework does not accept your ${src} (its errors are above); nothing was generated. Fix ${src} and run make sync, or go back to the framework you had with: git reset --keep ${from.slice(0, 7)}`,
    );
  }
  o.say(`Your ${src} is accepted by the updated framework (make sync-dry); make sync:`);
  const sync = await m`make --no-print-directory sync`;
  for (const l of splitLines(`${sync.stdout}\n${sync.stderr}`)) o.say(`  ${l}`);
  if (sync.exitCode !== 0)
    throw new Refusal("make sync failed after the upgrade (its output is above)");
  return 0;
}

async function resolveUpstream(
  g: Awaited<ReturnType<typeof git>>,
  spec: string | undefined,
): Promise<Upstream> {
  const remotes = splitLines((await g`git remote`).stdout);
  if (spec !== undefined) {
    const up = parseUpstream(spec, remotes);
    if (!up) {
      throw new Refusal(
        `Cannot upgrade from UPSTREAM=${spec}: write it as <remote>/<branch> with a known remote (${remotes.join(", ") || "none configured: git remote add origin <url>"})`,
      );
    }
    return up;
  }
  const branch = (await g`git symbolic-ref --quiet --short HEAD`).stdout.trim();
  const remote = branch ? (await g`git config ${`branch.${branch}.remote`}`).stdout.trim() : "";
  const merge = branch ? (await g`git config ${`branch.${branch}.merge`}`).stdout.trim() : "";
  if (!branch || !remote || remote === "." || !merge.startsWith("refs/heads/")) {
    throw new Refusal(
      `Cannot upgrade: ${branch ? `the branch ${branch} has no upstream on a remote` : "no branch is checked out"}; set one (git branch --set-upstream-to=origin/main) or name it: make upgrade UPSTREAM=origin/main`,
    );
  }
  return { remote, branch: merge.slice("refs/heads/".length) };
}

const splitZ = (t: string) => t.split("\0").filter((x) => x !== "");
const splitLines = (t: string) =>
  t
    .split("\n")
    .map((l) => l.trimEnd())
    .filter((l) => l !== "");

/**
 * The update notifier: fetch the branch's upstream at most once an hour (the
 * cache file's mtime; `timeoutS` bounds it), then count the commits it has that
 * HEAD lacks, locally. The notice line, or null: nothing new, no upstream, not
 * a checkout, or git failing (a login never fails because of it).
 */
export async function updateCheck(
  dir: string,
  cacheFile: string,
  timeoutS = 5,
  now = Date.now(),
): Promise<string | null> {
  const g = await git(dir);
  const up = await g`git rev-parse --abbrev-ref --symbolic-full-name ${"@{upstream}"}`;
  if (up.exitCode !== 0) return null;
  if (fetchDue(cacheFile, now)) {
    markFetched(cacheFile, now);
    const { $ } = await import("zx");
    await $({ cwd: dir, quiet: true, nothrow: true })`git fetch --quiet --no-tags`.timeout(
      `${timeoutS}s`,
    );
  }
  const count = await g`git rev-list --count ${"HEAD..@{upstream}"}`;
  if (count.exitCode !== 0) return null;
  return noticeLine(Number(count.stdout.trim()), up.stdout.trim(), dir);
}
