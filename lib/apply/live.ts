/**
 * Live reconciliation: read the current Incus state (lib/incus/objects.ts),
 * plan each kind with the pure planners, run the plan (execute.ts). The
 * policies that need the daemon live here: VMs skipped on a host without KVM,
 * a remote image used from the project's cache when it is there, volumes
 * listed only when some are declared. `reconcile()` is the entry point;
 * scripts/reconcile.ts only parses argv and prints.
 */
import * as v from "valibot";
import { readParentContext } from "../core/nesting.ts";
import { currentRemote } from "../incus/client.ts";
import {
  driverRunsVms,
  type IncusImage,
  listClusterMembers,
  listImages,
  listInstances,
  listNetworks,
  listProfiles,
  listProjects,
  listVolumes,
  serverDriver,
} from "../incus/objects.ts";
import { DEFAULT_PARALLEL } from "./desired.ts";
import {
  bridgesNamed,
  DOMAIN_KINDS,
  type DomainKind,
  domainProjects,
  sliceDesired,
} from "./domains.ts";
import {
  describeFailure,
  execute,
  type Failure,
  incusRunner,
  type Limit,
  limiter,
  type Outcome,
  type RunnerKnobs,
  type StepRunner,
} from "./execute.ts";
import {
  type DesiredInstance,
  type ImageChoice,
  type InstancesDesired,
  InstancesDesiredSchema,
  planInstances,
} from "./instances.ts";
import {
  type DomainOrphansDesired,
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
} from "./kinds.ts";
import {
  appendPlan,
  emptyPlan,
  type IncusOrphan,
  type Plan,
  planSteps,
  type Step,
  splitImageRef,
} from "./reconcile.ts";

/** The kinds of resource, in the order an apply reconciles them. */
export const APPLY_KINDS = [
  "projects",
  "networks",
  "profiles",
  "images",
  "firewall",
  "instances",
  "orphans",
] as const;
export type ApplyKind = (typeof APPLY_KINDS)[number];

/**
 * The order of an apply, as stages: each kind depends only on kinds of
 * earlier stages, so the kinds of one stage run side by side. Bridges live
 * in the default project (features.networks=false) and need no project;
 * profiles (a default profile's eth0 on its bridge), images (copied into a
 * project) and the firewall profile (in a project, NICs on the bridges) need
 * both; instances need everything. On a first apply this overlaps the
 * creation of projects with bridges, of profiles with image copies.
 */
export const STAGES: ApplyKind[][] = [
  ["projects", "networks"],
  ["profiles", "images", "firewall"],
  ["instances"],
  ["orphans"],
];

/** Validate one kind's desired state; the error names the path and says to re-run make sync. */
export function parseDesired<S extends v.GenericSchema>(
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

/**
 * One view of the daemon: each listing read at most once, however many kinds
 * plan from it (the no-op apply's planners asked for projects and bridges
 * twice: 7 reads, now 5, bench/apply.ts). A fresh one is taken after any
 * write, so a kind planned again sees what the kinds before it changed.
 */
export class Reads {
  private readonly memo = new Map<string, Promise<unknown>>();
  private once<T>(key: string, read: () => Promise<T>): Promise<T> {
    let p = this.memo.get(key) as Promise<T> | undefined;
    if (!p) {
      p = read();
      this.memo.set(key, p);
    }
    return p;
  }
  projects = () => this.once("projects", listProjects);
  networks = () => this.once("networks", () => listNetworks());
  profiles = (project?: string) =>
    this.once(`profiles ${project ?? ""}`, () => listProfiles(project));
  images = () => this.once("images", () => listImages());
  instances = () => this.once("instances", () => listInstances());
  volumes = (pool: string) => this.once(`volumes ${pool}`, () => listVolumes(pool));
  driver = () => this.once("driver", serverDriver);
  members = () => this.once("members", listClusterMembers);
}

/** Compute the plan for one kind from its desired JSON and the live daemon (read-only). */
export async function planKind(
  kind: ApplyKind,
  raw: unknown,
  contextDir: string,
  reads = new Reads(),
): Promise<Plan> {
  const autoCleanup = Boolean((raw as { auto_cleanup?: boolean })?.auto_cleanup);
  switch (kind) {
    case "projects":
      return planProjects(parseDesired(ProjectsDesiredSchema, raw, kind), await reads.projects());
    case "networks": {
      const want = parseDesired(NetworksDesiredSchema, raw, kind);
      const current = await reads.networks();
      // The cluster is read only when a bridge is to be created.
      const missing = want.networks.some((n) => !current.some((c) => c.name === n.name));
      const members = missing ? (await reads.members()).map((m) => m.server_name) : [];
      return planNetworks(want, current, members);
    }
    case "profiles": {
      const want = parseDesired(ProfilesDesiredSchema, raw, kind);
      if (want.domains.length === 0) return emptyPlan();
      return planProfiles(want, await reads.profiles(), autoCleanup);
    }
    case "images": {
      const want = parseDesired(ImagesDesiredSchema, raw, kind);
      if (want.images.length === 0) return emptyPlan();
      return planImages(want, await reads.images(), currentRemote());
    }
    case "firewall": {
      const want = parseDesired(FirewallDesiredSchema, raw, kind);
      return planFirewall(want, await reads.profiles(want.project));
    }
    case "instances":
      return planInstancesLive(parseDesired(InstancesDesiredSchema, raw, kind), contextDir, reads);
    case "orphans":
      return planOrphanDomains(parseDesired(DomainOrphansDesiredSchema, raw, kind), reads);
  }
}

/** What one kind would change (or changed), as `reconcile.ts <kind> --json` prints it. */
export interface KindSummary {
  changed: boolean;
  changes: string[];
  orphans: IncusOrphan[];
  warnings: string[];
}

/** Plan every kind present in `raw` (read-only, in parallel): `reconcile.ts plan`. */
export async function planAll(raw: unknown, contextDir: string) {
  if (typeof raw !== "object" || raw === null) {
    throw new Error("Cannot plan: the desired state must be a mapping of kind to desired state");
  }
  const kinds = Object.keys(raw).filter((k): k is ApplyKind =>
    APPLY_KINDS.includes(k as ApplyKind),
  );
  const reads = new Reads();
  const plans = await Promise.all(
    kinds.map((k) => planKind(k, (raw as Record<string, unknown>)[k], contextDir, reads)),
  );
  const out: Record<string, KindSummary> = {};
  kinds.forEach((k, i) => {
    out[k] = summary(plans[i] as Plan);
  });
  return {
    kind: "plan",
    check: true,
    changed: Object.values(out).some((k) => k.changed),
    kinds: out,
  };
}

function summary(p: Plan): KindSummary {
  return {
    changed: planSteps(p).length > 0,
    changes: p.changes,
    orphans: p.orphans,
    warnings: p.warnings,
  };
}

/** Projects and bridges of removed domains; instances are read only when such a project exists. */
export async function planOrphanDomains(
  want: DomainOrphansDesired,
  reads = new Reads(),
): Promise<Plan> {
  const [projects, networks] = await Promise.all([reads.projects(), reads.networks()]);
  const orphanProjects = projects.filter(
    (p) => p.config["user.anklume.infra"] === want.infra && !want.projects.includes(p.name),
  );
  const needMore = orphanProjects.length > 0;
  const [instances, images, profiles] = needMore
    ? await Promise.all([reads.instances(), reads.images(), reads.profiles()])
    : [[], [], []];
  return planDomainOrphans(want, { projects, networks, instances, images, profiles });
}

/**
 * A host whose Incus cannot run VMs (driver "lxc" only: no KVM) cannot create
 * them: drop the VMs that do not exist yet, with a warning each, rather than
 * fail the whole apply. Existing VMs are kept.
 */
export function skipUncreatableVms(
  want: InstancesDesired,
  existing: Set<string>,
  driver: string,
): { want: InstancesDesired; warnings: string[] } {
  if (driverRunsVms(driver)) return { want, warnings: [] };
  const warnings: string[] = [];
  const instances = want.instances.filter((d) => {
    const skip = d.type === "vm" && !existing.has(`${d.project}/${d.name}`);
    if (skip) {
      warnings.push(
        `${d.project}/${d.name}: VM not created: this Incus host cannot run virtual machines (driver "${driver}": no KVM); run it on a host with KVM, or set type: lxc`,
      );
    }
    return !skip;
  });
  return { want: { ...want, instances }, warnings };
}

/**
 * The image reference `incus init` gets: a local alias as is; a remote one
 * (`images:debian/13`) by its alias when the project already holds it (the
 * images kind downloaded it), else the remote reference. `inProject`: the
 * project holds the image under the chosen alias.
 */
export function imageChooser(
  images: Pick<IncusImage, "project" | "aliases">[],
): (d: DesiredInstance) => ImageChoice {
  return (d) => {
    const { remote, alias } = splitImageRef(d.image);
    const inProject = images.some(
      (i) => i.project === d.project && i.aliases.some((a) => a.name === alias),
    );
    if (!remote || inProject) return { ref: alias, inProject };
    return { ref: d.image, inProject: false };
  };
}

/** The storage pools that hold the volumes the instances declare. */
export function volumePools(want: InstancesDesired): string[] {
  const pools = new Set<string>();
  for (const d of want.instances) {
    for (const spec of Object.values(d.storage_volumes ?? {}))
      pools.add(spec?.pool ?? want.default_pool ?? "default");
  }
  return [...pools];
}

/** Plan the instances against the daemon, with the orphan domains (when asked) in `after`. */
export async function planInstancesLive(
  want: InstancesDesired,
  contextDir: string,
  reads = new Reads(),
): Promise<Plan> {
  // Every read this plan may need starts now, side by side (after a first
  // apply's profiles, the planning of the instances waited for four reads
  // one after the other); the ones not needed cost a GET each.
  const prefetch = [
    reads.images(),
    ...(want.orphan_domains ? [reads.projects(), reads.networks()] : []),
  ];
  for (const p of prefetch) p.catch(() => undefined); // awaited, and reported, where used
  const current = await reads.instances();
  const existing = new Set(current.map((i) => `${i.project}/${i.name}`));
  const isNew = (d: DesiredInstance) => !existing.has(`${d.project}/${d.name}`);
  let skipped: string[] = [];
  if (want.instances.some((d) => d.type === "vm" && isNew(d))) {
    ({ want, warnings: skipped } = skipUncreatableVms(want, existing, await reads.driver()));
  }
  const images = want.instances.some(isNew) ? await reads.images() : [];
  const volumes = new Map<string, Record<string, string>>();
  for (const pool of volumePools(want)) {
    for (const vol of await reads.volumes(pool))
      if (vol.type === "custom") volumes.set(`${vol.project}/${pool}/${vol.name}`, vol.config);
  }
  const plan = planInstances(
    want,
    current,
    readParentContext(contextDir),
    imageChooser(images),
    volumes,
  );
  plan.warnings.push(...skipped);
  // Orphan projects and bridges (removed domains) in the same process: one
  // Ansible task and one process fewer per apply.
  if (want.orphan_domains) {
    const od = parseDesired(DomainOrphansDesiredSchema, want.orphan_domains, "orphan domains");
    appendPlan(plan, await planOrphanDomains(od, reads));
  }
  return plan;
}

const Num = v.nullish(
  v.pipe(
    v.union([v.number(), v.pipe(v.string(), v.decimal())]),
    v.transform((x) => Number(x)),
  ),
);
const RunnerKnobsSchema = v.looseObject({
  parallel: Num,
  timeout: Num,
  vm_agent_retries: Num,
  vm_agent_delay: Num,
});

/** The execution knobs a desired state may carry (the instances role's): numbers or numeric strings. */
export function readKnobs(raw: unknown): RunnerKnobs & { parallel?: number } {
  const r = v.safeParse(RunnerKnobsSchema, raw);
  if (!r.success) return {};
  const out: RunnerKnobs & { parallel?: number } = {};
  for (const k of ["parallel", "timeout", "vm_agent_retries", "vm_agent_delay"] as const) {
    const n = r.output[k];
    if (typeof n === "number" && Number.isFinite(n)) out[k] = n;
  }
  return out;
}

/**
 * The Incus object a `before` step writes: the project it acts in (a
 * profile's devices, an image copied into a project), else its own object
 * (`network <name>`, `project <name>`). Steps of different objects of one
 * kind need nothing from each other.
 */
export function objectOf(step: Step): string {
  const a = step.args ?? [];
  const flag = (f: string) => {
    const i = a.indexOf(f);
    return i >= 0 ? a[i + 1] : undefined;
  };
  const project = flag("--target-project") ?? flag("--project");
  return project !== undefined ? `project ${project}` : `${a[0]} ${a[2]}`;
}

/**
 * Run one kind's plan: its `before` steps grouped by the object they write
 * (`objectOf`), each group in order, groups side by side (at most
 * `parallel`); then, when none failed, the instances and `after` as
 * `execute()` runs them. A first apply's three bridges were created one
 * after the other (1 s each on a loaded host, bench/apply.ts first apply).
 * `done` hears of each object as its group ends (true: written); `limit`
 * bounds the instances with other plans' (see `execute`).
 */
export async function executeKind(
  plan: Plan,
  run: StepRunner,
  parallel = 4,
  more: { done?: (object: string, ok: boolean) => void; limit?: Limit } = {},
): Promise<Outcome> {
  const groups = new Map<string, Step[]>();
  for (const s of plan.before) {
    const key = objectOf(s);
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  const queue = [...groups.entries()];
  const outcomes: Outcome[] = [];
  const worker = async () => {
    for (let g = queue.shift(); g; g = queue.shift()) {
      const o = await execute({ ...emptyPlan(), before: g[1] }, run);
      outcomes.push(o);
      more.done?.(g[0], o.failures.length === 0);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, queue.length)) }, worker));
  const out: Outcome = {
    failures: outcomes.flatMap((o) => o.failures),
    warnings: outcomes.flatMap((o) => o.warnings),
  };
  if (out.failures.length > 0) return out;
  const rest = await execute({ ...plan, before: [] }, run, { parallel, limit: more.limit });
  return { failures: rest.failures, warnings: [...out.warnings, ...rest.warnings] };
}

/** What reconciling one kind did (`reconcile.ts <kind> --json` prints all but `errors`). */
export interface KindResult extends KindSummary {
  kind: ApplyKind;
  check: boolean;
  commands: string[];
  /** One line per failure, naming the machine and why. */
  errors: string[];
}

/** What `reconcile()` did, over every kind it was given. */
export interface ReconcileResult {
  changed: boolean;
  changes: string[];
  orphans: IncusOrphan[];
  warnings: string[];
  commands: string[];
  errors: string[];
  failures: Failure[];
  /** The result of each kind, in the order they ran. */
  kinds: KindResult[];
}

/** A kind's result from its plan and what running it did. */
function kindResult(kind: ApplyKind, plan: Plan, outcome: Outcome, check: boolean): KindResult {
  return {
    kind,
    check,
    ...summary(plan),
    warnings: [...plan.warnings, ...outcome.warnings],
    commands: planSteps(plan).map((s) => (s.args ? ["incus", ...s.args].join(" ") : s.desc)),
    errors: outcome.failures.map(describeFailure),
  };
}

/** One kind's result from the results of its parts (one per domain, at least one), in order. */
function mergeResults(kind: ApplyKind, parts: KindResult[]): KindResult {
  return {
    kind,
    check: parts.some((r) => r.check),
    changed: parts.some((r) => r.changed),
    changes: parts.flatMap((r) => r.changes),
    orphans: parts.flatMap((r) => r.orphans),
    warnings: parts.flatMap((r) => r.warnings),
    commands: parts.flatMap((r) => r.commands),
    errors: parts.flatMap((r) => r.errors),
  };
}

/** Plan one kind, run the plan (unless `check`), and say what it did. */
type RunKind = (
  kind: ApplyKind,
  plan: Plan,
  more?: Parameters<typeof executeKind>[3],
) => Promise<{ r: KindResult; outcome: Outcome; wrote: boolean }>;

/**
 * Bring Incus to the desired state of one kind or several, in apply order.
 * Every kind is first planned from one parallel read of the daemon: when
 * none has anything to change (a converged apply) that read is all. Then the
 * kinds run stage by stage (`STAGES`), the kinds of one stage side by side;
 * a kind is planned again only when an earlier stage changed something (it
 * may depend on it: a new project's default profile, an image copied into a
 * new project). A kind with errors stops the stages after its own. When
 * bridges are to be created, the per-project kinds go on by domain instead
 * (`byDomain`). With `check`, plan and write nothing. `run` replaces the
 * incus step runner (tests).
 * @example await reconcile("instances", { instances: desired }, { contextDir: "/etc/anklume" })
 */
export async function reconcile(
  kinds: ApplyKind | ApplyKind[],
  desiredByKind: Partial<Record<ApplyKind, unknown>>,
  opts: { check?: boolean; contextDir?: string; run?: StepRunner } = {},
): Promise<ReconcileResult> {
  const wanted = new Set(Array.isArray(kinds) ? kinds : [kinds]);
  const order = APPLY_KINDS.filter((k) => wanted.has(k));
  const contextDir = opts.contextDir ?? "/etc/anklume";
  const check = Boolean(opts.check);
  const out: ReconcileResult = {
    changed: false,
    changes: [],
    orphans: [],
    warnings: [],
    commands: [],
    errors: [],
    failures: [],
    kinds: [],
  };
  // A read may fail because what it reads is not created yet (the firewall
  // profile of a new project): such a kind is planned again after the others.
  const reads = new Reads();
  const first = await Promise.all(
    order.map((k) => planKind(k, desiredByKind[k], contextDir, reads).catch((e: Error) => e)),
  );
  const firstPlan = (k: ApplyKind) => first[order.indexOf(k)];
  const runKind: RunKind = async (kind, plan, more = {}) => {
    const knobs = readKnobs(desiredByKind[kind]);
    const steps = planSteps(plan);
    const outcome: Outcome =
      check || steps.length === 0
        ? { failures: [], warnings: [] }
        : await executeKind(plan, opts.run ?? incusRunner(knobs), knobs.parallel, more);
    return {
      r: kindResult(kind, plan, outcome, check),
      outcome,
      wrote: !check && steps.length > 0,
    };
  };
  const record = ({ r, outcome }: { r: KindResult; outcome: Outcome }) => {
    out.kinds.push(r);
    out.changed ||= r.changed;
    out.changes.push(...r.changes);
    out.orphans.push(...r.orphans);
    out.warnings.push(...r.warnings);
    out.commands.push(...r.commands);
    out.errors.push(...r.errors);
    out.failures.push(...outcome.failures);
  };

  const nets = firstPlan("networks");
  const createsBridge =
    nets !== undefined &&
    !(nets instanceof Error) &&
    nets.before.some((s) => s.args?.[0] === "network" && s.args[1] === "create");
  const domainKinds = order.filter((k): k is DomainKind =>
    (DOMAIN_KINDS as readonly string[]).includes(k),
  );
  if (
    !check &&
    createsBridge &&
    domainKinds.length > 0 &&
    first.every((p) => !(p instanceof Error))
  ) {
    await byDomain({
      order,
      domainKinds,
      desiredByKind,
      first: firstPlan as (k: ApplyKind) => Plan,
      contextDir,
      runKind,
      record,
    });
    return out;
  }

  let dirty = false;
  for (const stage of STAGES) {
    const kindsOfStage = order.filter((k) => stage.includes(k));
    if (kindsOfStage.length === 0) continue;
    // Kinds of one stage depend on none of each other: they run side by side.
    const runOne = async (kind: ApplyKind) => {
      const early = firstPlan(kind);
      if (!dirty && early instanceof Error) throw early;
      const plan =
        dirty || !early || early instanceof Error
          ? await planKind(kind, desiredByKind[kind], contextDir)
          : early;
      return runKind(kind, plan);
    };
    const results = await Promise.all(kindsOfStage.map(runOne));
    for (const res of results) {
      dirty ||= res.wrote;
      record(res);
    }
    if (results.some(({ r }) => r.errors.length > 0)) break;
  }
  return out;
}

/**
 * The stages of an apply that creates bridges, by domain. Projects and
 * bridges first, side by side (as stage 1); as soon as a project and every
 * bridge its share names exist, that project's profiles, images and
 * firewall profile run, planned again, then its instances, all projects'
 * instances drawing from one pool of `incus_instances_parallel`. A failed
 * project or bridge stops the domains that need it, and only them; a
 * domain whose profiles or images failed gets no instance. Then, when
 * nothing failed before the instances, the removed domains and the orphans
 * kind, as stages 3 and 4 do. Each kind's result is the sum of its parts.
 */
async function byDomain(a: {
  order: ApplyKind[];
  domainKinds: DomainKind[];
  desiredByKind: Partial<Record<ApplyKind, unknown>>;
  first: (k: ApplyKind) => Plan;
  contextDir: string;
  runKind: RunKind;
  record: (x: { r: KindResult; outcome: Outcome }) => void;
}): Promise<void> {
  const { order, desiredByKind, contextDir, runKind, record } = a;
  // Each object stage 1 writes ("project p", "network b") is a gate: true once written.
  const stage1 = order.filter((k) => k === "projects" || k === "networks");
  const gates = new Map<string, { promise: Promise<boolean>; open: (ok: boolean) => void }>();
  for (const k of stage1) {
    for (const s of a.first(k).before) {
      let open: (ok: boolean) => void = () => undefined;
      const promise = new Promise<boolean>((res) => {
        open = res;
      });
      gates.set(objectOf(s), { promise, open });
    }
  }
  const done = (object: string, ok: boolean) => gates.get(object)?.open(ok);
  const firstStage = Promise.all(
    stage1.map(async (k) => {
      let ok = false;
      try {
        const res = await runKind(k, a.first(k), { done });
        ok = res.outcome.failures.length === 0;
        return res;
      } finally {
        // Gates `done` did not open (the kind threw) open closed: no domain waits forever.
        for (const s of a.first(k).before) done(objectOf(s), ok);
      }
    }),
  );
  const bridges = new Set(
    [...gates.keys()].filter((o) => o.startsWith("network ")).map((o) => o.slice(8)),
  );
  const limit = limiter(readKnobs(desiredByKind.instances).parallel ?? DEFAULT_PARALLEL);
  type Part = { r: KindResult; outcome: Outcome };
  const domainParts = await Promise.all(
    domainProjects(desiredByKind).map(async (project) => {
      const parts: Part[] = [];
      // The project's share of each kind, once (null: nothing of that kind).
      const shares = new Map(
        a.domainKinds.map((k) => [k, sliceDesired(k, desiredByKind[k], project)] as const),
      );
      const needs = [
        `project ${project}`,
        ...bridgesNamed([...shares.values()], bridges).map((b) => `network ${b}`),
      ].flatMap((o) => gates.get(o)?.promise ?? []);
      if (!(await Promise.all(needs)).every(Boolean)) return parts;
      const before = [...shares].filter(([k, share]) => k !== "instances" && share !== null);
      const ran = await Promise.all(
        before.map(async ([k, share]) => runKind(k, await planKind(k, share, contextDir))),
      );
      parts.push(...ran);
      if (ran.some(({ r }) => r.errors.length > 0)) return parts;
      const inst = shares.get("instances");
      if (inst)
        parts.push(
          await runKind("instances", await planKind("instances", inst, contextDir), { limit }),
        );
      return parts;
    }),
  );
  const stage1Results = await firstStage;
  for (const res of stage1Results) record(res);
  const all = domainParts.flat();
  // Removed domains (the instances kind's `orphan_domains`) and the orphans
  // kind, once every domain is done, when nothing failed before the instances.
  const failedBefore =
    stage1Results.some(({ r }) => r.errors.length > 0) ||
    all.some(({ r }) => r.kind !== "instances" && r.errors.length > 0);
  // The field only: the first plan validated the whole instances kind.
  const od = a.domainKinds.includes("instances")
    ? (desiredByKind.instances as { orphan_domains?: unknown }).orphan_domains
    : null;
  if (!failedBefore && od) {
    const want = parseDesired(DomainOrphansDesiredSchema, od, "orphan domains");
    all.push(await runKind("instances", await planOrphanDomains(want)));
  }
  for (const kind of a.domainKinds) {
    const parts = all.filter(({ r }) => r.kind === kind);
    if (parts.length === 0) continue;
    record({
      r: mergeResults(
        kind,
        parts.map((p) => p.r),
      ),
      outcome: {
        failures: parts.flatMap((p) => p.outcome.failures),
        warnings: parts.flatMap((p) => p.outcome.warnings),
      },
    });
  }
  if (!failedBefore && order.includes("orphans") && !all.some(({ r }) => r.errors.length > 0)) {
    record(await runKind("orphans", await planKind("orphans", desiredByKind.orphans, contextDir)));
  }
}
