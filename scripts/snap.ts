#!/usr/bin/env bun
/*
Usage: snap.ts <command> [options] [arguments]

Imperative snapshots of one Incus instance (make snap, snap-restore, snap-list, snap-delete).

Commands:
  create  <instance|self> [name]   Take a snapshot (default name snap-YYYYMMDD-HHMMSS)
  restore <instance|self> <name>   Restore a snapshot (asks first when it is this very instance)
  list    [instance|self]          List snapshots (of every instance when omitted)
  delete  <instance|self> <name>   Delete a snapshot

<instance> is the real Incus name (001-pro-dev) or the machine name from
infra.yml (pro-dev); its project is found in every Incus project. `self` is
this host's name (the instance you run in).

Options:
  --project <p>   Only look for the instance in this project
  --force         restore: do not ask, even when restoring the instance you run in
  --json          list: print a JSON array on stdout
  --dry-run       Say what would be done, change nothing
  -h, --help      Show this help

Exit status: 0 success, 1 failure or aborted confirmation, 2 usage error.
*/
import process from "node:process";
import { askLine, paint, parseCli, runMain, say, topComment, UsageError } from "../lib/core/cli.ts";
import { snapshotNameProblem, userSnapshotName } from "../lib/snapshots/naming.ts";
import type { SnapInstance } from "../lib/snapshots/ops.ts";
import {
  createSnapshot,
  deleteSnapshot,
  listSnapshots,
  restoreSnapshot,
  type SnapResult,
  snapshotTable,
} from "../lib/snapshots/user.ts";

const USAGE = `Usage: snap.ts <create|restore|list|delete> [options] [<instance|self>] [name]
Commands: create <instance|self> [name], restore <instance|self> <name>, list [instance|self], delete <instance|self> <name>
Options: --project <p>, --force, --json, --dry-run, -h/--help`;

const HELP = topComment(import.meta.url);

const OPTIONS = {
  project: { type: "string" },
  force: { type: "boolean" },
  json: { type: "boolean" },
  "dry-run": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

function need(pos: string[], n: number, what: string): void {
  if (pos.length < n) throw new UsageError(`missing ${what}`);
}

function tooMany(pos: string[], max: number): void {
  if (pos.length > max) throw new UsageError(`unexpected argument "${pos[max]}"`);
}

const label = (i: SnapInstance) => `${i.name} (project ${i.project})`;

/** Restoring the instance this runs in: say what it costs, then ask. */
async function confirmSelf(inst: SnapInstance, snap: string): Promise<boolean> {
  say(paint("yellow", `WARNING: ${inst.name} is the instance this command runs in.`));
  say(`Restoring it to "${snap}" stops everything running here, including this session;`);
  say("whatever changed since that snapshot is lost.");
  const answer = await askLine("Type 'yes' to confirm: ");
  return answer?.trim() === "yes";
}

/** The message and exit code of a refused operation, or null when it went ahead. */
function refused(cmd: string, snap: string, r: SnapResult): number | null {
  const { inst, available } = r;
  if (r.status === "exists") {
    say(
      `${paint("red", "error:")} Cannot create snapshot "${snap}" of ${label(inst)}: it already exists; ` +
        `choose another name, or delete it first with make snap-delete I=${inst.name} S=${snap}`,
    );
    return 1;
  }
  if (r.status === "missing") {
    say(
      `${paint("red", "error:")} Cannot ${cmd} snapshot "${snap}" of ${label(inst)}: no such snapshot; ` +
        `available: ${available.length ? available.join(", ") : "(none)"}; see make snap-list I=${inst.name}`,
    );
    return 1;
  }
  if (r.status === "aborted") {
    say("Aborted.");
    return 1;
  }
  return null;
}

/** Entry point: returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const { values: o, positionals } = parseCli(argv, OPTIONS);
  if (o.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const [cmd, ...pos] = positionals;
  if (!cmd) throw new UsageError("missing command (create, restore, list or delete)");
  if (!["create", "restore", "list", "delete"].includes(cmd)) {
    throw new UsageError(`unknown command "${cmd}" (expected create, restore, list or delete)`);
  }
  if (cmd === "list") tooMany(pos, 1);
  else {
    need(
      pos,
      cmd === "create" ? 1 : 2,
      cmd === "create" ? "<instance|self>" : "<instance|self> and <snapshot name>",
    );
    tooMany(pos, 2);
  }
  const snapArg = cmd === "create" ? (pos[1] ?? userSnapshotName()) : pos[1];
  if (snapArg !== undefined) {
    const problem = snapshotNameProblem(snapArg);
    if (problem) throw new UsageError(problem);
  }
  if (o.force && cmd !== "restore") throw new UsageError("--force only applies to restore");
  if (o.json && cmd !== "list") throw new UsageError("--json only applies to list");

  const project = o.project;
  if (cmd === "list") {
    const rows = await listSnapshots(pos[0], { project });
    if (o.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    else if (rows.length === 0) say("No instances in any project.");
    else process.stdout.write(`${snapshotTable(rows)}\n`);
    return 0;
  }

  const target = pos[0] as string;
  const snap = snapArg as string;
  const dryRun = Boolean(o["dry-run"]);
  const dry = dryRun ? "[dry-run] would be: " : "";
  let r: SnapResult;
  if (cmd === "create") {
    r = await createSnapshot(target, snap, {
      project,
      dryRun,
      onStart: (i) => say(`${dry}Creating snapshot "${snap}" of ${label(i)}...`),
    });
  } else if (cmd === "delete") {
    r = await deleteSnapshot(target, snap, {
      project,
      dryRun,
      onStart: (i) => say(`${dry}Deleting snapshot "${snap}" of ${label(i)}...`),
    });
  } else {
    r = await restoreSnapshot(target, snap, {
      project,
      dryRun,
      force: o.force,
      confirm: (i) => confirmSelf(i, snap),
      onStart: (i) => say(`${dry}Restoring ${label(i)} to snapshot "${snap}"...`),
    });
  }
  const code = refused(cmd, snap, r);
  if (code !== null) return code;
  if (r.status === "done") say(cmd === "create" ? `Done: ${r.inst.name}/${snap}` : "Done.");
  return 0;
}

if (import.meta.main) await runMain(main, USAGE);
