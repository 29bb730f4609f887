import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  appendPlan,
  CONTEXT_KEY,
  type Config,
  childContext,
  contextMarker,
  type Devices,
  deviceArgs,
  dhcpRange,
  diffConfig,
  diffDevices,
  emptyPlan,
  INFRA_KEY,
  incusString,
  kv,
  MANAGED_DEVICES,
  MANAGED_KEYS,
  planSteps,
  splitImageRef,
  splitMarker,
  toConfig,
} from "./reconcile.ts";

/** fast-check runs per property; `make mutation` lowers them through FC_NUM_RUNS. */
const runs = (n: number): number => Number(process.env.FC_NUM_RUNS) || n;

const SEED = Number(process.env.FC_SEED ?? 20261125);

/** Apply a config diff the way `incus config set k=v k2=` does. */
function applyConfig(cur: Config, set: Config): Config {
  const out = { ...cur };
  for (const [k, val] of Object.entries(set)) {
    if (val === "") delete out[k];
    else out[k] = val;
  }
  return out;
}

describe("diffConfig", () => {
  test("sets drifted keys, unsets keys anklume set before, never touches keys set by hand", () => {
    const cur = {
      "user.a": "old",
      "user.gone": "x",
      "user.hand": "mine",
      [MANAGED_KEYS]: "user.a,user.gone",
    };
    const d = diffConfig({ "user.a": "new" }, cur);
    expect(d.set).toEqual({ "user.a": "new", "user.gone": "", [MANAGED_KEYS]: "user.a" });
    expect(d.changes).toEqual(["set user.a=new (was old)", "unset user.gone (was x)"]);
  });

  test("is empty once applied, keeps hand-set keys and holds every desired key (property)", () => {
    const key = fc.constantFrom("user.a", "user.b", "limits.cpu", "boot.autostart", "user.c");
    const cfg = fc.dictionary(key, fc.string({ minLength: 1, maxLength: 4 }));
    fc.assert(
      fc.property(cfg, cfg, cfg, (before, hand, after) => {
        let cur = applyConfig({}, diffConfig(before, {}).set);
        const handOnly = Object.fromEntries(
          Object.entries(hand).filter(([k]) => !(k in before) && !(k in after)),
        );
        cur = { ...cur, ...handOnly };
        cur = applyConfig(cur, diffConfig(after, cur).set);
        for (const [k, val] of Object.entries(after)) expect(cur[k]).toBe(val);
        for (const [k, val] of Object.entries(handOnly)) expect(cur[k]).toBe(val);
        for (const k of Object.keys(before)) if (!(k in after)) expect(cur[k]).toBeUndefined();
        expect(diffConfig(after, cur).set).toEqual({});
      }),
      { seed: SEED, numRuns: runs(300) },
    );
  });

  // Test audit 6.6: open key names, and a ledger (user.anklume.managed_keys)
  // that is absent, corrupt or names keys that no longer exist.
  test("converges in one pass whatever the ledger holds: absent, corrupt, stale (property)", () => {
    const key = fc.oneof(
      fc.constantFrom("user.a", "user.b", "limits.cpu", "boot.autostart"),
      fc.stringMatching(/^user\.[a-z]{1,3}$/),
    );
    const cfg = fc.dictionary(key, fc.string({ minLength: 1, maxLength: 4 }));
    const ledger = fc.oneof(
      fc.constant(undefined),
      fc.constant(""),
      fc.string({ maxLength: 12 }), // corrupt
      fc.array(key, { maxLength: 4 }).map((ks) => ks.join(",")), // may name keys that no longer exist
      fc.array(key, { maxLength: 4 }).map((ks) => ` ${ks.join(" , ")},,`),
    );
    fc.assert(
      fc.property(cfg, cfg, ledger, (current, desired, led) => {
        const cur0: Config = { ...current };
        if (led !== undefined) cur0[MANAGED_KEYS] = led;
        const cur = applyConfig(cur0, diffConfig(desired, cur0).set);
        for (const [k, val] of Object.entries(desired)) expect(cur[k], k).toBe(val);
        // Keys the ledger named and that are no longer desired are gone; others stay.
        const named = new Set(splitMarker(led));
        for (const [k, val] of Object.entries(cur0)) {
          if (k === MANAGED_KEYS || k in desired) continue;
          if (named.has(k)) expect(cur[k], k).toBeUndefined();
          else expect(cur[k], k).toBe(val);
        }
        expect(splitMarker(cur[MANAGED_KEYS])).toEqual(Object.keys(desired).sort());
        expect(diffConfig(desired, cur).set).toEqual({});
      }),
      { seed: SEED, numRuns: runs(500) },
    );
  });

  // Test audit 6.6: Incus stores `k=""` as unset; diffConfig compared
  // undefined !== "" and re-set a desired "" on every apply.
  test('a desired "" is unset once and then converges', () => {
    expect(diffConfig({ "user.a": "" }, { "user.a": "x" }).changes).toEqual([
      "unset user.a (was x)",
    ]);
    const cur = applyConfig({}, diffConfig({ "user.a": "" }, {}).set);
    expect(cur["user.a"]).toBeUndefined();
    expect(diffConfig({ "user.a": "" }, cur).set).toEqual({});
  });
});

describe("diffDevices", () => {
  test("adds, updates key by key, replaces on type change, removes what anklume added", () => {
    const cur: Devices = {
      data: { type: "disk", source: "/a", path: "/old", readonly: "true" },
      gpu: { type: "gpu" },
      old: { type: "disk", source: "/x", path: "/x" },
      hand: { type: "disk", source: "/h", path: "/h" },
    };
    const want: Devices = {
      data: { type: "disk", source: "/a", path: "/new" },
      gpu: { type: "nic", network: "br" },
      fresh: { type: "disk", source: "/f", path: "/f" },
    };
    const { ops } = diffDevices(want, cur, ["data", "gpu", "old"]);
    const args = deviceArgs(ops, { verb: "config", name: "c1", project: "p" });
    expect(args).toEqual([
      ["config", "device", "set", "c1", "data", "path=/new", "--project", "p"],
      ["config", "device", "unset", "c1", "data", "readonly", "--project", "p"],
      ["config", "device", "add", "c1", "fresh", "disk", "path=/f", "source=/f", "--project", "p"],
      ["config", "device", "remove", "c1", "gpu", "--project", "p"],
      ["config", "device", "add", "c1", "gpu", "nic", "network=br", "--project", "p"],
      ["config", "device", "remove", "c1", "old", "--project", "p"],
    ]);
  });

  test("converges in one pass (property)", () => {
    const dev = fc.record({
      type: fc.constantFrom("disk", "nic"),
      path: fc.constantFrom("/a", "/b"),
      extra: fc.option(fc.constantFrom("1", "2"), { nil: undefined }),
    });
    const devs = fc.dictionary(fc.constantFrom("d1", "d2", "d3"), dev).map((m) => {
      const out: Devices = {};
      for (const [k, d] of Object.entries(m)) out[k] = toConfig(d);
      for (const d of Object.values(out)) if (d.extra === "") delete d.extra;
      return out;
    });
    fc.assert(
      fc.property(devs, devs, (cur, want) => {
        const { ops } = diffDevices(want, cur, Object.keys(cur));
        const next: Devices = structuredClone(cur);
        for (const o of ops) {
          if (o.op === "remove") delete next[o.device];
          else if (o.op === "add") next[o.device] = { ...(o.keys as Record<string, string>) };
          else if (o.op === "set") Object.assign(next[o.device] as object, o.keys);
          else
            for (const k of o.keys as string[])
              delete (next[o.device] as Record<string, string>)[k];
        }
        expect(next).toEqual(want);
        expect(diffDevices(want, next, Object.keys(want)).ops).toEqual([]);
      }),
      { seed: SEED, numRuns: runs(300) },
    );
  });
});

test("dhcpRange and splitImageRef", () => {
  expect(dhcpRange("10.100.3.254")).toBe("10.100.3.100-10.100.3.249");
  expect(splitImageRef("images:debian/13")).toEqual({ remote: "images", alias: "debian/13" });
  expect(splitImageRef("anklume-busybox")).toEqual({ remote: null, alias: "anklume-busybox" });
});

test("childContext: absolute +1, relative reset by a VM, vm_nested sticks, yolo inherited", () => {
  const parent = { absolute_level: 1, relative_level: 1, vm_nested: false, yolo: true };
  expect(childContext(parent, false)).toEqual({
    absolute_level: 2,
    relative_level: 2,
    vm_nested: false,
    yolo: true,
  });
  expect(childContext(parent, true)).toEqual({
    absolute_level: 2,
    relative_level: 0,
    vm_nested: true,
    yolo: true,
  });
});

test("planSteps lists a plan in execution order; appendPlan adds a plan part by part", () => {
  const st = (desc: string) => ({ desc });
  const p = {
    ...emptyPlan(),
    before: [st("b")],
    perInstance: [
      { key: "p/x", steps: [st("x1"), st("x2")] },
      { key: "p/y", steps: [st("y1")] },
    ],
    after: [st("a")],
  };
  expect(planSteps(p).map((s) => s.desc)).toEqual(["b", "x1", "x2", "y1", "a"]);
  const more = { ...emptyPlan(), after: [st("a2")], changes: ["c"], warnings: ["w"] };
  const both = appendPlan(p, more);
  expect(planSteps(both).map((s) => s.desc)).toEqual(["b", "x1", "x2", "y1", "a", "a2"]);
  expect([both.changes, both.warnings]).toEqual([["c"], ["w"]]);
});

describe("the small helpers, exactly (mutation survivors)", () => {
  test("the marker keys are the user.anklume.* names Incus objects carry", () => {
    expect([MANAGED_KEYS, MANAGED_DEVICES, INFRA_KEY, CONTEXT_KEY]).toEqual([
      "user.anklume.managed_keys",
      "user.anklume.managed_devices",
      "user.anklume.infra",
      "user.anklume.context",
    ]);
  });
  test("incusString renders YAML scalars as Incus stores them; toConfig maps them", () => {
    expect([null, undefined, true, false, 0, 12, "x", ""].map(incusString)).toEqual([
      "",
      "",
      "true",
      "false",
      "0",
      "12",
      "x",
      "",
    ]);
    expect(toConfig({ a: true, b: null, c: 2 })).toEqual({ a: "true", b: "", c: "2" });
    expect(toConfig(null)).toEqual({});
    expect(toConfig(undefined)).toEqual({});
  });
  test("splitMarker trims, drops empties and sorts; kv sorts by key", () => {
    expect(splitMarker(" b, a,,c ,")).toEqual(["a", "b", "c"]);
    expect(splitMarker(undefined)).toEqual([]);
    expect(splitMarker("")).toEqual([]);
    expect(kv({ b: "2", a: "1" })).toEqual(["a=1", "b=2"]);
  });
  test("emptyPlan is empty; appendPlan appends part by part; planSteps runs before, instances, after", () => {
    expect(emptyPlan()).toEqual({
      before: [],
      perInstance: [],
      after: [],
      changes: [],
      orphans: [],
      warnings: [],
    });
    const st = (desc: string) => ({ desc });
    const a = emptyPlan();
    a.before.push(st("b1"));
    a.changes.push("c1");
    const b = emptyPlan();
    b.before.push(st("b2"));
    b.perInstance.push({ key: "p/i", steps: [st("i1"), st("i2")] });
    b.after.push(st("a1"));
    b.changes.push("c2");
    b.orphans.push({ kind: "profile", name: "x", protected: false, action: "reported" });
    b.warnings.push("w");
    const out = appendPlan(a, b);
    expect(out).toBe(a);
    expect(out.changes).toEqual(["c1", "c2"]);
    expect(out.orphans).toHaveLength(1);
    expect(out.warnings).toEqual(["w"]);
    expect(planSteps(out).map((x) => x.desc)).toEqual(["b1", "b2", "i1", "i2", "a1"]);
  });
  test("diffConfig's change lines say set, set (was), unset (was), and the marker", () => {
    const d = diffConfig(
      { a: "1", b: "2", c: "" },
      { b: "3", c: "x", gone: "g", [MANAGED_KEYS]: "gone" },
    );
    expect(d.changes).toEqual([
      "set a=1",
      "set b=2 (was 3)",
      "unset c (was x)",
      "unset gone (was g)",
    ]);
    expect(d.set).toEqual({ a: "1", b: "2", c: "", gone: "", [MANAGED_KEYS]: "a,b,c" });
    // The marker already right: not set again.
    expect(diffConfig({ a: "1" }, { a: "1", [MANAGED_KEYS]: "a" }).set).toEqual({});
  });
  test("diffDevices' change lines and ops: add, replace, update, unset, remove", () => {
    const d = diffDevices(
      {
        n: { type: "disk", path: "/n" },
        r: { type: "nic", network: "br" },
        u: { type: "disk", path: "/new", source: "/s" },
      },
      {
        r: { type: "disk", path: "/r" },
        u: { type: "disk", path: "/old", source: "/s", readonly: "true" },
        old: { type: "disk", path: "/o" },
        hand: { type: "disk", path: "/h" },
      },
      ["old", "gone"],
    );
    expect(d.changes).toEqual([
      "add device n",
      "replace device r (type disk -> nic)",
      "update device u: path=/new",
      "update device u: unset readonly",
      "remove device old",
    ]);
    expect(d.ops).toEqual([
      { op: "add", device: "n", keys: { type: "disk", path: "/n" } },
      { op: "remove", device: "r" },
      { op: "add", device: "r", keys: { type: "nic", network: "br" } },
      { op: "set", device: "u", keys: { path: "/new" } },
      { op: "unset", device: "u", keys: ["readonly"] },
      { op: "remove", device: "old" },
    ]);
  });
  test("deviceArgs: a device without a type is added as none", () => {
    expect(
      deviceArgs([{ op: "add", device: "x", keys: { path: "/p" } }], {
        verb: "profile",
        name: "pr",
        project: "pj",
      }),
    ).toEqual([["profile", "device", "add", "pr", "x", "none", "path=/p", "--project", "pj"]]);
  });
  test("childContext and contextMarker", () => {
    const parent = { absolute_level: 2, relative_level: 1, vm_nested: false, yolo: true };
    expect(childContext(parent, false)).toEqual({
      absolute_level: 3,
      relative_level: 2,
      vm_nested: false,
      yolo: true,
    });
    expect(childContext(parent, true)).toEqual({
      absolute_level: 3,
      relative_level: 0,
      vm_nested: true,
      yolo: true,
    });
    expect(
      contextMarker({ absolute_level: 3, relative_level: 0, vm_nested: true, yolo: false }),
    ).toBe("3/0/true/false");
    expect(splitImageRef("a:b:c")).toEqual({ remote: "a", alias: "b:c" });
    expect(splitImageRef(":x")).toEqual({ remote: "", alias: "x" });
    expect(dhcpRange("10.1.2.254")).toBe("10.1.2.100-10.1.2.249");
  });
});

describe("orders and absent keys (mutation survivors)", () => {
  test("diffConfig's marker is sorted whatever the order of the desired keys; a ledger key already gone is not unset", () => {
    const d = diffConfig({ b: "1", a: "1" }, { [MANAGED_KEYS]: "a,b,gone" });
    expect(d.set).toEqual({ a: "1", b: "1", [MANAGED_KEYS]: "a,b" });
    expect(d.changes).toEqual(["set b=1", "set a=1"]);
  });
  test("diffDevices lists several set keys and several unset keys, sorted, in one line each", () => {
    const d = diffDevices(
      { n: { type: "disk", path: "/p", source: "/s" } },
      { n: { type: "disk", path: "/o", source: "/t", z: "1", a: "2" } },
      [],
    );
    expect(d.ops).toEqual([
      { op: "set", device: "n", keys: { path: "/p", source: "/s" } },
      { op: "unset", device: "n", keys: ["a", "z"] },
    ]);
    expect(d.changes).toEqual(["update device n: path=/p source=/s", "update device n: unset a z"]);
  });
});
