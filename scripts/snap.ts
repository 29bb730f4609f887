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
import { createInterface } from "node:readline";
import { paint, parseCli, runMain, say, topComment, UsageError } from "../lib/core/cli.ts";
import { snapshotNameProblem, userSnapshotName } from "../lib/snapshots/naming.ts";
import {
  currentHostname,
  listInstancesWithSnapshots,
  resolveInstance,
  type SnapInstance,
  snapshotCall,
  snapshotNames,
} from "../lib/snapshots/ops.ts";

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

/** Resolve `<instance|self>` against the one listing. */
function target(all: SnapInstance[], arg: string, project?: string): SnapInstance {
  if (arg !== "self") return resolveInstance(all, arg, project);
  const host = currentHostname();
  try {
    return resolveInstance(all, host, project);
  } catch {
    throw new Error(
      `Cannot use "self": this host's name "${host}" is not an Incus instance in any project; ` +
        "run the command inside an anklume instance that sees the Incus socket, or give the instance name",
    );
  }
}

/** Read one line from stdin (a terminal or a pipe); null at end of input. */
async function askLine(prompt: string): Promise<string | null> {
  process.stderr.write(prompt);
  const rl = createInterface({ input: process.stdin, terminal: false });
  try {
    for await (const line of rl) {
      // A piped answer is not echoed: end the prompt's line ourselves.
      if (!process.stdin.isTTY) process.stderr.write("\n");
      return line;
    }
    if (!process.stdin.isTTY) process.stderr.write("\n");
    return null;
  } finally {
    rl.close();
  }
}

function need(pos: string[], n: number, what: string): void {
  if (pos.length < n) throw new UsageError(`missing ${what}`);
}

function tooMany(pos: string[], max: number): void {
  if (pos.length > max) throw new UsageError(`unexpected argument "${pos[max]}"`);
}

interface Row {
  instance: string;
  project: string;
  snapshot: string | null;
  created: string | null;
}

function rowsOf(insts: SnapInstance[]): Row[] {
  const rows: Row[] = [];
  for (const i of insts) {
    const snaps = i.snapshots ?? [];
    if (snaps.length === 0)
      rows.push({ instance: i.name, project: i.project, snapshot: null, created: null });
    for (const s of snaps) {
      rows.push({
        instance: i.name,
        project: i.project,
        snapshot: s.name,
        created: s.created_at || null,
      });
    }
  }
  return rows;
}

function formatCreated(iso: string | null): string {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime())
    ? iso
    : d
        .toISOString()
        .replace("T", " ")
        .replace(/\.\d+Z$/, " UTC");
}

function printTable(rows: Row[]): void {
  const head = ["INSTANCE", "PROJECT", "SNAPSHOT", "CREATED"];
  const cells = rows.map((r) => [
    r.instance,
    r.project,
    r.snapshot ?? "(no snapshots)",
    formatCreated(r.created),
  ]);
  const widths = head.map((h, c) =>
    Math.max(h.length, ...cells.map((row) => (row[c] ?? "").length)),
  );
  const line = (cols: string[]) =>
    cols
      .map((s, c) => s.padEnd(widths[c] ?? 0))
      .join("  ")
      .trimEnd();
  process.stdout.write(`${[line(head), ...cells.map(line)].join("\n")}\n`);
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

  const all = await listInstancesWithSnapshots();

  if (cmd === "list") {
    const insts = pos[0]
      ? [target(all, pos[0], o.project)]
      : all.filter((i) => !o.project || i.project === o.project);
    insts.sort((a, b) => a.project.localeCompare(b.project) || a.name.localeCompare(b.name));
    const rows = rowsOf(insts);
    if (o.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    else if (rows.length === 0) say("No instances in any project.");
    else printTable(rows);
    return 0;
  }

  const inst = target(all, pos[0] as string, o.project);
  const snap = snapArg as string;
  const have = snapshotNames(inst);
  const label = `${inst.name} (project ${inst.project})`;
  const dry = o["dry-run"] ? "[dry-run] would be: " : "";

  if (cmd === "create") {
    if (have.includes(snap)) {
      say(
        `${paint("red", "error:")} Cannot create snapshot "${snap}" of ${label}: it already exists; ` +
          `choose another name, or delete it first with make snap-delete I=${inst.name} S=${snap}`,
      );
      return 1;
    }
    say(`${dry}Creating snapshot "${snap}" of ${label}...`);
    if (o["dry-run"]) return 0;
    await snapshotCall("create", inst.name, snap, inst.project);
    say(`Done: ${inst.name}/${snap}`);
    return 0;
  }

  if (!have.includes(snap)) {
    say(
      `${paint("red", "error:")} Cannot ${cmd} snapshot "${snap}" of ${label}: no such snapshot; ` +
        `available: ${have.length ? have.join(", ") : "(none)"}; see make snap-list I=${inst.name}`,
    );
    return 1;
  }

  if (cmd === "delete") {
    say(`${dry}Deleting snapshot "${snap}" of ${label}...`);
    if (o["dry-run"]) return 0;
    await snapshotCall("delete", inst.name, snap, inst.project);
    say("Done.");
    return 0;
  }

  // restore
  let self: SnapInstance | null = null;
  try {
    self = resolveInstance(all, currentHostname());
  } catch {
    self = null;
  }
  const isSelf = self !== null && self.name === inst.name && self.project === inst.project;
  if (isSelf && !o.force && !o["dry-run"]) {
    say(paint("yellow", `WARNING: ${inst.name} is the instance this command runs in.`));
    say(`Restoring it to "${snap}" stops everything running here, including this session;`);
    say("whatever changed since that snapshot is lost.");
    const answer = await askLine("Type 'yes' to confirm: ");
    if (answer?.trim() !== "yes") {
      say("Aborted.");
      return 1;
    }
  }
  say(`${dry}Restoring ${label} to snapshot "${snap}"...`);
  if (o["dry-run"]) return 0;
  await snapshotCall("restore", inst.name, snap, inst.project);
  say("Done.");
  return 0;
}

if (import.meta.main) await runMain(main, USAGE);
