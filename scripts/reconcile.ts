#!/usr/bin/env bun
// Usage: reconcile.ts <kind> [--desired FILE|-] [--check] [--json] [--context-dir DIR]
//
// Bring Incus to the desired state of one kind of resource, as the
// infrastructure roles of site.yml describe it (a JSON document built from
// the generated variables). Reads the current state with a few
// `incus ... list --format json` calls, computes the difference, and runs
// only the writes needed. Prints what changed; with --json, a JSON result
// {kind, changed, changes, orphans, warnings, commands} alone on stdout.
//
// Kinds: projects, networks, profiles, images, firewall, instances, orphans;
// and `plan`, which takes {<kind>: <desired>, ...}, plans every kind at once
// and writes nothing: site.yml runs it first, so that on a no-op apply every
// role's reconcile task is skipped (one process instead of six).
//
//   --desired FILE   the desired-state JSON (default "-": standard input)
//   --check          compute and show the changes, write nothing (make check)
//   --json           print the result as JSON on stdout
//   --context-dir D  the parent's nesting context (default /etc/anklume)
//   -h, --help       show this help
//
// Exit: 0 success (changed or not), 1 failure, 2 usage error.
import { readFileSync } from "node:fs";
import process from "node:process";
import { APPLY_KINDS, planAll, reconcile } from "../lib/apply/live.ts";
import { paint, parseCli, runMain, say, topComment, UsageError } from "../lib/core/cli.ts";

const USAGE = `Usage: reconcile.ts <kind> [--desired FILE|-] [--check] [--json] [--context-dir DIR]
Kinds: projects, networks, profiles, images, firewall, instances, orphans, plan.`;

const KINDS = [...APPLY_KINDS, "plan"] as const;
type Kind = (typeof KINDS)[number];

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(argv, {
    desired: { type: "string", default: "-" },
    check: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    "context-dir": { type: "string", default: "/etc/anklume" },
    help: { type: "boolean", short: "h", default: false },
  });
  if (values.help) {
    process.stdout.write(`${topComment(import.meta.url)}\n`);
    return 0;
  }
  const kind = positionals[0] as Kind | undefined;
  if (!kind || !KINDS.includes(kind) || positionals.length > 1) {
    throw new UsageError(
      `expected one kind among ${KINDS.join(", ")}, got ${JSON.stringify(positionals.join(" "))}`,
    );
  }
  const text =
    values.desired === "-"
      ? readFileSync(0, "utf8")
      : readFileSync(values.desired as string, "utf8");
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`Cannot parse the desired state of ${kind} as JSON: ${(e as Error).message}`);
  }
  const contextDir = values["context-dir"] as string;
  if (kind === "plan") {
    const all = await planAll(raw, contextDir);
    if (values.json) process.stdout.write(`${JSON.stringify(all)}\n`);
    else {
      for (const [k, r] of Object.entries(all.kinds)) {
        say(
          `${k}: ${r.changed ? paint("yellow", `${r.changes.length} change(s)`) : paint("green", "no change")}`,
        );
        for (const c of r.changes) say(`  ${c}`);
      }
    }
    return 0;
  }
  const r = await reconcile(kind, { [kind]: raw }, { check: values.check, contextDir });
  for (const w of r.warnings) say(`${paint("yellow", "warning:")} ${w}`);
  if (r.errors.length > 0) {
    // Ansible shows stderr on failure: keep it readable, stdout empty.
    for (const c of r.changes) say(`planned: ${c}`);
    for (const e of r.errors) say(`${paint("red", "error:")} ${e}`);
    const machines = [...new Set(r.failures.map((f) => f.machine).filter(Boolean))];
    if (machines.length > 0) {
      say(
        `${paint("red", "error:")} ${kind}: ${machines.length} machine(s) not converged: ${machines.join(", ")}; the others were converged`,
      );
    }
    return 1;
  }
  if (values.json) {
    const { changed, changes, orphans, warnings, commands } = r;
    const result = { kind, check: values.check, changed, changes, orphans, warnings, commands };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else {
    const verb = values.check ? "would change" : "changed";
    for (const c of r.changes) say(`${paint("yellow", verb)} ${c}`);
    for (const o of r.orphans) {
      say(
        `${paint("yellow", "orphan")} ${o.kind} ${o.project ? `${o.project}/` : ""}${o.name}: ${o.action}`,
      );
    }
    if (r.changes.length === 0) say(`${kind}: ${paint("green", "no change")}`);
  }
  return 0;
}

if (import.meta.main) await runMain(main, USAGE);
