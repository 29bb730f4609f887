/**
 * Pure reconciliation core for `make apply`: given the desired state (built by
 * the Ansible roles from the generated variables) and the current Incus state
 * (parsed `--format json`), compute the list of `incus` writes that bring
 * Incus to the desired state. No I/O here: scripts/reconcile.ts reads and runs.
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
  /** Steps of one group (an instance) are skipped once one of them failed; other groups go on. */
  group?: string;
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
    if (current[k] !== val) {
      set[k] = val;
      changes.push(
        current[k] === undefined ? `set ${k}=${val}` : `set ${k}=${val} (was ${current[k]})`,
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

/** The nesting context of a child, from its parent's /etc/anklume files. */
export interface NestingContext {
  absolute_level: number;
  relative_level: number;
  vm_nested: boolean;
  yolo: boolean;
}

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

/** The POSIX sh program (run with `sh -c`) that writes the four context files. */
export const CONTEXT_SCRIPT =
  'mkdir -p /etc/anklume && printf "%s\\n" "$1" > /etc/anklume/absolute_level && printf "%s\\n" "$2" > /etc/anklume/relative_level && printf "%s\\n" "$3" > /etc/anklume/vm_nested && printf "%s\\n" "$4" > /etc/anklume/yolo';

/** A run of steps: one ungrouped step, or several groups that may run side by side. */
export type Batch = { step: Step } | { groups: Step[][] };

/**
 * Cut a plan into batches for execution: consecutive grouped steps (one group
 * per instance) form one batch of independent groups, each kept in order; an
 * ungrouped step is a batch of its own, run after everything before it.
 */
export function batches(steps: Step[]): Batch[] {
  const out: Batch[] = [];
  let current: Map<string, Step[]> | null = null;
  for (const s of steps) {
    if (!s.group) {
      current = null;
      out.push({ step: s });
      continue;
    }
    if (!current) {
      current = new Map();
      out.push({ groups: [] });
    }
    const list = current.get(s.group) ?? [];
    if (list.length === 0) {
      current.set(s.group, list);
      (out[out.length - 1] as { groups: Step[][] }).groups.push(list);
    }
    list.push(s);
  }
  return out;
}
