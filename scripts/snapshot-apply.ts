#!/usr/bin/env bun
/*
Usage: snapshot-apply.ts <command> [options]

The pre-apply safety net: make apply snapshots every instance first, and
make rollback brings them all back.

Commands:
  create [--limit <group>]   Snapshot every instance of the inventory (or of the
                             group / host / comma list) as pre-apply-YYYYMMDD-HHMMSS
  rollback [<timestamp>]     Restore the latest pre-apply snapshot, or the one given
                             (YYYYMMDD-HHMMSS or pre-apply-YYYYMMDD-HHMMSS)
  list                       List the pre-apply snapshots, oldest first
  cleanup [--keep <N>]       Delete all but the newest N pre-apply snapshots (default 3)

Instances and their projects come from the generated tree: inventory/,
group_vars/ and host_vars/ under the base directory.

Options:
  --limit <group>     create: only this group, host, or comma-separated list
  --keep <N>          cleanup: how many to keep (default 3)
  --jobs <N>          How many incus calls run at once (default 4)
  --base-dir <dir>    Where inventory/ lives (default: $ANKLUME_BASE_DIR, else .)
  --state-dir <dir>   State files (default: $ANKLUME_SNAPSHOT_STATE_DIR,
                      else ~/.anklume/pre-apply-snapshots)
  --json              list: print a JSON array on stdout
  --dry-run           Say what would be done, change nothing
  -h, --help          Show this help

Exit status: 0 success (create also when some snapshots failed: it warns, and the
apply goes on), 1 failure (nothing to roll back, nothing restored), 2 usage error.
*/
import process from "node:process";
import { paint, parseCli, runMain, say, topComment, UsageError } from "../lib/core/cli.ts";
import { type InventoryHost, readInventory, selectHosts } from "../lib/core/inventory.ts";
import {
  DEFAULT_KEEP,
  freshTimestamp,
  parseKeep,
  parseRollbackTarget,
  planCleanup,
  preApplyName,
  preApplyTimestamp,
  readState,
  recordSnapshot,
  stateDir,
  writeHistory,
} from "../lib/snapshots/naming.ts";
import {
  currentHostname,
  listInstancesWithSnapshots,
  runPool,
  type SnapInstance,
  snapshotCall,
  snapshotNames,
} from "../lib/snapshots/ops.ts";

const USAGE = `Usage: snapshot-apply.ts <create|rollback|list|cleanup> [options]
Commands: create [--limit <group>], rollback [<timestamp>], list, cleanup [--keep <N>]`;

const HELP = topComment(import.meta.url);

const OPTIONS = {
  limit: { type: "string" },
  keep: { type: "string" },
  jobs: { type: "string" },
  "base-dir": { type: "string" },
  "state-dir": { type: "string" },
  json: { type: "boolean" },
  "dry-run": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

const key = (name: string, project: string) => `${project}/${name}`;
const where = (h: InventoryHost) => `${h.instance} (project=${h.project})`;

/** A progress line rewritten in place, only when stderr is a terminal. */
function progress(label: string, total: number) {
  const tty = Boolean(process.stderr.isTTY) && process.env.TERM !== "dumb";
  const show = (done: number) => {
    if (tty) process.stderr.write(`\r\u001b[K  ${label} [${done}/${total}]`);
  };
  return {
    start: () => show(0),
    line: (text: string, done: number) => {
      if (tty) process.stderr.write("\r\u001b[K");
      say(text);
      if (done < total) show(done);
    },
  };
}

function jobsOf(raw: string | undefined): number {
  if (raw === undefined) return 4;
  const n = parseKeep(raw);
  if (n === null || n < 1) throw new UsageError(`--jobs must be a whole number >= 1, got "${raw}"`);
  return n;
}

async function create(o: Opts): Promise<number> {
  const inv = readInventory(o.baseDir);
  if (!inv) {
    say(
      `${paint("yellow", "WARNING:")} No inventory in ${o.baseDir}/inventory (run make sync); no pre-apply snapshot taken`,
    );
    return 0;
  }
  const hosts = selectHosts(inv, o.limit);
  const scope = o.limit ?? "all";
  if (hosts.length === 0) {
    say(
      `${paint("yellow", "WARNING:")} No instance in scope "${scope}"; no pre-apply snapshot taken`,
    );
    return 0;
  }
  const all = await listInstancesWithSnapshots();
  const byKey = new Map(all.map((i) => [key(i.name, i.project), i]));
  const present: InventoryHost[] = [];
  const missing: InventoryHost[] = [];
  for (const h of hosts) (byKey.has(key(h.instance, h.project)) ? present : missing).push(h);

  const state = readState(o.stateDir);
  const taken = [
    ...state.history,
    ...present.flatMap((h) => snapshotNames(byKey.get(key(h.instance, h.project)) as SnapInstance)),
  ];
  const ts = freshTimestamp(new Date(), taken);
  const snap = preApplyName(ts);

  say(
    `${o.dry ? "[dry-run] " : ""}Pre-apply snapshot ${snap} of ${present.length} instance(s), scope ${scope}:`,
  );
  for (const h of missing)
    say(`  ${paint("yellow", "WARN")} ${where(h)}: not found in Incus, skipping`);
  if (o.dry) {
    for (const h of present) say(`  would snapshot ${where(h)}`);
    return 0;
  }
  const p = progress("snapshotting", present.length);
  p.start();
  const results = await runPool(
    present,
    o.jobs,
    (h) => snapshotCall("create", h.instance, snap, h.project),
    (r, done) =>
      p.line(
        r.ok
          ? `  ${paint("green", "OK")} ${where(r.item)}`
          : `  ${paint("yellow", "WARN")} ${where(r.item)}: snapshot failed: ${r.error}`,
        done,
      ),
  );
  const ok = results.filter((r) => r.ok).length;
  const failed = results.length - ok;
  say(`  ${ok} snapshot(s) created, ${missing.length} skipped (not found), ${failed} failed`);
  if (failed > 0)
    say(
      `${paint("yellow", "WARNING:")} ${failed} snapshot(s) failed: a rollback to ${snap} will not restore those instances`,
    );
  if (ok > 0) {
    recordSnapshot(o.stateDir, ts, scope);
    say(`  Roll back with: make rollback (or make rollback T=${ts})`);
  } else {
    say(
      `${paint("yellow", "WARNING:")} nothing was snapshotted, so nothing was recorded for rollback`,
    );
  }
  return 0;
}

async function rollback(o: Opts, arg: string | undefined): Promise<number> {
  const state = readState(o.stateDir);
  let ts: string | null;
  if (arg !== undefined) {
    ts = parseRollbackTarget(arg);
    if (!ts)
      throw new UsageError(`"${arg}" is not a timestamp YYYYMMDD-HHMMSS (see make rollback-list)`);
  } else ts = state.latest;
  if (!ts) {
    say(
      `${paint("red", "error:")} No pre-apply snapshot to roll back to (state in ${o.stateDir}); run make rollback-list to see the snapshots`,
    );
    return 1;
  }
  const snap = preApplyName(ts);
  const inv = readInventory(o.baseDir);
  if (!inv) {
    say(
      `${paint("red", "error:")} Cannot roll back to ${snap}: no inventory in ${o.baseDir}/inventory; run make sync first`,
    );
    return 1;
  }
  const all = await listInstancesWithSnapshots();
  const byKey = new Map(all.map((i) => [key(i.name, i.project), i]));
  const todo: InventoryHost[] = [];
  const skipped: InventoryHost[] = [];
  for (const h of inv.hosts) {
    const i = byKey.get(key(h.instance, h.project));
    (i && snapshotNames(i).includes(snap) ? todo : skipped).push(h);
  }
  say(`${o.dry ? "[dry-run] " : ""}Rolling back ${todo.length} instance(s) to ${snap}:`);
  for (const h of skipped) say(`  SKIP ${where(h)}: no snapshot ${snap}`);
  if (todo.length === 0) {
    say(`  0 instance(s) restored, ${skipped.length} skipped (no matching snapshot)`);
    say(
      `${paint("red", "error:")} Nothing was restored: no instance of the inventory has ${snap}; run make rollback-list`,
    );
    return 1;
  }
  if (o.dry) {
    for (const h of todo) say(`  would restore ${where(h)}`);
    return 0;
  }
  // The instance this runs in (the anklume controller) is restored last:
  // restoring it stops this very process.
  const me = currentHostname();
  const self = todo.filter((h) => h.instance === me);
  const others = todo.filter((h) => h.instance !== me);
  const p = progress("restoring", todo.length);
  p.start();
  const line = (r: { ok: boolean; item: InventoryHost; error?: string }, done: number) =>
    p.line(
      r.ok
        ? `  ${paint("green", "OK")} ${where(r.item)}`
        : `  ${paint("red", "FAIL")} ${where(r.item)}: ${r.error}`,
      done,
    );
  const results = await runPool(
    others,
    o.jobs,
    (h) => snapshotCall("restore", h.instance, snap, h.project),
    line,
  );
  for (const h of self) {
    say(
      `  ${paint("yellow", "NOTE")} restoring ${where(h)} last: it is the instance this runs in, the session ends here`,
    );
    results.push(
      ...(await runPool(
        [h],
        1,
        (x) => snapshotCall("restore", x.instance, snap, x.project),
        (r) => line(r, todo.length),
      )),
    );
  }
  const ok = results.filter((r) => r.ok).length;
  const failed = results.length - ok;
  say(
    `  ${ok} instance(s) restored, ${skipped.length} skipped (no matching snapshot)${failed ? `, ${failed} failed` : ""}`,
  );
  if (ok === 0) {
    say(`${paint("red", "error:")} Nothing was restored to ${snap}`);
    return 1;
  }
  return failed > 0 ? 1 : 0;
}

function list(o: Opts): number {
  const { history, latest } = readState(o.stateDir);
  const latestName = latest ? preApplyName(latest) : null;
  if (o.json) {
    const rows = history.map((name) => ({
      name,
      timestamp: preApplyTimestamp(name),
      latest: name === latestName,
    }));
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return 0;
  }
  const lines = ["  Pre-apply snapshots:"];
  if (history.length === 0) lines.push("  (none)");
  for (const name of history) lines.push(`  ${name}${name === latestName ? "  <-- latest" : ""}`);
  process.stdout.write(`${lines.join("\n")}\n`);
  return 0;
}

async function cleanup(o: Opts, keepRaw: string | undefined): Promise<number> {
  const keep = keepRaw === undefined ? DEFAULT_KEEP : parseKeep(keepRaw);
  if (keep === null) throw new UsageError(`--keep must be a whole number >= 0, got "${keepRaw}"`);
  const { history } = readState(o.stateDir);
  const plan = planCleanup(history, keep);
  if (plan.remove.length === 0) {
    say(`  ${history.length} pre-apply snapshot(s), keeping ${keep}: nothing to clean up`);
    return 0;
  }
  const all = await listInstancesWithSnapshots();
  const work: { name: string; inst: SnapInstance }[] = [];
  for (const name of plan.remove) {
    for (const inst of all) if (snapshotNames(inst).includes(name)) work.push({ name, inst });
  }
  if (o.dry) {
    for (const name of plan.remove) say(`  [dry-run] would delete ${name}`);
    return 0;
  }
  // Instances run concurrently, but one instance's snapshots are deleted one
  // after the other: concurrent deletes on one instance make Incus fail with
  // "snapshot record count doesn't match snapshot volume record count".
  const perInstance = new Map<string, { name: string; inst: SnapInstance }[]>();
  for (const w of work) {
    const k = key(w.inst.name, w.inst.project);
    perInstance.set(k, [...(perInstance.get(k) ?? []), w]);
  }
  const failedNames = new Set<string>();
  await runPool([...perInstance.values()], o.jobs, async (items) => {
    for (const w of items) {
      try {
        await snapshotCall("delete", w.inst.name, w.name, w.inst.project);
      } catch (e) {
        failedNames.add(w.name);
        say(
          `  ${paint("yellow", "WARN")} could not delete ${w.name} of ${w.inst.name} (project=${w.inst.project}): ${(e as Error).message}`,
        );
      }
    }
  });
  for (const name of plan.remove) {
    if (failedNames.has(name)) continue;
    const n = work.filter((w) => w.name === name).length;
    say(`  ${paint("green", "OK")} Deleted ${name} (${n} instance(s))`);
  }
  // A name whose deletion failed stays in the history, so the next cleanup retries it.
  writeHistory(o.stateDir, [...plan.remove.filter((n) => failedNames.has(n)), ...plan.keep]);
  return failedNames.size > 0 ? 1 : 0;
}

interface Opts {
  baseDir: string;
  stateDir: string;
  limit?: string;
  jobs: number;
  json: boolean;
  dry: boolean;
}

/** Entry point: returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const { values: v, positionals } = parseCli(argv, OPTIONS);
  if (v.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const [cmd, ...pos] = positionals;
  if (!cmd) throw new UsageError("missing command (create, rollback, list or cleanup)");
  const commands = ["create", "rollback", "list", "cleanup"];
  if (!commands.includes(cmd))
    throw new UsageError(`unknown command "${cmd}" (expected ${commands.join(", ")})`);
  const maxPos = cmd === "rollback" ? 1 : 0;
  if (pos.length > maxPos) throw new UsageError(`unexpected argument "${pos[maxPos]}" for ${cmd}`);
  if (v.limit !== undefined && cmd !== "create")
    throw new UsageError("--limit only applies to create");
  if (v.limit === "") throw new UsageError("--limit needs a group or host name");
  if (v.keep !== undefined && cmd !== "cleanup")
    throw new UsageError("--keep only applies to cleanup");
  if (v.json && cmd !== "list") throw new UsageError("--json only applies to list");
  const o: Opts = {
    baseDir: v["base-dir"] || process.env.ANKLUME_BASE_DIR || ".",
    stateDir: stateDir(v["state-dir"]),
    limit: v.limit,
    jobs: jobsOf(v.jobs),
    json: Boolean(v.json),
    dry: Boolean(v["dry-run"]),
  };
  if (cmd === "create") return create(o);
  if (cmd === "rollback") return rollback(o, pos[0]);
  if (cmd === "list") return list(o);
  return cleanup(o, v.keep);
}

if (import.meta.main) await runMain(main, USAGE);
