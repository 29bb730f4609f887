/**
 * Pure reconciliation core for `make apply`: given the desired state (built by
 * the Ansible roles from the generated variables) and the current Incus state
 * (parsed `--format json`), compute the `incus` writes that bring Incus to
 * the desired state, as a Plan. No I/O here: live.ts reads, execute.ts runs.
 *
 * Markers kept on Incus objects so that reconciliation never touches what a
 * human set by hand:
 * - `user.anklume.managed_keys`: comma-separated config keys anklume set;
 * - `user.anklume.managed_devices`: comma-separated device names anklume owns;
 * - `user.anklume.infra`: on projects, bridges and custom profiles, the infra
 *   id (nesting prefix + project_name) that created them (orphan detection);
 * - `user.anklume.context`: on instances, the nesting context written into
 *   the child's /etc/anklume (absolute/relative/vm_nested/yolo).
 */

import type { ParentContext } from "../core/nesting.ts";

export const MANAGED_KEYS = "user.anklume.managed_keys";
export const MANAGED_DEVICES = "user.anklume.managed_devices";
export const INFRA_KEY = "user.anklume.infra";
export const CONTEXT_KEY = "user.anklume.context";

export type Config = Record<string, string>;
export type Device = Record<string, string>;
export type Devices = Record<string, Device>;

/** One step of a plan: a human description and, usually, an incus argument list. */
export interface Step {
  desc: string;
  args?: string[];
  /** Poll `incus exec <name> -- true` until the VM agent answers. */
  waitAgent?: { name: string; project: string };
  /** Write the nesting context files into the instance, then record it in `user.anklume.context`. */
  context?: { name: string; project: string; context: NestingContext };
  /**
   * The same creation as `args`, as the body of `POST /1.0/instances`: taken
   * through the daemon's socket when reads are, else `args` runs.
   */
  create?: { project: string; target?: string; body: Record<string, unknown> };
}

/** An object that Incus holds and the inventory no longer declares. */
export interface IncusOrphan {
  kind: "instance" | "project" | "network" | "profile";
  name: string;
  project?: string;
  protected: boolean;
  action: "reported" | "deleted" | "kept (protected)" | "kept (in use)";
}

/** The steps of one instance (`<project>/<name>`), run in order. */
export interface InstanceSteps {
  key: string;
  steps: Step[];
}

/**
 * What one kind would change. `before` runs in order and stops at its first
 * failure; then each `perInstance` list runs in order, different instances
 * side by side, a failure stopping its own instance only; then `after`
 * (orphan deletions) in order.
 */
export interface Plan {
  before: Step[];
  perInstance: InstanceSteps[];
  after: Step[];
  changes: string[];
  orphans: IncusOrphan[];
  warnings: string[];
}

/** A plan with nothing to do. */
export function emptyPlan(): Plan {
  return { before: [], perInstance: [], after: [], changes: [], orphans: [], warnings: [] };
}

/** Every step of a plan in execution order: before, each instance's list, after. */
export function planSteps(p: Plan): Step[] {
  return [...p.before, ...p.perInstance.flatMap((i) => i.steps), ...p.after];
}

/** Append `more` to `into`, part by part (e.g. the orphan domains into the instances' plan). */
export function appendPlan(into: Plan, more: Plan): Plan {
  into.before.push(...more.before);
  into.perInstance.push(...more.perInstance);
  into.after.push(...more.after);
  into.changes.push(...more.changes);
  into.orphans.push(...more.orphans);
  into.warnings.push(...more.warnings);
  return into;
}

/** Incus stores every config value as a string: render YAML scalars as Incus does. */
export function incusString(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "boolean") return value ? "true" : "false";
  return String(value);
}

/** Stringify every value of a mapping (null/undefined mapping → {}). */
export function toConfig(map: Record<string, unknown> | null | undefined): Config {
  const out: Config = {};
  for (const [k, val] of Object.entries(map ?? {})) out[k] = incusString(val);
  return out;
}

/** Split a comma-separated marker value into a sorted list. */
export function splitMarker(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .sort();
}

/** `k=v` arguments for a mapping, in key order. */
export function kv(map: Config): string[] {
  return Object.keys(map)
    .sort()
    .map((k) => `${k}=${map[k]}`);
}

export interface ConfigDiff {
  /** Keys to set (value "" means unset). */
  set: Config;
  changes: string[];
}

/**
 * Config drift: desired keys that differ are set; keys anklume set before
 * (listed in `managed_keys`) and no longer desired are unset; keys set by hand
 * are never touched. The marker is updated when the managed key set changes.
 */
export function diffConfig(desired: Config, current: Config): ConfigDiff {
  const set: Config = {};
  const changes: string[] = [];
  for (const [k, val] of Object.entries(desired)) {
    // Incus stores `k=""` as no key at all: an absent key is the value "".
    if ((current[k] ?? "") !== val) {
      set[k] = val;
      changes.push(
        val === ""
          ? `unset ${k} (was ${current[k]})`
          : current[k] === undefined
            ? `set ${k}=${val}`
            : `set ${k}=${val} (was ${current[k]})`,
      );
    }
  }
  const before = splitMarker(current[MANAGED_KEYS]);
  const now = Object.keys(desired).sort();
  for (const k of before) {
    if (!(k in desired) && current[k] !== undefined) {
      set[k] = "";
      changes.push(`unset ${k} (was ${current[k]})`);
    }
  }
  const marker = now.join(",");
  if ((current[MANAGED_KEYS] ?? "") !== marker) set[MANAGED_KEYS] = marker;
  return { set, changes };
}

export interface DeviceOp {
  op: "add" | "set" | "unset" | "remove";
  device: string;
  /** add: full device; set: changed keys; unset: keys to remove. */
  keys?: Device | string[];
  type?: string;
}

/**
 * Device drift for the devices anklume owns: missing ones are added, differing
 * ones updated key by key (or replaced when the type changes), ones that
 * anklume added before and no longer declares are removed.
 */
export function diffDevices(
  desired: Devices,
  current: Devices,
  previouslyManaged: string[],
): { ops: DeviceOp[]; changes: string[] } {
  const ops: DeviceOp[] = [];
  const changes: string[] = [];
  for (const name of Object.keys(desired).sort()) {
    const want = desired[name] as Device;
    const have = current[name];
    if (!have) {
      ops.push({ op: "add", device: name, keys: want });
      changes.push(`add device ${name}`);
      continue;
    }
    if (have.type !== want.type) {
      ops.push({ op: "remove", device: name });
      ops.push({ op: "add", device: name, keys: want });
      changes.push(`replace device ${name} (type ${have.type} -> ${want.type})`);
      continue;
    }
    const setKeys: Device = {};
    for (const [k, val] of Object.entries(want)) {
      if (k !== "type" && have[k] !== val) setKeys[k] = val;
    }
    const unsetKeys = Object.keys(have).filter((k) => k !== "type" && !(k in want));
    if (Object.keys(setKeys).length > 0) {
      ops.push({ op: "set", device: name, keys: setKeys });
      changes.push(`update device ${name}: ${kv(setKeys).join(" ")}`);
    }
    if (unsetKeys.length > 0) {
      ops.push({ op: "unset", device: name, keys: unsetKeys.sort() });
      changes.push(`update device ${name}: unset ${unsetKeys.join(" ")}`);
    }
  }
  for (const name of previouslyManaged) {
    if (!(name in desired) && current[name]) {
      ops.push({ op: "remove", device: name });
      changes.push(`remove device ${name}`);
    }
  }
  return { ops, changes };
}

/** Turn device ops into incus argument lists for an instance or a profile. */
export function deviceArgs(
  ops: DeviceOp[],
  target: { verb: "config" | "profile"; name: string; project: string },
): string[][] {
  const base = [target.verb, "device"];
  const out: string[][] = [];
  for (const o of ops) {
    const p = ["--project", target.project];
    if (o.op === "add") {
      const { type, ...rest } = o.keys as Device;
      out.push([...base, "add", target.name, o.device, type ?? "none", ...kv(rest), ...p]);
    } else if (o.op === "set") {
      out.push([...base, "set", target.name, o.device, ...kv(o.keys as Device), ...p]);
    } else if (o.op === "unset") {
      for (const k of o.keys as string[])
        out.push([...base, "unset", target.name, o.device, k, ...p]);
    } else {
      out.push([...base, "remove", target.name, o.device, ...p]);
    }
  }
  return out;
}

/** The /24 DHCP range of a gateway `a.b.c.254`: `a.b.c.100-a.b.c.249`. */
export function dhcpRange(gateway: string): string {
  const net = gateway.split(".").slice(0, 3).join(".");
  return `${net}.100-${net}.249`;
}

/** Split an image reference into remote and alias: `images:debian/13` → ["images", "debian/13"]. */
export function splitImageRef(ref: string): { remote: string | null; alias: string } {
  const i = ref.indexOf(":");
  if (i < 0) return { remote: null, alias: ref };
  return { remote: ref.slice(0, i), alias: ref.slice(i + 1) };
}

/** The nesting context of a child, from its parent's /etc/anklume files (lib/core/nesting.ts reads them). */
export type NestingContext = ParentContext;

/** operations-contract §3.5 step 13: absolute +1; relative 0 for a VM else +1; vm_nested sticks; yolo inherited. */
export function childContext(parent: NestingContext, isVm: boolean): NestingContext {
  return {
    absolute_level: parent.absolute_level + 1,
    relative_level: isVm ? 0 : parent.relative_level + 1,
    vm_nested: isVm || parent.vm_nested,
    yolo: parent.yolo,
  };
}

/** The marker value stored in `user.anklume.context`. */
export function contextMarker(c: NestingContext): string {
  return `${c.absolute_level}/${c.relative_level}/${c.vm_nested}/${c.yolo}`;
}
