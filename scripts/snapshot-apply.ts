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
  --jobs <N>          How many incus calls run at once, 1 to 64 (default 4)
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
import type { InventoryHost } from "../lib/core/inventory.ts";
import { parseKeep, parseRollbackTarget, stateDir } from "../lib/snapshots/naming.ts";
import type { BatchResult } from "../lib/snapshots/ops.ts";
import { cleanup, createPreApply, listPreApply, rollback } from "../lib/snapshots/pre-apply.ts";

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

const where = (h: { instance: string; project: string }) => `${h.instance} (project=${h.project})`;

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
  if (n === null || n < 1 || n > 64) {
    throw new UsageError(`--jobs must be a whole number from 1 to 64, got "${raw}"`);
  }
  return n;
}

async function create(o: Opts): Promise<number> {
  const dry = o.dryRun ? "[dry-run] " : "";
  let p = progress("snapshotting", 0);
  const r = await createPreApply({
    ...o,
    onPlan: (plan) => {
      say(
        `${dry}Pre-apply snapshot ${plan.snap} of ${plan.present.length} instance(s), scope ${plan.scope}:`,
      );
      for (const h of plan.missing)
        say(`  ${paint("yellow", "WARN")} ${where(h)}: not found in Incus, skipping`);
      if (o.dryRun) for (const h of plan.present) say(`  would snapshot ${where(h)}`);
      else {
        p = progress("snapshotting", plan.present.length);
        p.start();
      }
    },
    onDone: (r, done) =>
      p.line(
        r.ok
          ? `  ${paint("green", "OK")} ${where(r.item)}`
          : `  ${paint("yellow", "WARN")} ${where(r.item)}: snapshot failed: ${r.error}`,
        done,
      ),
  });
  if (r.kind === "no-inventory")
    say(
      `${paint("yellow", "WARNING:")} No inventory in ${o.baseDir}/inventory (run make sync); no pre-apply snapshot taken`,
    );
  else if (r.kind === "empty-scope")
    say(
      `${paint("yellow", "WARNING:")} No instance in scope "${r.scope}"; no pre-apply snapshot taken`,
    );
  if (r.kind !== "done") return 0;
  const { plan, ok, failed } = r;
  say(`  ${ok} snapshot(s) created, ${plan.missing.length} skipped (not found), ${failed} failed`);
  if (failed > 0)
    say(
      `${paint("yellow", "WARNING:")} ${failed} snapshot(s) failed: a rollback to ${plan.snap} will not restore those instances`,
    );
  if (r.recorded) say(`  Roll back with: make rollback (or make rollback T=${plan.ts})`);
  else
    say(
      `${paint("yellow", "WARNING:")} nothing was snapshotted, so nothing was recorded for rollback`,
    );
  return 0;
}

async function rollbackCmd(o: Opts, arg: string | undefined): Promise<number> {
  let ts: string | undefined;
  if (arg !== undefined) {
    ts = parseRollbackTarget(arg) ?? undefined;
    if (!ts)
      throw new UsageError(`"${arg}" is not a timestamp YYYYMMDD-HHMMSS (see make rollback-list)`);
  }
  let p = progress("restoring", 0);
  const line = (r: BatchResult<InventoryHost>, done: number) =>
    p.line(
      r.ok
        ? `  ${paint("green", "OK")} ${where(r.item)}`
        : `  ${paint("red", "FAIL")} ${where(r.item)}: ${r.error}`,
      done,
    );
  const r = await rollback({
    ...o,
    ts,
    onPlan: (plan) => {
      say(
        `${o.dryRun ? "[dry-run] " : ""}Rolling back ${plan.todo.length} instance(s) to ${plan.snap}:`,
      );
      for (const h of plan.skipped) say(`  SKIP ${where(h)}: no snapshot ${plan.snap}`);
      p = progress("restoring", plan.todo.length);
      if (!o.dryRun && plan.todo.length > 0) p.start();
    },
    onDone: line,
    onSelf: (h) =>
      say(
        `  ${paint("yellow", "NOTE")} restoring ${where(h)} last: it is the instance this runs in, the session ends here`,
      ),
  });
  if (r.kind === "no-target") {
    say(
      `${paint("red", "error:")} No pre-apply snapshot to roll back to (state in ${o.stateDir}); run make rollback-list to see the snapshots`,
    );
    return 1;
  }
  if (r.kind === "no-inventory") {
    say(
      `${paint("red", "error:")} Cannot roll back to ${r.snap}: no inventory in ${o.baseDir}/inventory; run make sync first`,
    );
    return 1;
  }
  const skipped = r.plan.skipped.length;
  if (r.kind === "nothing") {
    say(`  0 instance(s) restored, ${skipped} skipped (no matching snapshot)`);
    say(
      `${paint("red", "error:")} Nothing was restored: no instance of the inventory has ${r.plan.snap}; run make rollback-list`,
    );
    return 1;
  }
  if (r.kind === "dry-run") {
    for (const h of r.plan.todo) say(`  would restore ${where(h)}`);
    return 0;
  }
  say(
    `  ${r.ok} instance(s) restored, ${skipped} skipped (no matching snapshot)${r.failed ? `, ${r.failed} failed` : ""}`,
  );
  if (r.ok === 0) {
    say(`${paint("red", "error:")} Nothing was restored to ${r.plan.snap}`);
    return 1;
  }
  return r.failed > 0 ? 1 : 0;
}

function list(o: Opts): number {
  const rows = listPreApply(o.stateDir);
  if (o.json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return 0;
  }
  const lines = ["  Pre-apply snapshots:"];
  if (rows.length === 0) lines.push("  (none)");
  for (const r of rows) lines.push(`  ${r.name}${r.latest ? "  <-- latest" : ""}`);
  process.stdout.write(`${lines.join("\n")}\n`);
  return 0;
}

async function cleanupCmd(o: Opts, keepRaw: string | undefined): Promise<number> {
  const keep = keepRaw === undefined ? undefined : parseKeep(keepRaw);
  if (keep === null) throw new UsageError(`--keep must be a whole number >= 0, got "${keepRaw}"`);
  const r = await cleanup({
    ...o,
    keep,
    onFailed: (d, error) =>
      say(
        `  ${paint("yellow", "WARN")} could not delete ${d.name} of ${d.inst.name} (project=${d.inst.project}): ${error}`,
      ),
  });
  if (r.kind === "nothing") {
    say(`  ${r.count} pre-apply snapshot(s), keeping ${r.keep}: nothing to clean up`);
    return 0;
  }
  if (r.kind === "dry-run") {
    for (const name of r.remove) say(`  [dry-run] would delete ${name}`);
    return 0;
  }
  for (const d of r.deleted)
    say(`  ${paint("green", "OK")} Deleted ${d.name} (${d.count} instance(s))`);
  return r.failed.length > 0 ? 1 : 0;
}

interface Opts {
  baseDir: string;
  stateDir: string;
  limit?: string;
  jobs: number;
  json: boolean;
  dryRun: boolean;
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
    dryRun: Boolean(v["dry-run"]),
  };
  if (cmd === "create") return create(o);
  if (cmd === "rollback") return rollbackCmd(o, pos[0]);
  if (cmd === "list") return list(o);
  return cleanupCmd(o, v.keep);
}

if (import.meta.main) await runMain(main, USAGE);
