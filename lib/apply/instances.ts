/**
 * Instances: the desired-state schema the incus_instances role sends, and the
 * pure planner that turns (desired, current) into incus writes: create,
 * config/profile/device drift, storage volumes, start, nesting context, and
 * orphan instances (reported; deleted only with auto_cleanup and unprotected).
 * Each instance gets its own step list (`Plan.perInstance`), so instances
 * converge side by side and a failure stops only its own instance.
 */
import * as v from "valibot";
import type { IncusInstance as Instance } from "../incus/objects.ts";
import {
  CONTEXT_KEY,
  type Config,
  childContext,
  contextMarker,
  type Devices,
  deviceArgs,
  diffConfig,
  diffDevices,
  emptyPlan,
  incusString,
  kv,
  MANAGED_DEVICES,
  type NestingContext,
  type Plan,
  type Step,
  splitMarker,
  toConfig,
} from "./reconcile.ts";

const Scalar = v.union([v.string(), v.number(), v.boolean()]);
const ScalarMap = v.nullish(v.record(v.string(), v.nullish(Scalar)), {});

/** A custom storage volume an instance declares (not Incus's volume: see IncusVolume). */
export const DesiredVolumeSchema = v.looseObject({
  pool: v.nullish(v.string()),
  size: v.nullish(Scalar),
  path: v.nullish(v.string()),
});

export const DesiredInstanceSchema = v.looseObject({
  name: v.string(),
  project: v.string(),
  type: v.nullish(v.picklist(["lxc", "vm"]), "lxc"),
  image: v.string(),
  profiles: v.nullish(v.array(v.string()), ["default"]),
  config: ScalarMap,
  devices: v.nullish(v.record(v.string(), v.nullish(v.record(v.string(), v.nullish(Scalar)))), {}),
  storage_volumes: v.nullish(v.record(v.string(), v.nullish(DesiredVolumeSchema)), {}),
  ephemeral: v.nullish(v.boolean(), false),
  ip: v.nullish(v.string()),
  bridge: v.string(),
  boot_autostart: v.nullish(v.boolean()),
  /** The cluster member to create it on (`incus ... --target`); never moved afterwards. */
  target: v.nullish(v.string()),
  boot_priority: v.nullish(v.number()),
  snapshots_schedule: v.nullish(v.string()),
  snapshots_expiry: v.nullish(v.string()),
});
export type DesiredInstance = v.InferOutput<typeof DesiredInstanceSchema>;

export const InstancesDesiredSchema = v.looseObject({
  instances: v.array(DesiredInstanceSchema),
  /** Every instance the whole inventory declares (orphan detection ignores --limit). */
  declared: v.nullish(v.array(v.object({ name: v.string(), project: v.string() })), []),
  /** Projects whose undeclared instances are orphans (those of the selected domains). */
  projects: v.nullish(v.array(v.string()), []),
  auto_cleanup: v.nullish(v.boolean(), false),
  default_pool: v.nullish(v.string(), "default"),
  restart_on_device_change: v.nullish(v.boolean(), true),
  context: v.nullish(v.boolean(), true),
  /** Without --limit: the projects and bridges the inventory declares (see planDomainOrphans). */
  orphan_domains: v.nullish(v.unknown()),
});
export type InstancesDesired = v.InferOutput<typeof InstancesDesiredSchema>;

/** The config anklume wants on an instance: instance_config plus the derived keys. */
export function desiredConfig(d: DesiredInstance): Config {
  const c = toConfig(d.config);
  if (d.boot_autostart !== null && d.boot_autostart !== undefined)
    c["boot.autostart"] = incusString(d.boot_autostart);
  if (d.boot_priority !== null && d.boot_priority !== undefined)
    c["boot.autostart.priority"] = incusString(d.boot_priority);
  c["security.protection.delete"] = d.ephemeral ? "false" : "true";
  if (d.snapshots_schedule) c["snapshots.schedule"] = d.snapshots_schedule;
  if (d.snapshots_expiry) c["snapshots.expiry"] = d.snapshots_expiry;
  return c;
}

/** The local devices anklume owns on an instance (eth0 only for a static IP). */
export function desiredDevices(d: DesiredInstance, defaultPool: string, eth0: Devices): Devices {
  const out: Devices = {};
  for (const [name, dev] of Object.entries(d.devices ?? {})) out[name] = toConfig(dev ?? {});
  for (const [vol, spec] of Object.entries(d.storage_volumes ?? {})) {
    if (spec?.path) {
      out[vol] = { type: "disk", pool: spec.pool ?? defaultPool, source: vol, path: spec.path };
    }
  }
  if (d.ip && !("eth0" in out)) {
    out.eth0 = {
      ...(eth0.eth0 ?? { type: "nic", network: d.bridge, name: "eth0" }),
      "ipv4.address": d.ip,
    };
  }
  return out;
}

const isProtected = (i: Instance) => i.config["security.protection.delete"] === "true";

/** The steps, changes and warnings of one instance, collected while planning it. */
interface One {
  key: string;
  steps: Step[];
  changes: string[];
  warnings: string[];
  /** Add an incus call (with what else the step carries). */
  step(desc: string, args: string[], more?: Omit<Step, "desc" | "args">): void;
  /** Record a human-readable change. */
  note(change: string): void;
}

/** `member`: the cluster member the instance is (or will be) on, named in each change. */
function one(key: string, member?: string): One {
  const where = member ? `${key} on member ${member}` : key;
  const o: One = {
    key,
    steps: [],
    changes: [],
    warnings: [],
    step: (desc, args, more) => o.steps.push({ desc: `${key}: ${desc}`, args, ...more }),
    note: (c) => o.changes.push(`${where}: ${c}`),
  };
  return o;
}

/**
 * Plan the writes for every desired instance plus the orphans of the selected
 * projects: one step list per instance that has something to do (volumes,
 * init, devices, start, agent wait, context, drift), orphan deletions after.
 */
export function planInstances(
  want: InstancesDesired,
  current: Instance[],
  parent: NestingContext,
  imageFor: (d: DesiredInstance) => ImageChoice,
  /** Existing custom volumes: "<project>/<pool>/<name>" → their config. */
  volumesPresent: Map<string, Record<string, string>>,
): Plan {
  const plan = emptyPlan();
  const byKey = new Map(current.map((i) => [`${i.project}/${i.name}`, i]));
  /** Volumes already planned for creation, so two instances sharing one create it once. */
  const creating = new Set<string>();
  for (const d of want.instances) {
    const key = `${d.project}/${d.name}`;
    const cur = byKey.get(key);
    // The report per cluster member: where it runs, else where it will.
    const at = cur?.location && cur.location !== "none" ? cur.location : (d.target ?? undefined);
    const o = one(key, at);
    planVolumes(o, d, want.default_pool ?? "default", volumesPresent, creating);
    if (cur) planExisting(o, d, cur, want, parent);
    else planNew(o, d, want, parent, imageFor);
    if (o.steps.length > 0) plan.perInstance.push({ key: o.key, steps: o.steps });
    plan.changes.push(...o.changes);
    plan.warnings.push(...o.warnings);
  }
  planOrphanInstances(want, current, plan);
  return plan;
}

function planVolumes(
  o: One,
  d: DesiredInstance,
  pool: string,
  volumesPresent: Map<string, Record<string, string>>,
  creating: Set<string>,
): void {
  const p = ["--project", d.project];
  for (const [vol, spec] of Object.entries(d.storage_volumes ?? {})) {
    const vpool = spec?.pool ?? pool;
    const vkey = `${d.project}/${vpool}/${vol}`;
    const size = spec?.size ? incusString(spec.size) : undefined;
    const have = volumesPresent.get(vkey);
    if (!have && !creating.has(vkey)) {
      creating.add(vkey);
      const sizeArg = size ? [`size=${size}`] : [];
      o.step(`create storage volume ${vpool}/${vol}`, [
        "storage",
        "volume",
        "create",
        vpool,
        vol,
        ...sizeArg,
        ...p,
      ]);
      o.note(`create storage volume ${vpool}/${vol}`);
    }
    if (have && size && have.size !== size) {
      o.step(`resize storage volume ${vpool}/${vol}`, [
        "storage",
        "volume",
        "set",
        vpool,
        vol,
        `size=${size}`,
        ...p,
      ]);
      o.note(`storage volume ${vpool}/${vol}: size ${have.size ?? "unset"} -> ${size}`);
    }
  }
}

/** A static IP without a declared eth0 is a local override of the profile's eth0. */
const eth0Override = (d: DesiredInstance) => Boolean(d.ip) && !(d.devices && "eth0" in d.devices);

/**
 * The image an instance is created from: the reference `incus init` gets,
 * and whether the instance's project holds it under that alias.
 */
export interface ImageChoice {
  ref: string;
  inProject: boolean;
}

/** Create, attach devices, start, wait for a VM's agent, write the nesting context. */
function planNew(
  o: One,
  d: DesiredInstance,
  want: InstancesDesired,
  parent: NestingContext,
  imageFor: (d: DesiredInstance) => ImageChoice,
): void {
  const p = ["--project", d.project];
  const isVm = d.type === "vm";
  const config = desiredConfig(d);
  const devices = desiredDevices(d, want.default_pool ?? "default", {});
  const { ref: image, inProject } = imageFor(d);
  const profiles = d.profiles ?? ["default"];
  const managedDevs = Object.keys(devices).sort().join(",");
  const keys: Config = {
    ...config,
    "user.anklume.managed_keys": Object.keys(config).sort().join(","),
  };
  const devKeys: Config = managedDevs ? { [MANAGED_DEVICES]: managedDevs } : {};
  // A static IP is an override of the profile's eth0, given at creation
  // (`--device eth0,ipv4.address=…`); other devices are added before the
  // start. With nothing to add, one `incus launch` creates and starts.
  const override = eth0Override(d) ? ["--device", `eth0,ipv4.address=${d.ip}`] : [];
  const adds = Object.entries(devices).filter(([name]) => !(name === "eth0" && eth0Override(d)));
  const create = [
    image,
    d.name,
    ...(isVm ? ["--vm"] : []),
    ...p,
    ...(d.target ? ["--target", d.target] : []),
    ...profiles.flatMap((x) => ["--profile", x]),
    ...[...kv(keys), ...kv(devKeys)].flatMap((x) => ["-c", x]),
    ...override,
  ];
  const what = `${isVm ? "VM" : "container"} from ${image}`;
  if (adds.length === 0) {
    // Through the socket, one request and no process: 18 containers in
    // 2.6-3.4 s against 4.0-4.5 s by `incus launch` (docs/apply.md, the first
    // apply). The CLI's `--device` override copies the profile's eth0, which
    // this plan does not read: a static IP keeps the CLI, and so does an
    // image the project does not hold (the CLI names it as missing).
    const body = {
      name: d.name,
      type: isVm ? "virtual-machine" : "container",
      source: { type: "image", alias: image },
      profiles,
      config: { ...keys, ...devKeys },
      devices: {},
      start: true,
    };
    const viaSocket = inProject && override.length === 0;
    o.step(
      `create and start ${what}`,
      ["launch", ...create],
      viaSocket
        ? { create: { project: d.project, ...(d.target ? { target: d.target } : {}), body } }
        : {},
    );
  } else {
    o.step(`create ${what}`, ["init", ...create]);
    for (const [name, dev] of adds) {
      const args = deviceArgs([{ op: "add", device: name, keys: dev }], {
        verb: "config",
        name: d.name,
        project: d.project,
      })[0] as string[];
      o.step(`add device ${name}`, args);
    }
    o.step("start", ["start", d.name, ...p]);
  }
  o.note(
    `create ${isVm ? "VM" : "container"} (image ${image}, profiles ${(d.profiles ?? []).join(",")})`,
  );
  if (isVm) waitAgentStep(o, d);
  if (want.context) contextSteps(o, d, parent);
}

/** Config, profiles and device drift, start or restart, nesting context when it changed. */
function planExisting(
  o: One,
  d: DesiredInstance,
  cur: Instance,
  want: InstancesDesired,
  parent: NestingContext,
): void {
  const p = ["--project", d.project];
  const isVm = d.type === "vm";
  if ((cur.type === "virtual-machine") !== isVm) {
    o.warnings.push(
      `${o.key}: is a ${cur.type} but infra.yml says type ${d.type}; delete and re-apply to change the type`,
    );
  }
  // A cluster member is chosen at creation only: a changed target is said,
  // never acted on by a delete and re-create.
  if (d.target && cur.location && cur.location !== "none" && cur.location !== d.target) {
    o.warnings.push(
      `${o.key}: runs on cluster member "${cur.location}" but infra.yml says target "${d.target}": not moved (anklume never deletes and re-creates a machine for this); move it with: incus move ${d.name} --project ${d.project} --target ${d.target}`,
    );
  }
  // The eth0 a static IP overrides: the profile's eth0 (known from the default profile
  // the profiles role wrote) is not read here; the override copies it, so only the
  // keys anklume sets are compared.
  const eth0Base: Devices = cur.expanded_devices?.eth0 ? { eth0: cur.expanded_devices.eth0 } : {};
  const devices = desiredDevices(d, want.default_pool ?? "default", eth0Base);
  const cd = diffConfig(desiredConfig(d), cur.config);
  const managedDevs = Object.keys(devices).sort().join(",");
  const setMap: Config = { ...cd.set };
  if ((cur.config[MANAGED_DEVICES] ?? "") !== managedDevs) setMap[MANAGED_DEVICES] = managedDevs;
  if (Object.keys(setMap).length > 0)
    o.step("set config", ["config", "set", d.name, ...kv(setMap), ...p]);
  for (const c of cd.changes) o.note(c);

  const wantProfiles = d.profiles ?? ["default"];
  if (wantProfiles.join(",") !== cur.profiles.join(",")) {
    o.step("assign profiles", ["profile", "assign", d.name, wantProfiles.join(","), ...p]);
    o.note(`profiles ${cur.profiles.join(",")} -> ${wantProfiles.join(",")}`);
  }

  // eth0 with a static IP: a local override exists or is created with only ipv4.address.
  const dd = diffDevices(devices, cur.devices, splitMarker(cur.config[MANAGED_DEVICES]));
  const ops = dd.ops.map((op) =>
    op.device === "eth0" && op.op === "add" && eth0Override(d)
      ? [["config", "device", "override", d.name, "eth0", `ipv4.address=${d.ip}`, ...p]]
      : deviceArgs([op], { verb: "config", name: d.name, project: d.project }),
  );
  for (const args of ops.flat()) o.step(`device ${args[2]} ${args[4]}`, args);
  for (const c of dd.changes) o.note(c);

  if (cur.status === "Running") {
    if (dd.ops.length > 0 && want.restart_on_device_change) {
      o.step("restart (devices changed)", ["restart", d.name, ...p]);
      o.note("restart (devices changed)");
    }
  } else {
    o.step(`start (was ${cur.status})`, ["start", d.name, ...p]);
    o.note(`start (was ${cur.status})`);
    if (isVm) waitAgentStep(o, d);
  }
  if (want.context && cur.config[CONTEXT_KEY] !== contextMarker(childContext(parent, isVm))) {
    contextSteps(o, d, parent);
  }
}

function waitAgentStep(o: One, d: DesiredInstance): void {
  o.steps.push({
    desc: `${o.key}: wait for the VM agent`,
    waitAgent: { name: d.name, project: d.project },
  });
}

function contextSteps(o: One, d: DesiredInstance, parent: NestingContext): void {
  const context = childContext(parent, d.type === "vm");
  o.steps.push({
    desc: `${o.key}: write and record the nesting context`,
    context: { name: d.name, project: d.project, context },
  });
  o.changes.push(`${o.key}: nesting context ${contextMarker(context)}`);
}

/** Undeclared instances of the selected projects: reported, or deleted (in `after`) with auto_cleanup. */
function planOrphanInstances(want: InstancesDesired, current: Instance[], plan: Plan): void {
  const declared = new Set([
    ...(want.declared ?? []).map((x) => `${x.project}/${x.name}`),
    ...want.instances.map((x) => `${x.project}/${x.name}`),
  ]);
  const scope = new Set(want.projects ?? []);
  const orphans = current
    .filter((i) => scope.has(i.project) && !declared.has(`${i.project}/${i.name}`))
    .sort((a, b) => `${a.project}/${a.name}`.localeCompare(`${b.project}/${b.name}`));
  for (const i of orphans) {
    const prot = isProtected(i);
    const del = Boolean(want.auto_cleanup) && !prot;
    plan.orphans.push({
      kind: "instance",
      name: i.name,
      project: i.project,
      protected: prot,
      action: del ? "deleted" : prot && want.auto_cleanup ? "kept (protected)" : "reported",
    });
    if (del) {
      plan.after.push({
        desc: `${i.project}/${i.name}: delete orphan instance`,
        args: ["delete", i.name, "--project", i.project, "--force"],
      });
      plan.changes.push(`${i.project}/${i.name}: delete orphan instance (auto_cleanup)`);
    }
  }
}
