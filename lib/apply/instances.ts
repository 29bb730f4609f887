/**
 * Instances: the desired-state schema the incus_instances role sends, and the
 * pure planner that turns (desired, current) into incus writes: create,
 * config/profile/device drift, storage volumes, start, nesting context, and
 * orphan instances (reported; deleted only with auto_cleanup and unprotected).
 */
import * as v from "valibot";
import type { IncusInstance as Instance } from "../incus/objects.ts";
import {
  CONTEXT_KEY,
  CONTEXT_SCRIPT,
  type Config,
  childContext,
  contextMarker,
  type Devices,
  deviceArgs,
  diffConfig,
  diffDevices,
  incusString,
  kv,
  MANAGED_DEVICES,
  type NestingContext,
  type Step,
  splitMarker,
  toConfig,
} from "./reconcile.ts";

const Scalar = v.union([v.string(), v.number(), v.boolean()]);
const ScalarMap = v.nullish(v.record(v.string(), v.nullish(Scalar)), {});

export const VolumeSchema = v.looseObject({
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
  storage_volumes: v.nullish(v.record(v.string(), v.nullish(VolumeSchema)), {}),
  ephemeral: v.nullish(v.boolean(), false),
  ip: v.nullish(v.string()),
  bridge: v.string(),
  boot_autostart: v.nullish(v.boolean()),
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

export interface Orphan {
  kind: "instance" | "project" | "network" | "profile";
  name: string;
  project?: string;
  protected: boolean;
  action: "reported" | "deleted" | "kept (protected)" | "kept (in use)";
}

export interface Plan {
  steps: Step[];
  changes: string[];
  orphans: Orphan[];
  warnings: string[];
}

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

/** Plan the writes for every desired instance plus the orphans of the selected projects. */
export function planInstances(
  want: InstancesDesired,
  current: Instance[],
  parent: NestingContext,
  imageFor: (d: DesiredInstance) => string,
  /** Existing custom volumes: "<project>/<pool>/<name>" → their config. */
  volumesPresent: Map<string, Record<string, string>>,
): Plan {
  const plan: Plan = { steps: [], changes: [], orphans: [], warnings: [] };
  const byKey = new Map(current.map((i) => [`${i.project}/${i.name}`, i]));
  const pool = want.default_pool ?? "default";
  for (const d of want.instances) {
    const key = `${d.project}/${d.name}`;
    const cur = byKey.get(key);
    const p = ["--project", d.project];
    const note = (c: string) => plan.changes.push(`${key}: ${c}`);
    const step = (desc: string, args: string[]) =>
      plan.steps.push({ desc: `${key}: ${desc}`, args });
    const isVm = d.type === "vm";
    const config = desiredConfig(d);

    for (const [vol, spec] of Object.entries(d.storage_volumes ?? {})) {
      const vpool = spec?.pool ?? pool;
      if (!volumesPresent.has(`${d.project}/${vpool}/${vol}`)) {
        const size = spec?.size ? [`size=${incusString(spec.size)}`] : [];
        step(`create storage volume ${vpool}/${vol}`, [
          "storage",
          "volume",
          "create",
          vpool,
          vol,
          ...size,
          ...p,
        ]);
        note(`create storage volume ${vpool}/${vol}`);
      }
      const have = volumesPresent.get(`${d.project}/${vpool}/${vol}`);
      const size = spec?.size ? incusString(spec.size) : undefined;
      if (have && size && have.size !== size) {
        step(`resize storage volume ${vpool}/${vol}`, [
          "storage",
          "volume",
          "set",
          vpool,
          vol,
          `size=${size}`,
          ...p,
        ]);
        note(`storage volume ${vpool}/${vol}: size ${have.size ?? "unset"} -> ${size}`);
      }
    }

    // The eth0 a static IP overrides: the profile's eth0 (known from the default profile
    // the profiles role wrote) is not read here; the override copies it, so only the
    // keys anklume sets are compared.
    const eth0Base: Devices = cur?.expanded_devices?.eth0
      ? { eth0: cur.expanded_devices.eth0 }
      : {};
    const devices = desiredDevices(d, pool, eth0Base);

    if (!cur) {
      const profileArgs = (d.profiles ?? ["default"]).flatMap((x) => ["--profile", x]);
      const cfgArgs = kv({
        ...config,
        "user.anklume.managed_keys": Object.keys(config).sort().join(","),
      }).flatMap((x) => ["-c", x]);
      const managedDevs = Object.keys(devices).sort().join(",");
      const devCfg = managedDevs ? ["-c", `${MANAGED_DEVICES}=${managedDevs}`] : [];
      step(`create ${isVm ? "VM" : "container"} from ${imageFor(d)}`, [
        "init",
        imageFor(d),
        d.name,
        ...(isVm ? ["--vm"] : []),
        ...p,
        ...profileArgs,
        ...cfgArgs,
        ...devCfg,
      ]);
      note(
        `create ${isVm ? "VM" : "container"} (image ${imageFor(d)}, profiles ${(d.profiles ?? []).join(",")})`,
      );
      const ops = Object.entries(devices).map(([name, dev]) =>
        name === "eth0" && d.ip && !(d.devices && "eth0" in d.devices)
          ? {
              name,
              args: ["config", "device", "override", d.name, "eth0", `ipv4.address=${d.ip}`, ...p],
            }
          : {
              name,
              args: deviceArgs([{ op: "add", device: name, keys: dev }], {
                verb: "config",
                name: d.name,
                project: d.project,
              })[0] as string[],
            },
      );
      for (const o of ops) step(`add device ${o.name}`, o.args);
      step("start", ["start", d.name, ...p]);
      if (isVm)
        plan.steps.push({
          desc: `${key}: wait for the VM agent`,
          waitAgent: { name: d.name, project: d.project },
        });
      if (want.context) contextSteps(plan, d, parent, key);
      continue;
    }

    if ((cur.type === "virtual-machine") !== isVm) {
      plan.warnings.push(
        `${key}: is a ${cur.type} but infra.yml says type ${d.type}; delete and re-apply to change the type`,
      );
    }
    const cd = diffConfig(config, cur.config);
    const managedDevs = Object.keys(devices).sort().join(",");
    const setMap: Config = { ...cd.set };
    if ((cur.config[MANAGED_DEVICES] ?? "") !== managedDevs) setMap[MANAGED_DEVICES] = managedDevs;
    if (Object.keys(setMap).length > 0)
      step("set config", ["config", "set", d.name, ...kv(setMap), ...p]);
    for (const c of cd.changes) note(c);

    const wantProfiles = d.profiles ?? ["default"];
    if (wantProfiles.join(",") !== cur.profiles.join(",")) {
      step("assign profiles", ["profile", "assign", d.name, wantProfiles.join(","), ...p]);
      note(`profiles ${cur.profiles.join(",")} -> ${wantProfiles.join(",")}`);
    }

    // eth0 with a static IP: a local override exists or is created with only ipv4.address.
    const dd = diffDevices(devices, cur.devices, splitMarker(cur.config[MANAGED_DEVICES]));
    const ops = dd.ops.map((o) =>
      o.device === "eth0" && o.op === "add" && d.ip && !(d.devices && "eth0" in d.devices)
        ? [["config", "device", "override", d.name, "eth0", `ipv4.address=${d.ip}`, ...p]]
        : deviceArgs([o], { verb: "config", name: d.name, project: d.project }),
    );
    for (const args of ops.flat()) step(`device ${args[2]} ${args[4]}`, args);
    for (const c of dd.changes) note(c);

    const running = cur.status === "Running";
    if (running && dd.ops.length > 0 && want.restart_on_device_change) {
      step("restart (devices changed)", ["restart", d.name, ...p]);
      note("restart (devices changed)");
    } else if (!running && cur.status !== "Running") {
      step(`start (was ${cur.status})`, ["start", d.name, ...p]);
      note(`start (was ${cur.status})`);
      if (isVm)
        plan.steps.push({
          desc: `${key}: wait for the VM agent`,
          waitAgent: { name: d.name, project: d.project },
        });
    }
    if (want.context && cur.config[CONTEXT_KEY] !== contextMarker(childContext(parent, isVm))) {
      contextSteps(plan, d, parent, key);
    }
  }
  planOrphanInstances(want, current, plan);
  return plan;
}

function contextSteps(plan: Plan, d: DesiredInstance, parent: NestingContext, key: string): void {
  const c = childContext(parent, d.type === "vm");
  const vals = [c.absolute_level, c.relative_level, c.vm_nested, c.yolo].map(String);
  plan.steps.push({
    desc: `${key}: write /etc/anklume nesting context`,
    group: key,
    args: ["exec", d.name, "--project", d.project, "--", "sh", "-c", CONTEXT_SCRIPT, "sh", ...vals],
  });
  plan.steps.push({
    desc: `${key}: record nesting context`,
    group: key,
    args: ["config", "set", d.name, `${CONTEXT_KEY}=${contextMarker(c)}`, "--project", d.project],
  });
  plan.changes.push(`${key}: nesting context ${contextMarker(c)}`);
}

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
      plan.steps.push({
        desc: `${i.project}/${i.name}: delete orphan instance`,
        args: ["delete", i.name, "--project", i.project, "--force"],
      });
      plan.changes.push(`${i.project}/${i.name}: delete orphan instance (auto_cleanup)`);
    }
  }
}
