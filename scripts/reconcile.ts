#!/usr/bin/env bun
// Usage: reconcile.ts apply [--base-dir DIR [--play-hosts H,..] [--limited] [--knobs JSON]]
//                          [--tags T,..] [--skip-tags T,..] [--check] [--json|--ansible] [--context-dir DIR]
//        reconcile.ts interfaces --base-dir DIR --host NAME
//        reconcile.ts speculate --base-dir DIR --out DIR
//        reconcile.ts <kind> [--desired FILE|-] [--check] [--json] [--context-dir DIR]
//
// Bring Incus to the state the generated variables describe. Reads the
// current state with a few `incus ... --format json` calls, computes the
// difference, and runs only the writes needed.
//
// apply        what site.yml's play 1 runs (role incus_reconcile): reads the
//              generated variables of every host from the tree under
//              --base-dir (inventory/, group_vars/, host_vars/), or, without
//              --base-dir, {hosts: {<host>: <its generated variables>},
//              play_hosts, limited, knobs} on stdin; maps them to the desired
//              state of every kind (lib/apply/desired.ts) and reconciles the
//              kinds the tags select, in order. With --json prints
//              {changed, check, kinds, report, warnings, errors}; with
//              --ansible prints {changed, failed, report, errors} and exits 0
//              even when something failed (the role's task fails on `failed`).
// interfaces   print firewall_router_interfaces of one host, read from the
//              generated tree (the firewall VM's NICs: eth0 on its own bridge,
//              then every other bridge, sorted).
// speculate    what the Make apply targets start beside ansible-playbook: the
//              last `apply --ansible` run on this tree again, in check mode;
//              when it changes nothing, leaves in --out the line that run
//              would print, which the role's task then uses instead of
//              starting this process (lib/apply/speculate.ts). Writes nothing
//              to Incus, prints nothing.
// <kind>       one kind from its own desired-state JSON (debugging): projects,
//              networks, profiles, images, firewall, instances, orphans; and
//              `plan`, which takes {<kind>: <desired>, ...} and writes nothing.
//              With --json prints {kind, changed, changes, orphans, warnings, commands}.
//
//   --tags T,..      ansible-playbook's run tags (all, infra or kind names)
//   --skip-tags T,.. ansible-playbook's skipped tags
//   --desired FILE   the input JSON (default "-": standard input)
//   --base-dir DIR   the generated tree (apply, interfaces)
//   --play-hosts H,.. the play's hosts (apply --base-dir; default: every host)
//   --limited        the play runs with --limit (apply --base-dir): no orphan domains
//   --knobs JSON     the role's knobs, as Ansible rendered them (apply --base-dir)
//   --ansible        apply's output for the role's task (see above)
//   --check          compute and show the changes, write nothing (make check)
//   --json           print the result as JSON on stdout
//   --context-dir D  the parent's nesting context (default /etc/anklume)
//   --host NAME      an inventory host (interfaces)
//   --out DIR        where speculate leaves its files (made by the caller; gone: nothing)
//   -h, --help       show this help
//
// Exit: 0 success (changed or not), 1 failure, 2 usage error.
import { readFileSync } from "node:fs";
import process from "node:process";
import { parseVarsInput } from "../lib/apply/desired.ts";
import { notConverged } from "../lib/apply/execute.ts";
import {
  type ApplyResult,
  applyFromVars,
  interfacesFromTree,
  varsInputFromTree,
} from "../lib/apply/from-vars.ts";
import { APPLY_KINDS, planAll, reconcile } from "../lib/apply/live.ts";
import { recordArgs, speculate } from "../lib/apply/speculate.ts";
import { paint, parseCli, runMain, say, topComment, UsageError } from "../lib/core/cli.ts";
import { readTextFile } from "../lib/core/fswrite.ts";

const USAGE = `Usage: reconcile.ts apply|interfaces|<kind> [options] (reconcile.ts --help)
Kinds: projects, networks, profiles, images, firewall, instances, orphans, plan.`;

const KINDS = [...APPLY_KINDS, "plan", "apply", "interfaces", "speculate"] as const;
type Kind = (typeof KINDS)[number];

const OPTIONS = {
  desired: { type: "string", default: "-" },
  check: { type: "boolean", default: false },
  json: { type: "boolean", default: false },
  "context-dir": { type: "string", default: "/etc/anklume" },
  tags: { type: "string", default: "" },
  "skip-tags": { type: "string", default: "" },
  "base-dir": { type: "string" },
  "play-hosts": { type: "string" },
  limited: { type: "boolean", default: false },
  knobs: { type: "string", default: "{}" },
  ansible: { type: "boolean", default: false },
  host: { type: "string" },
  out: { type: "string" },
  help: { type: "boolean", short: "h", default: false },
} as const;

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(argv, OPTIONS);
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
  if (kind === "interfaces") {
    if (!values["base-dir"] || !values.host) {
      throw new UsageError("interfaces needs --base-dir DIR and --host NAME");
    }
    const ifaces = interfacesFromTree(values["base-dir"] as string, values.host as string);
    process.stdout.write(`${JSON.stringify(ifaces)}\n`);
    return 0;
  }
  if (kind === "speculate") {
    const baseDir = values["base-dir"];
    if (!baseDir || !values.out)
      throw new UsageError("speculate needs --base-dir DIR and --out DIR");
    await speculate(baseDir, values.out, async (args) => {
      const recorded = parseCli(args, OPTIONS);
      // Only what the role's task runs, on this very tree.
      if (recorded.positionals.join(" ") !== "apply" || !recorded.values.ansible) return undefined;
      if (recorded.values["base-dir"] !== baseDir || recorded.values.check) return undefined;
      const { input, opts } = fromTree(recorded.values, baseDir);
      const out = await ansibleOutput(() => applyFromVars(input(), { ...opts, check: true }));
      return out.changed || out.failed ? undefined : JSON.stringify(out);
    });
    return 0;
  }
  const contextDir = values["context-dir"] as string;
  const { opts } = fromTree(values, values["base-dir"] ?? ".");
  if (kind === "apply" && values["base-dir"] !== undefined) {
    const { input } = fromTree(values, values["base-dir"]);
    if (values.ansible) {
      if (!opts.check) recordArgs(values["base-dir"], argv);
      return printForAnsible(() => applyFromVars(input(), opts));
    }
    return printApply(await applyFromVars(input(), opts), values.json as boolean, opts.check);
  }
  const text =
    values.desired === "-"
      ? readFileSync(0, "utf8")
      : readTextFile(values.desired as string, "--desired");
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`Cannot parse the desired state of ${kind} as JSON: ${(e as Error).message}`);
  }
  if (kind === "apply") {
    if (values.ansible) return printForAnsible(() => applyFromVars(parseVarsInput(raw), opts));
    return printApply(
      await applyFromVars(parseVarsInput(raw), opts),
      values.json as boolean,
      opts.check,
    );
  }
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
    const last = notConverged(r.failures, kind);
    if (last) say(`${paint("red", "error:")} ${last}`);
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

type Values = ReturnType<typeof parseCli<typeof OPTIONS>>["values"];

/** An apply's options and its input read from the generated tree under `baseDir`. */
function fromTree(values: Values, baseDir: string) {
  const list = (x: unknown) =>
    String(x ?? "")
      .split(",")
      .filter((t) => t !== "");
  const opts = {
    tags: list(values.tags),
    skipTags: list(values["skip-tags"]),
    check: values.check as boolean,
    contextDir: values["context-dir"] as string,
  };
  const input = () =>
    varsInputFromTree(baseDir, {
      playHosts: values["play-hosts"] === undefined ? undefined : list(values["play-hosts"]),
      limited: values.limited as boolean,
      knobs: parseKnobs(values.knobs as string),
    });
  return { input, opts };
}

/** The --knobs JSON: a mapping (a usage error otherwise). */
function parseKnobs(text: string): Record<string, unknown> {
  let knobs: unknown;
  try {
    knobs = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`--knobs must be a JSON mapping: ${(e as Error).message}`);
  }
  if (typeof knobs !== "object" || knobs === null || Array.isArray(knobs)) {
    throw new UsageError("--knobs must be a JSON mapping");
  }
  return knobs as Record<string, unknown>;
}

/**
 * Print an apply's result for the role's task (--ansible): one JSON line
 * {changed, failed, report, errors}, exit 0 even on failure, so that the task
 * (a `debug` of a `pipe` lookup: no module, no process on a host) shows the
 * report and fails, with `errors` as its message, on `failed`. An error
 * thrown before anything ran (invalid variables, no daemon) is a failure too.
 */
async function printForAnsible(apply: () => Promise<ApplyResult>): Promise<number> {
  process.stdout.write(`${JSON.stringify(await ansibleOutput(apply))}\n`);
  return 0;
}

/** The line printForAnsible prints. */
async function ansibleOutput(apply: () => Promise<ApplyResult>) {
  let out: { changed: boolean; failed: boolean; report: unknown; errors?: string[] };
  try {
    const r = await apply();
    out = { changed: r.changed, failed: r.errors.length > 0, report: r.report };
    if (out.failed) {
      const last = notConverged(r.failures, "apply");
      out.errors = last ? [...r.errors, last] : r.errors;
    }
  } catch (e) {
    if (e instanceof UsageError) throw e;
    out = { changed: false, failed: true, report: {}, errors: [(e as Error).message] };
  }
  return out;
}

/** Print an apply's result: JSON on stdout for Ansible, or lines; failures on stderr, exit 1. */
function printApply(r: ApplyResult, json: boolean, check: boolean): number {
  for (const w of r.warnings) say(`${paint("yellow", "warning:")} ${w}`);
  if (r.errors.length > 0) {
    // Ansible shows stderr on failure: keep it readable, stdout empty.
    for (const e of r.errors) say(`${paint("red", "error:")} ${e}`);
    const last = notConverged(r.failures, "apply");
    if (last) say(`${paint("red", "error:")} ${last}`);
    return 1;
  }
  if (json) {
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return 0;
  }
  const verb = check ? "would change" : "changed";
  for (const [kind, k] of Object.entries(r.kinds)) {
    for (const c of k.changes) say(`${paint("yellow", verb)} ${c}`);
    for (const o of k.orphans) {
      say(
        `${paint("yellow", "orphan")} ${o.kind} ${o.project ? `${o.project}/` : ""}${o.name}: ${o.action}`,
      );
    }
    if (k.changes.length === 0) say(`${kind}: ${paint("green", "no change")}`);
  }
  return 0;
}

if (import.meta.main) await runMain(main, USAGE);
