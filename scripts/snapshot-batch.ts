#!/usr/bin/env bun
/*
Usage: snapshot-batch.ts <create|restore|delete|list> [name] [options]

One snapshot name over every instance of the inventory, or of one domain
(v1's make snapshot, snapshot-domain, restore, restore-domain,
snapshot-delete, snapshot-list). Instances are those of the generated tree
(inventory/, host_vars/), each in its real Incus project.

Commands:
  create  [name]   Snapshot every instance (default name YYYYMMDDTHHMMSS, as v1);
                   an instance that already has the name is skipped
  restore <name>   Restore every instance to it; an instance without it fails
                   (the others are still restored); the instance this runs in goes last
  delete  <name>   Delete it wherever it exists
  list             A table of the snapshots of every selected instance

Options:
  -l, --limit <D>   Only this domain (or host, or Ansible pattern: a,b  pro-*  !x)
  --jobs <n>        Instances at a time (default 4)
  --base-dir <dir>  Root of the generated tree (default: $ANKLUME_BASE_DIR, else .)
  --json            list: print a JSON array on stdout
  --dry-run         Say what would be done, change nothing
  -h, --help        Show this help

Exit status: 0 success, 1 when any instance failed (each one is named), 2 usage error.
*/
import process from "node:process";
import { paint, parseCli, runMain, say, topComment, UsageError } from "../lib/core/cli.ts";
import {
  type BatchAction,
  type BatchOutcome,
  batchList,
  batchSnapshotName,
  runBatch,
} from "../lib/lifecycle/batch.ts";
import { snapshotNameProblem } from "../lib/snapshots/naming.ts";
import { snapshotTable } from "../lib/snapshots/user.ts";

const USAGE = `Usage: snapshot-batch.ts <create|restore|delete|list> [name] [--limit D] [--jobs N] [--json] [--dry-run]`;
const HELP = topComment(import.meta.url);

const OPTIONS = {
  limit: { type: "string", short: "l" },
  jobs: { type: "string" },
  "base-dir": { type: "string" },
  json: { type: "boolean" },
  "dry-run": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

const VERB: Record<BatchAction, [string, string]> = {
  create: ["Snapshotting", "snapshot(s) created"],
  restore: ["Restoring", "instance(s) restored"],
  delete: ["Deleting snapshot of", "snapshot(s) deleted"],
};

/** Entry point: returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const { values: o, positionals } = parseCli(argv, OPTIONS);
  if (o.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const [cmd, ...pos] = positionals;
  if (!cmd) throw new UsageError("missing command (create, restore, delete or list)");
  if (!["create", "restore", "delete", "list"].includes(cmd)) {
    throw new UsageError(`unknown command "${cmd}" (expected create, restore, delete or list)`);
  }
  const max = cmd === "list" ? 0 : 1;
  if (pos.length > max) throw new UsageError(`unexpected argument "${pos[max]}"`);
  if ((cmd === "restore" || cmd === "delete") && pos.length === 0) {
    throw new UsageError(
      `${cmd} needs a snapshot name (make ${cmd === "restore" ? "restore" : "snapshot-delete"} NAME=<snapshot>)`,
    );
  }
  if (o.json && cmd !== "list") throw new UsageError("--json only applies to list");
  let jobs = 4;
  if (o.jobs !== undefined) {
    if (!/^\d+$/.test(o.jobs) || Number(o.jobs) < 1) {
      throw new UsageError(`--jobs must be an integer >= 1, got "${o.jobs}"`);
    }
    jobs = Number(o.jobs);
  }
  const baseDir = o["base-dir"] ?? process.env.ANKLUME_BASE_DIR ?? ".";
  const limit = o.limit;

  if (cmd === "list") {
    const { rows, missing } = await batchList(baseDir, limit);
    if (o.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    else if (rows.length > 0) process.stdout.write(`${snapshotTable(rows)}\n`);
    for (const h of missing) say(`  ${h.instance} (project ${h.project}): not in Incus`);
    if (rows.length === 0 && missing.length === 0) say("No instances selected.");
    return 0;
  }

  const action = cmd as BatchAction;
  const name = pos[0] ?? batchSnapshotName();
  const problem = snapshotNameProblem(name);
  if (problem) throw new UsageError(problem);
  const dryRun = Boolean(o["dry-run"]);
  const [verb, summary] = VERB[action];
  say(`${dryRun ? "[dry-run] " : ""}${verb} "${name}"${limit ? ` (limit ${limit})` : ""}...`);
  const line = (r: BatchOutcome) => {
    const who = `${r.item.instance} (project=${r.item.project})`;
    if (r.status === "done") say(`  OK ${who}`);
    else if (r.status === "dry-run") say(`  [dry-run] would ${action} ${who}`);
    else if (r.status === "skipped") say(`  SKIP ${who}: ${r.reason}`);
    else say(`  ${paint("red", "FAILED")} ${who}: ${r.reason}`);
  };
  const out = await runBatch(action, name, {
    baseDir,
    limit,
    jobs,
    dryRun,
    onOutcome: line,
    onSelf: (i) =>
      say(
        `  note: ${i.instance} is the instance this runs in; restoring it last ends this session`,
      ),
  });
  const n = (s: BatchOutcome["status"]) => out.filter((r) => r.status === s).length;
  const failed = n("failed");
  say(
    dryRun
      ? `  [dry-run] ${n("dry-run")} would change, ${n("skipped")} skipped, ${failed} would fail`
      : `  ${n("done")} ${summary}, ${n("skipped")} skipped, ${failed} failed`,
  );
  if (out.length === 0) say("  (no instances selected)");
  if (failed > 0) {
    const names = out.filter((r) => r.status === "failed").map((r) => r.item.instance);
    say(`${paint("red", "error:")} ${verb} "${name}" failed on ${names.join(", ")}`);
    return 1;
  }
  return 0;
}

if (import.meta.main) await runMain(main, USAGE);
