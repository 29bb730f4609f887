#!/usr/bin/env bun
/*
Usage: flush.ts [--force] [--dry-run] [--base-dir <dir>] [--infra-id <id>] [--json]

Destroy what anklume owns for this infra (make flush): every instance,
image, custom volume and profile of the Incus projects marked with its id
(user.anklume.infra; protection lifted first), its marked profiles elsewhere,
its projects and its bridges; then the generated files of inventory/,
group_vars/ and host_vars/ (user content outside the managed blocks is
kept). infra.yml, roles, scripts, docs and every Incus object not marked
with this infra's id are kept.

The infra's id is read from the generated tree (nesting prefix + project_name),
so run it where make sync wrote it; without a tree there is nothing to flush
(flush deletes the tree last, only when every Incus deletion succeeded).

On a production host (absolute_level 0 in /etc/anklume, or no such file, and
yolo not true) it refuses without --force. Elsewhere it lists what it will
destroy and asks `Type 'yes' to confirm:` unless --force is given.

Options:
  --force          Do not refuse on a production host, do not ask
  --dry-run        List what would be destroyed, destroy nothing
  --base-dir <d>   Root of the generated tree (default: $ANKLUME_BASE_DIR, else .)
  --infra-id <id>  Flush this infra id instead of the one the tree names
  --json           Print the result as JSON on stdout
  -h, --help       Show this help

Exit status: 0 success (or nothing to flush), 1 failure, refusal or aborted
confirmation, 2 usage error.
*/
import process from "node:process";
import { askLine, paint, parseCli, runMain, say, topComment, UsageError } from "../lib/core/cli.ts";
import { contextDir, readParentContext } from "../lib/core/nesting.ts";
import { incusAvailable } from "../lib/incus/client.ts";
import { countByKind, productionRefusal } from "../lib/lifecycle/flush.ts";
import { flush, infraIdFromTree, type StepResult } from "../lib/lifecycle/flush-run.ts";

const USAGE = "Usage: flush.ts [--force] [--dry-run] [--base-dir <dir>] [--infra-id <id>] [--json]";
const HELP = topComment(import.meta.url);

const OPTIONS = {
  force: { type: "boolean" },
  "dry-run": { type: "boolean" },
  "base-dir": { type: "string" },
  "infra-id": { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** Entry point: returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const { values: o, positionals } = parseCli(argv, OPTIONS, false);
  if (o.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (o["infra-id"] === "") throw new UsageError("--infra-id needs a value");
  const baseDir = o["base-dir"] ?? process.env.ANKLUME_BASE_DIR ?? ".";
  const dryRun = Boolean(o["dry-run"]);
  const force = Boolean(o.force);

  const dir = contextDir();
  const refusal = dryRun ? null : productionRefusal(readParentContext(dir), force, dir);
  if (refusal) {
    say(`${paint("red", "error:")} ${refusal}`);
    return 1;
  }
  if (!(await incusAvailable())) {
    say(
      `${paint("red", "error:")} Cannot flush: the Incus daemon does not answer; start it (make dev-incus) and run make flush again`,
    );
    return 1;
  }
  const id = o["infra-id"] ?? infraIdFromTree(baseDir);
  if (id === null) {
    // Flush removes the tree last, only once Incus is clean: no tree, nothing of ours left.
    say(
      `Nothing to flush (no generated inventory under ${baseDir}/inventory, so no infra to name). ` +
        "If Incus still holds this infra's objects, run make sync, then make flush again (or give --infra-id).",
    );
    return 0;
  }

  const dry = dryRun ? "[dry-run] would destroy" : "destroyed";
  const line = (r: StepResult) =>
    r.ok
      ? say(`  ${dry} ${r.step.label}`)
      : say(`  ${paint("red", "FAILED")} ${r.step.label}: ${r.error}`);

  if (!force && !dryRun) {
    const preview = await flush(id, baseDir, { dryRun: true });
    const n = preview.steps.length;
    const files = preview.tree.filter((t) => t.action !== "keep").length;
    if (n + files === 0) {
      say("Nothing to flush (no anklume resources found).");
      return 0;
    }
    say(`make flush will destroy, for infra "${id}":`);
    for (const r of preview.steps) say(`  ${r.step.label}`);
    if (files > 0) say(`  ${files} generated file(s) under inventory/, group_vars/, host_vars/`);
    const answer = await askLine("Type 'yes' to confirm: ");
    if (answer?.trim() !== "yes") {
      say("Aborted.");
      return 1;
    }
  }

  say(`${dryRun ? "[dry-run] " : ""}Flushing infra "${id}"...`);
  const r = await flush(id, baseDir, { dryRun, onStep: line });
  const done = r.steps.filter((s) => s.ok);
  const failed = r.steps.filter((s) => !s.ok);
  let files = 0;
  if (!r.treeKept) {
    for (const t of r.tree) {
      if (t.action === "delete") {
        files++;
        say(`  ${dryRun ? "[dry-run] would delete" : "deleted"} ${t.path}`);
      } else if (t.action === "strip") {
        files++;
        say(
          `  ${dryRun ? "[dry-run] would remove" : "removed"} the managed block of ${t.path} (your variables in it are kept)`,
        );
      } else say(`  kept ${t.path} (${t.reason})`);
    }
    for (const d of r.dirs) say(`  removed empty folder ${d}`);
  }
  if (o.json) {
    process.stdout.write(
      `${JSON.stringify(
        {
          infra_id: id,
          dry_run: dryRun,
          destroyed: done.map((s) => s.step.label),
          failed: failed.map((s) => ({ what: s.step.label, error: s.error })),
          files: r.treeKept ? [] : r.tree.map((t) => ({ path: t.path, action: t.action })),
        },
        null,
        2,
      )}\n`,
    );
  }
  if (failed.length > 0) {
    say(
      `${paint("red", "Flush incomplete:")} ${done.length} resource(s) destroyed, ${failed.length} failed; ` +
        "the generated tree is kept so that make flush can run again once the cause is fixed",
    );
    return 1;
  }
  const total = done.length + files;
  if (total === 0) {
    say("Nothing to flush (no anklume resources found).");
    return 0;
  }
  const what = [countByKind(done.map((s) => s.step)), files ? `${files} generated file(s)` : ""]
    .filter(Boolean)
    .join(", ");
  say(
    dryRun
      ? `Dry run: ${total} resource(s) would be destroyed (${what}).`
      : `Flush complete: ${total} resources destroyed (${what}). Rebuild with: make sync && make apply`,
  );
  return 0;
}

if (import.meta.main) await runMain(main, USAGE);
