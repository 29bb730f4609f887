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
import * as v from "valibot";
import { readContext } from "../lib/apply/context.ts";
import {
  type DesiredInstance,
  InstancesDesiredSchema,
  type Plan,
  planInstances,
} from "../lib/apply/instances.ts";
import {
  DomainOrphansDesiredSchema,
  FirewallDesiredSchema,
  ImagesDesiredSchema,
  NetworksDesiredSchema,
  ProfilesDesiredSchema,
  ProjectsDesiredSchema,
  planDomainOrphans,
  planFirewall,
  planImages,
  planNetworks,
  planProfiles,
  planProjects,
} from "../lib/apply/kinds.ts";
import type { NestingContext, Step } from "../lib/apply/reconcile.ts";
import { batches, splitImageRef } from "../lib/apply/reconcile.ts";
import { paint, parseCli, runMain, say, UsageError } from "../lib/core/cli.ts";
import { incusRaw, incusRun } from "../lib/incus/client.ts";
import {
  driverRunsVms,
  type IncusInstance as Instance,
  listImages,
  listInstances,
  listNetworks,
  listProfiles,
  listProjects,
  listVolumes,
  serverDriver,
} from "../lib/incus/objects.ts";

const USAGE = `Usage: reconcile.ts <kind> [--desired FILE|-] [--check] [--json] [--context-dir DIR]
Kinds: projects, networks, profiles, images, firewall, instances, orphans, plan.`;

const KINDS = [
  "projects",
  "networks",
  "profiles",
  "images",
  "firewall",
  "instances",
  "orphans",
  "plan",
] as const;
type Kind = (typeof KINDS)[number];

function parseDesired<S extends v.GenericSchema>(
  schema: S,
  raw: unknown,
  kind: string,
): v.InferOutput<S> {
  const r = v.safeParse(schema, raw);
  if (r.success) return r.output;
  const issue = r.issues[0];
  const where = issue.path?.map((p) => String(p.key)).join(".") ?? "(root)";
  throw new Error(
    `Cannot reconcile ${kind}: the desired state is invalid at ${where}: ${issue.message}; check the generated variables (make sync)`,
  );
}

/** Compute the plan for one kind from the desired JSON and the live daemon. */
export async function plan(kind: Kind, raw: unknown, contextDir: string): Promise<Plan> {
  const autoCleanup = Boolean((raw as { auto_cleanup?: boolean })?.auto_cleanup);
  switch (kind) {
    case "projects":
      return planProjects(parseDesired(ProjectsDesiredSchema, raw, kind), await listProjects());
    case "networks":
      return planNetworks(parseDesired(NetworksDesiredSchema, raw, kind), await listNetworks());
    case "profiles": {
      const want = parseDesired(ProfilesDesiredSchema, raw, kind);
      if (want.domains.length === 0) return { steps: [], changes: [], orphans: [], warnings: [] };
      return planProfiles(want, await listProfiles(), autoCleanup);
    }
    case "images": {
      const want = parseDesired(ImagesDesiredSchema, raw, kind);
      if (want.images.length === 0) return { steps: [], changes: [], orphans: [], warnings: [] };
      return planImages(want, await listImages());
    }
    case "firewall": {
      const want = parseDesired(FirewallDesiredSchema, raw, kind);
      return planFirewall(want, await listProfiles(want.project));
    }
    case "instances":
      return planInstancesLive(parseDesired(InstancesDesiredSchema, raw, kind), contextDir);
    case "orphans":
      return planOrphanDomains(parseDesired(DomainOrphansDesiredSchema, raw, kind));
    case "plan":
      throw new UsageError("plan is not a kind of resource");
  }
}

/** Plan every kind present in `raw` (read-only, in parallel). */
export async function planAll(raw: unknown, contextDir: string) {
  if (typeof raw !== "object" || raw === null) {
    throw new Error("Cannot plan: the desired state must be a mapping of kind to desired state");
  }
  const kinds = Object.keys(raw).filter(
    (k): k is Kind => KINDS.includes(k as Kind) && k !== "plan",
  );
  const plans = await Promise.all(
    kinds.map((k) => plan(k, (raw as Record<string, unknown>)[k], contextDir)),
  );
  const out: Record<
    string,
    { changed: boolean; changes: string[]; orphans: unknown[]; warnings: string[] }
  > = {};
  kinds.forEach((k, i) => {
    const p = plans[i] as Plan;
    out[k] = {
      changed: p.steps.length > 0,
      changes: p.changes,
      orphans: p.orphans,
      warnings: p.warnings,
    };
  });
  return {
    kind: "plan",
    check: true,
    changed: Object.values(out).some((k) => k.changed),
    kinds: out,
  };
}

/** Projects and bridges of removed domains; instances are read only when such a project exists. */
async function planOrphanDomains(
  want: v.InferOutput<typeof DomainOrphansDesiredSchema>,
  known?: Instance[],
): Promise<Plan> {
  const [projects, networks] = await Promise.all([listProjects(), listNetworks()]);
  const orphanProjects = projects.filter(
    (p) => p.config["user.anklume.infra"] === want.infra && !want.projects.includes(p.name),
  );
  const needMore = orphanProjects.length > 0;
  const [instances, images, profiles] = needMore
    ? await Promise.all([known ?? listInstances(), listImages(), listProfiles()])
    : [[], [], []];
  return planDomainOrphans(want, { projects, networks, instances, images, profiles });
}

async function planInstancesLive(
  want: v.InferOutput<typeof InstancesDesiredSchema>,
  contextDir: string,
): Promise<Plan> {
  const current = await listInstances();
  const existing = new Set(current.map((i) => `${i.project}/${i.name}`));
  const skipped: string[] = [];
  if (want.instances.some((d) => d.type === "vm" && !existing.has(`${d.project}/${d.name}`))) {
    // A host without KVM (Incus driver "lxc" only) cannot create VMs: skip them
    // with a warning instead of failing the whole apply.
    const driver = await serverDriver();
    if (!driverRunsVms(driver)) {
      want = {
        ...want,
        instances: want.instances.filter((d) => {
          const skip = d.type === "vm" && !existing.has(`${d.project}/${d.name}`);
          if (skip) {
            skipped.push(
              `${d.project}/${d.name}: VM not created: this Incus host cannot run virtual machines (driver "${driver}": no KVM); run it on a host with KVM, or set type: lxc`,
            );
          }
          return !skip;
        }),
      };
    }
  }
  const creating = want.instances.filter((d) => !existing.has(`${d.project}/${d.name}`));
  const images = creating.length > 0 ? await listImages() : [];
  const imageFor = (d: DesiredInstance) => {
    const { remote, alias } = splitImageRef(d.image);
    if (!remote) return alias;
    const cached = images.some(
      (i) => i.project === d.project && i.aliases.some((a) => a.name === alias),
    );
    return cached ? alias : d.image;
  };
  const pools = new Set<string>();
  for (const d of want.instances) {
    for (const spec of Object.values(d.storage_volumes ?? {}))
      pools.add(spec?.pool ?? want.default_pool ?? "default");
  }
  const volumes = new Map<string, Record<string, string>>();
  for (const pool of pools) {
    const vols = await listVolumes(pool);
    for (const vol of vols)
      if (vol.type === "custom") volumes.set(`${vol.project}/${pool}/${vol.name}`, vol.config);
  }
  const parent: NestingContext = readContext(contextDir);
  const plan = planInstances(want, current, parent, imageFor, volumes);
  plan.warnings.push(...skipped);
  // Orphan projects and bridges (removed domains) in the same process: one
  // Ansible task and one process fewer per apply.
  if (want.orphan_domains) {
    const od = await planOrphanDomains(
      parseDesired(DomainOrphansDesiredSchema, want.orphan_domains, "orphan domains"),
      current,
    );
    plan.steps.push(...od.steps);
    plan.changes.push(...od.changes);
    plan.orphans.push(...od.orphans);
    plan.warnings.push(...od.warnings);
  }
  return plan;
}

async function waitAgent(
  name: string,
  project: string,
  retries: number,
  delayS: number,
): Promise<void> {
  for (let i = 0; i < retries; i++) {
    const r = await incusRaw(["exec", name, "--project", project, "--", "true"], {
      timeout: "30s",
    });
    if (r.exitCode === 0) return;
    await new Promise((res) => setTimeout(res, delayS * 1000));
  }
  throw new Error(
    `Cannot reach the agent of VM "${project}/${name}" after ${retries} tries; check \`incus info ${name} --project ${project}\``,
  );
}

interface Knobs {
  vm_agent_retries?: number;
  vm_agent_delay?: number;
  timeout?: number;
  parallel?: number;
}

/** Run one step; return an error message, or null when it succeeded (or was tolerated). */
async function runStep(s: Step, knobs: Knobs): Promise<string | null> {
  try {
    if (s.waitAgent) {
      await waitAgent(
        s.waitAgent.name,
        s.waitAgent.project,
        knobs.vm_agent_retries ?? 30,
        knobs.vm_agent_delay ?? 2,
      );
    } else if (s.args) {
      await incusRun(s.args, { timeout: `${knobs.timeout ?? 600}s` });
    }
    return null;
  } catch (e) {
    const msg = (e as Error).message;
    // Another apply created it meanwhile (v1 tolerated this race too): the next run reconciles it.
    if (s.args?.[1] === "create" && /already exists/.test(msg)) {
      say(
        `${paint("yellow", "warning:")} ${s.desc}: already exists (created concurrently); re-run apply to reconcile it`,
      );
      return null;
    }
    if (s.args?.[0] === "image" && s.args[1] === "copy" && s.args[2]?.includes(":")) {
      return `Cannot download image "${s.args[2]}": ${msg}. No image server is reachable? Use a local image: make apply-infra OS_IMAGE=anklume-busybox (or set os_image in infra.yml)`;
    }
    return `Step "${s.desc}" failed: ${msg}`;
  }
}

/**
 * Run the plan. The steps of one instance run in order; different instances
 * run side by side (at most `parallel`, default 4); a failed step stops its
 * own instance only, and an ungrouped failure stops everything after it.
 * Returns the failure messages.
 */
export async function execute(steps: Step[], raw: unknown): Promise<string[]> {
  const knobs = (raw ?? {}) as Knobs;
  const errors: string[] = [];
  for (const b of batches(steps)) {
    if ("step" in b) {
      const err = await runStep(b.step, knobs);
      if (err) {
        errors.push(err);
        break;
      }
      continue;
    }
    const queue = [...b.groups];
    const worker = async () => {
      for (let g = queue.shift(); g; g = queue.shift()) {
        for (const s of g) {
          const err = await runStep(s, knobs);
          if (err) {
            errors.push(err);
            break;
          }
        }
      }
    };
    const n = Math.max(1, Math.min(knobs.parallel ?? 4, queue.length));
    await Promise.all(Array.from({ length: n }, worker));
  }
  return errors;
}

/** The leading comment block of this file, without the comment markers. */
function helpText(): string {
  const lines = readFileSync(new URL(import.meta.url), "utf8")
    .split("\n")
    .slice(1);
  const end = lines.findIndex((l) => !l.startsWith("//"));
  return `${lines
    .slice(0, end)
    .map((l) => l.replace(/^\/\/ ?/, ""))
    .join("\n")}\n`;
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(argv, {
    desired: { type: "string", default: "-" },
    check: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    "context-dir": { type: "string", default: "/etc/anklume" },
    help: { type: "boolean", short: "h", default: false },
  });
  if (values.help) {
    process.stdout.write(helpText());
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
  if (kind === "plan") {
    const all = await planAll(raw, values["context-dir"] as string);
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
  const p = await plan(kind, raw, values["context-dir"] as string);
  const result = {
    kind,
    check: values.check,
    changed: p.steps.length > 0,
    changes: p.changes,
    orphans: p.orphans,
    warnings: p.warnings,
    commands: p.steps.map((s) => (s.args ? ["incus", ...s.args].join(" ") : s.desc)),
  };
  const errors = values.check ? [] : await execute(p.steps, raw);
  for (const w of p.warnings) say(`${paint("yellow", "warning:")} ${w}`);
  if (errors.length > 0) {
    // Ansible shows stderr on failure: keep it readable, stdout empty.
    for (const c of p.changes) say(`planned: ${c}`);
    for (const e of errors) say(`${paint("red", "error:")} ${e}`);
    return 1;
  }
  if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    const verb = values.check ? "would change" : "changed";
    for (const c of p.changes) say(`${paint("yellow", verb)} ${c}`);
    for (const o of p.orphans) {
      say(
        `${paint("yellow", "orphan")} ${o.kind} ${o.project ? `${o.project}/` : ""}${o.name}: ${o.action}`,
      );
    }
    if (p.changes.length === 0) say(`${kind}: ${paint("green", "no change")}`);
  }
  return 0;
}

if (import.meta.main) await runMain(main, USAGE);
