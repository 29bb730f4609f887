/**
 * `make apply`'s play 1 in one process: from the generated variables (read
 * from the generated tree, or passed through on stdin) to a reconciled
 * Incus. The tags of the run select kinds; desired.ts maps the variables;
 * live.ts plans and runs each kind, in order.
 */
import { readInventory } from "../core/inventory.ts";
import {
  type DesiredInput,
  type DesiredState,
  desiredFromVars,
  firewallBridges,
  firewallInterfaces,
  type HostVars,
  HostVarsSchema,
  KINDS,
  type Kind,
  parseVarsInput,
  type VarsInput,
} from "./desired.ts";
import type { Failure, StepRunner } from "./execute.ts";
import { type KindResult, reconcile } from "./live.ts";

/** Tags that select every kind (an untagged run is `all`). */
const EVERY_KIND_TAGS = new Set(["all", "infra"]);

/**
 * The kinds an `ansible-playbook --tags/--skip-tags` run selects: every kind
 * for `all` or `infra`, else the kinds named (`--tags networks`); skipped
 * tags remove kinds (`--skip-tags infra` removes them all).
 */
export function kindsForTags(runTags: string[], skipTags: string[]): Kind[] {
  const run = runTags.length === 0 ? ["all"] : runTags;
  if (skipTags.some((t) => EVERY_KIND_TAGS.has(t))) return [];
  const every = run.some((t) => EVERY_KIND_TAGS.has(t));
  return KINDS.filter((k) => (every || run.includes(k)) && !skipTags.includes(k));
}

/** The desired document of each kind, as live.ts's planners read it (null: nothing to do). */
export function desiredByKind(d: DesiredState): Record<Kind, unknown> {
  return {
    projects: d.projects,
    networks: d.networks,
    profiles: d.profiles,
    images: d.images,
    firewall: d.firewall,
    // The executor's knobs travel with the instances, which they concern.
    instances: { ...(d.instances as object), ...d.exec },
  };
}

/** What the apply did, per kind, and what Ansible shows. */
export interface ApplyResult {
  changed: boolean;
  check: boolean;
  kinds: Partial<Record<Kind, Omit<KindResult, "kind">>>;
  /** Per kind, only the non-empty lists of changes, orphans and warnings (for the report task). */
  report: Record<string, Record<string, unknown[]>>;
  warnings: string[];
  errors: string[];
  failures: Failure[];
}

/** Reconcile the kinds that the tags select, from the generated variables. */
export async function applyFromVars(
  input: DesiredInput,
  opts: {
    tags?: string[];
    skipTags?: string[];
    check?: boolean;
    contextDir?: string;
    run?: StepRunner;
  } = {},
): Promise<ApplyResult> {
  const desired = desiredFromVars(input);
  const docs = desiredByKind(desired);
  const kinds = kindsForTags(opts.tags ?? [], opts.skipTags ?? []).filter((k) => docs[k] !== null);
  const r = await reconcile(kinds, docs, {
    check: opts.check,
    contextDir: opts.contextDir,
    run: opts.run,
  });
  const out: ApplyResult = {
    changed: r.changed,
    check: Boolean(opts.check),
    kinds: {},
    report: {},
    warnings: [...desired.warnings, ...r.warnings],
    errors: r.errors,
    failures: r.failures,
  };
  if (desired.warnings.length > 0) out.report.knobs = { warnings: desired.warnings };
  for (const { kind, ...rest } of r.kinds) {
    out.kinds[kind as Kind] = rest;
    const shown: Record<string, unknown[]> = {};
    for (const key of ["changes", "orphans", "warnings"] as const)
      if (rest[key].length > 0) shown[key] = rest[key];
    if (Object.keys(shown).length > 0) out.report[kind] = shown;
  }
  return out;
}

/** The variables the generator writes, whatever file or level set them (what the role once passed through). */
const GENERATED = /^(instance_|incus_|domain_|project_name$|default_os_image$|auto_cleanup$)/;
/** The generated keys the mapping reads: a Jinja template in one would need Ansible to render it. */
const READ_KEYS = new Set(Object.keys(HostVarsSchema.entries));
const JINJA = /\{\{|\{%/;

/**
 * The apply's input read from the generated tree under `baseDir`
 * (inventory/, group_vars/, host_vars/, as `make sync` wrote them and Ansible
 * merges them), instead of Ansible's `hostvars` passed through Jinja: that
 * pass-through cost 0.17 s of every apply (bench/apply.ts, no-op). Values are
 * read as written, so a Jinja template in a key the mapping reads is an
 * error that says where, rather than a literal `{{ }}` sent to Incus.
 * `playHosts` are the play's hosts (`--limit` honoured; every host when
 * absent), `knobs` the role's knobs as Ansible rendered them (`-e` honoured).
 */
export function varsInputFromTree(
  baseDir: string,
  opts: { playHosts?: string[]; limited?: boolean; knobs?: Record<string, unknown> } = {},
): VarsInput {
  const inv = readInventory(baseDir);
  if (!inv) {
    throw new Error(
      `Cannot reconcile: no generated inventory under ${baseDir}/inventory; run make sync first`,
    );
  }
  const hosts: Record<string, Record<string, unknown>> = {};
  for (const h of inv.hosts) {
    const slice: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(h.vars)) {
      if (!GENERATED.test(k)) continue;
      if (READ_KEYS.has(k) && JINJA.test(JSON.stringify(x))) {
        throw new Error(
          `Cannot reconcile host "${h.host}": its variable ${k} holds a Jinja template, which the apply reads as written; set the value itself (infra.yml, then make sync)`,
        );
      }
      slice[k] = x;
    }
    hosts[h.host] = slice;
  }
  return parseVarsInput({
    hosts,
    play_hosts: opts.playHosts ?? null,
    limited: opts.limited ?? false,
    knobs: opts.knobs ?? {},
  });
}

/**
 * `firewall_router_interfaces` of one host, from the generated tree (the
 * provisioning play asks for it; Ansible's own variables carry the same values).
 */
export function interfacesFromTree(
  baseDir: string,
  host: string,
): { name: string; bridge: string }[] {
  const inv = readInventory(baseDir);
  if (!inv) throw new Error(`Cannot read the inventory under ${baseDir}: run make sync`);
  const all = inv.hosts.map((h) => h.vars as HostVars);
  const me = inv.hosts.find((h) => h.host === host);
  if (!me)
    throw new Error(`Cannot find host "${host}" in the inventory under ${baseDir}: run make sync`);
  return firewallInterfaces(firewallBridges(me.vars as HostVars, all));
}
