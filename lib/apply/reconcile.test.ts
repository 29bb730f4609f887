import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import type { IncusInstance as Instance } from "../incus/objects.ts";
import { type InstancesDesired, planInstances } from "./instances.ts";
import {
  firewallInterfaces,
  planDomainOrphans,
  planFirewall,
  planImages,
  planNetworks,
  planProfiles,
  planProjects,
} from "./kinds.ts";
import {
  batches,
  type Config,
  childContext,
  type Devices,
  deviceArgs,
  dhcpRange,
  diffConfig,
  diffDevices,
  MANAGED_KEYS,
  splitImageRef,
  toConfig,
} from "./reconcile.ts";

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
      { seed: SEED, numRuns: 300 },
    );
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
      { seed: SEED, numRuns: 300 },
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

test("planProjects creates with v1 features and the infra marker, fixes the description", () => {
  const p = planProjects(
    {
      infra: "001-x",
      features: {},
      projects: [
        { name: "001-a", description: "A" },
        { name: "001-b", description: "B" },
      ],
    },
    [
      {
        name: "001-b",
        description: "old",
        config: {
          "user.anklume.infra": "001-x",
          "features.images": "true",
          "features.profiles": "true",
          "features.storage.volumes": "true",
        },
      },
    ],
  );
  expect(p.steps.map((s) => s.args)).toEqual([
    [
      "project",
      "create",
      "001-a",
      "-c",
      "features.images=true",
      "-c",
      "features.networks=false",
      "-c",
      "features.profiles=true",
      "-c",
      "features.storage.volumes=true",
      "-c",
      "user.anklume.infra=001-x",
      "--description",
      "A",
    ],
    ["project", "set", "001-b", "description", "B", "--property"],
  ]);
});

test("planNetworks: a new bridge gets gateway/24, DHCP .100-.249, NAT as asked, IPv6 off; drift is one set call", () => {
  const create = planNetworks(
    { infra: "i", nat: false, networks: [{ name: "001-net-a", gateway: "10.1.2.254" }] },
    [],
  );
  expect(create.steps[0]?.args).toEqual([
    "network",
    "create",
    "001-net-a",
    "ipv4.address=10.1.2.254/24",
    "ipv4.dhcp.ranges=10.1.2.100-10.1.2.249",
    "ipv4.firewall=true",
    "ipv4.nat=false",
    "ipv6.address=none",
    "user.anklume.infra=i",
  ]);
  const cfg = {
    "ipv4.address": "10.1.2.254/24",
    "ipv4.nat": "true",
    "ipv4.firewall": "true",
    "ipv4.dhcp.ranges": "x",
    "ipv6.address": "none",
    "user.anklume.infra": "i",
  };
  const drift = planNetworks(
    { infra: "i", nat: false, networks: [{ name: "001-net-a", gateway: "10.1.2.254" }] },
    [{ name: "001-net-a", config: cfg }],
  );
  expect(drift.steps.map((s) => s.args)).toEqual([
    ["network", "set", "001-net-a", "ipv4.dhcp.ranges=10.1.2.100-10.1.2.249", "ipv4.nat=false"],
  ]);
  expect(
    planNetworks(
      { infra: "i", nat: true, networks: [{ name: "001-net-a", gateway: "10.1.2.254" }] },
      [{ name: "001-net-a", config: { ...cfg, "ipv4.dhcp.ranges": "10.1.2.100-10.1.2.249" } }],
    ).steps,
  ).toEqual([]);
});

test("planProfiles puts eth0 (filtering on) and root on a new project's default profile in the same run", () => {
  const p = planProfiles(
    {
      infra: "i",
      pool: "default",
      keep: [],
      nic_filtering: true,
      domains: [
        {
          project: "p",
          bridge: "br",
          profiles: { gpu: { config: { "limits.cpu": 2 }, devices: { gpu: { type: "gpu" } } } },
        },
      ],
    },
    [],
    false,
  );
  const args = p.steps.map((s) => s.args?.join(" "));
  expect(args).toContain(
    "profile device add default eth0 nic name=eth0 network=br security.ipv4_filtering=true security.ipv6_filtering=true security.mac_filtering=true --project p",
  );
  expect(args).toContain("profile device add default root disk path=/ pool=default --project p");
  expect(args).toContain("profile create gpu --project p");
  expect(args).toContain(
    "profile set gpu limits.cpu=2 user.anklume.infra=i user.anklume.managed_devices=gpu user.anklume.managed_keys=limits.cpu,user.anklume.infra --project p",
  );
  expect(args).toContain("profile device add gpu gpu gpu --project p");
});

test("planImages copies a local alias into each project with --mode relay, and says how to fix a missing one", () => {
  const images = [
    { fingerprint: "f1", project: "default", aliases: [{ name: "anklume-busybox" }] },
  ];
  const p = planImages(
    {
      source_project: "default",
      images: [
        { project: "001-a", ref: "anklume-busybox" },
        { project: "001-a", ref: "anklume-busybox" },
      ],
    },
    images,
  );
  expect(p.steps.map((s) => s.args)).toEqual([
    [
      "image",
      "copy",
      "anklume-busybox",
      "local:",
      "--project",
      "default",
      "--target-project",
      "001-a",
      "--alias",
      "anklume-busybox",
      "--mode",
      "relay",
    ],
  ]);
  expect(
    planImages(
      { source_project: "default", images: [{ project: "001-a", ref: "anklume-busybox" }] },
      [...images, { fingerprint: "f1", project: "001-a", aliases: [{ name: "anklume-busybox" }] }],
    ).steps,
  ).toEqual([]);
  expect(() =>
    planImages({ source_project: "default", images: [{ project: "001-a", ref: "nope" }] }, images),
  ).toThrow(/Cannot find image "nope".*OS_IMAGE=/);
  expect(
    planImages(
      { source_project: "default", images: [{ project: "001-a", ref: "images:debian/13" }] },
      images,
    ).steps[0]?.args?.slice(0, 4),
  ).toEqual(["image", "copy", "images:debian/13", "local:"]);
});

const want = (over: Partial<InstancesDesired["instances"][number]> = {}): InstancesDesired => ({
  instances: [
    {
      name: "001-v",
      project: "001-p",
      type: "lxc",
      image: "img",
      profiles: ["default"],
      config: {},
      devices: {},
      storage_volumes: {},
      ephemeral: false,
      ip: null,
      bridge: "br",
      ...over,
    },
  ],
  declared: [],
  projects: ["001-p"],
  auto_cleanup: false,
  default_pool: "default",
  restart_on_device_change: true,
  context: true,
});
const ctx = { absolute_level: 0, relative_level: 0, vm_nested: false, yolo: false };

test("type vm produces `incus init --vm`, waits for the agent, and resets relative_level (fake: VMs cannot start here)", () => {
  const p = planInstances(want({ type: "vm", ip: "10.1.2.3" }), [], ctx, (d) => d.image, new Map());
  const init = p.steps[0]?.args ?? [];
  expect(init.slice(0, 5)).toEqual(["init", "img", "001-v", "--vm", "--project"]);
  expect(init).toContain("security.protection.delete=true");
  expect(p.steps.map((s) => s.args?.[0] ?? "wait")).toEqual([
    "init",
    "config",
    "start",
    "wait",
    "exec",
    "config",
  ]);
  expect(p.steps[1]?.args).toEqual([
    "config",
    "device",
    "override",
    "001-v",
    "eth0",
    "ipv4.address=10.1.2.3",
    "--project",
    "001-p",
  ]);
  expect(p.steps[4]?.args?.slice(-4)).toEqual(["1", "0", "true", "false"]);
});

test("an existing instance: config, profiles, eth0 address and stopped state are reconciled", () => {
  const cur = {
    name: "001-v",
    project: "001-p",
    status: "Stopped",
    type: "container",
    profiles: ["default"],
    config: {
      "security.protection.delete": "true",
      "user.anklume.managed_keys": "security.protection.delete",
      "user.anklume.managed_devices": "eth0",
      "user.anklume.context": "1/1/false/false",
    },
    devices: { eth0: { type: "nic", network: "br", name: "eth0", "ipv4.address": "10.1.2.3" } },
    expanded_config: {},
    expanded_devices: {
      eth0: { type: "nic", network: "br", name: "eth0", "ipv4.address": "10.1.2.3" },
    },
    snapshots: null,
  } as Instance;
  const p = planInstances(
    want({ ip: "10.1.2.4", ephemeral: true, profiles: ["default", "x"] }),
    [cur],
    ctx,
    (d) => d.image,
    new Map(),
  );
  expect(p.steps.map((s) => s.args?.join(" "))).toEqual([
    "config set 001-v security.protection.delete=false --project 001-p",
    "profile assign 001-v default,x --project 001-p",
    "config device set 001-v eth0 ipv4.address=10.1.2.4 --project 001-p",
    "start 001-v --project 001-p",
  ]);
  const same = planInstances(
    want({ ip: "10.1.2.3" }),
    [{ ...cur, status: "Running" }],
    ctx,
    (d) => d.image,
    new Map(),
  );
  expect(same.steps).toEqual([]);
});

test("orphan instances: reported, deleted only with auto_cleanup and when unprotected", () => {
  const mk = (name: string, prot: string) =>
    ({
      name,
      project: "001-p",
      status: "Running",
      type: "container",
      profiles: [],
      config: { "security.protection.delete": prot },
      devices: {},
      expanded_config: {},
      expanded_devices: {},
      snapshots: null,
    }) as Instance;
  const cur = [
    mk("001-eph", "false"),
    mk("001-keep", "true"),
    { ...mk("001-other", "false"), project: "elsewhere" },
  ];
  const w = { ...want(), instances: [] };
  expect(
    planInstances(w, cur, ctx, (d) => d.image, new Map()).orphans.map(
      (o) => `${o.name}:${o.action}`,
    ),
  ).toEqual(["001-eph:reported", "001-keep:reported"]);
  const p = planInstances({ ...w, auto_cleanup: true }, cur, ctx, (d) => d.image, new Map());
  expect(p.orphans.map((o) => `${o.name}:${o.action}`)).toEqual([
    "001-eph:deleted",
    "001-keep:kept (protected)",
  ]);
  expect(p.steps.map((s) => s.args?.join(" "))).toEqual(["delete 001-eph --project 001-p --force"]);
});

test("orphan domains: a project with a protected instance is kept; a bridge used only by deleted projects goes", () => {
  const mark = { "user.anklume.infra": "i" };
  const p = planDomainOrphans(
    { infra: "i", projects: ["001-a"], networks: ["001-net-a"], auto_cleanup: true },
    {
      projects: [
        { name: "001-a", config: mark },
        { name: "001-b", config: mark },
        { name: "001-c", config: mark },
        { name: "foreign", config: {} },
      ],
      networks: [
        { name: "001-net-b", config: mark, used_by: ["/1.0/profiles/default?project=001-b"] },
        { name: "001-net-c", config: mark, used_by: ["/1.0/profiles/default?project=001-c"] },
      ],
      instances: [
        { name: "x", project: "001-c", config: { "security.protection.delete": "true" } },
      ],
      images: [{ fingerprint: "f", project: "001-b", aliases: [] }],
      profiles: [],
    },
  );
  expect(p.orphans.map((o) => `${o.kind} ${o.name}: ${o.action}`)).toEqual([
    "project 001-b: deleted",
    "instance x: kept (protected)",
    "project 001-c: kept (protected)",
    "network 001-net-b: deleted",
    "network 001-net-c: kept (in use)",
  ]);
  expect(p.steps.map((s) => s.args?.join(" "))).toEqual([
    "image delete f --project 001-b",
    "project delete 001-b",
    "network delete 001-net-b",
  ]);
});

test("the firewall VM profile has one NIC per bridge, admin first, and drops NICs of vanished bridges (fake: VMs cannot start here)", () => {
  expect(firewallInterfaces(["001-net-anklume", "001-net-a"])).toEqual([
    { name: "eth0", bridge: "001-net-anklume" },
    { name: "eth1", bridge: "001-net-a" },
  ]);
  const cur = [
    {
      name: "firewall-multi-nic",
      project: "001-anklume",
      config: { "user.anklume.infra": "i", "user.anklume.managed_devices": "eth0,eth1,eth2" },
      devices: {
        eth0: { type: "nic", network: "001-net-anklume", name: "eth0" },
        eth1: { type: "nic", network: "001-net-old", name: "eth1" },
        eth2: { type: "nic", network: "001-net-b", name: "eth2" },
      },
    },
  ];
  const p = planFirewall(
    {
      infra: "i",
      project: "001-anklume",
      profile: "firewall-multi-nic",
      bridges: ["001-net-anklume", "001-net-a"],
    },
    cur,
  );
  expect(p.steps.map((s) => s.args?.join(" "))).toEqual([
    "profile set firewall-multi-nic user.anklume.managed_devices=eth0,eth1 --project 001-anklume",
    "profile device set firewall-multi-nic eth1 network=001-net-a --project 001-anklume",
    "profile device remove firewall-multi-nic eth2 --project 001-anklume",
  ]);
});

test("a project or bridge marked by another infra is not taken over (a warning says so)", () => {
  const p = planProjects(
    { infra: "001-mine", features: {}, projects: [{ name: "001-a", description: "" }] },
    [
      {
        name: "001-a",
        description: "",
        config: {
          "user.anklume.infra": "001-other",
          "features.images": "true",
          "features.profiles": "true",
          "features.storage.volumes": "true",
        },
      },
    ],
  );
  expect(p.steps).toEqual([]);
  expect(p.warnings[0]).toContain('belongs to infra "001-other"');
  const cfg = {
    "ipv4.address": "10.1.2.254/24",
    "ipv4.nat": "true",
    "ipv4.firewall": "true",
    "ipv4.dhcp.ranges": "10.1.2.100-10.1.2.249",
    "ipv6.address": "none",
    "user.anklume.infra": "001-other",
  };
  const n = planNetworks(
    { infra: "001-mine", nat: true, networks: [{ name: "br", gateway: "10.1.2.254" }] },
    [{ name: "br", config: cfg }],
  );
  expect(n.steps).toEqual([]);
  expect(n.warnings.length).toBe(1);
  // An unmarked project (a v1 install) is adopted.
  const v1 = planProjects(
    { infra: "001-mine", features: {}, projects: [{ name: "001-a", description: "" }] },
    [
      {
        name: "001-a",
        description: "",
        config: {
          "features.images": "true",
          "features.profiles": "true",
          "features.storage.volumes": "true",
        },
      },
    ],
  );
  expect(v1.steps.map((s) => s.args)).toEqual([
    ["project", "set", "001-a", "user.anklume.infra=001-mine"],
  ]);
});

test("storage volumes: created with their size, resized when the size changes, attached when they have a path", () => {
  const w = want({ storage_volumes: { data: { pool: null, size: "1GiB", path: "/srv" } } });
  const created = planInstances(w, [], ctx, (d) => d.image, new Map());
  expect(created.steps[0]?.args).toEqual([
    "storage",
    "volume",
    "create",
    "default",
    "data",
    "size=1GiB",
    "--project",
    "001-p",
  ]);
  expect(created.steps.map((s) => s.args?.join(" "))).toContain(
    "config device add 001-v data disk path=/srv pool=default source=data --project 001-p",
  );
  const resized = planInstances(
    w,
    [],
    ctx,
    (d) => d.image,
    new Map([["001-p/default/data", { size: "512MiB" }]]),
  );
  expect(resized.steps[0]?.args).toEqual([
    "storage",
    "volume",
    "set",
    "default",
    "data",
    "size=1GiB",
    "--project",
    "001-p",
  ]);
});

test("batches: each instance's steps stay in order, instances side by side, ungrouped steps alone", () => {
  const st = (desc: string, group?: string) => ({ desc, ...(group ? { group } : {}) });
  const b = batches([st("a1", "a"), st("b1", "b"), st("a2", "a"), st("x"), st("c1", "c")]);
  expect(b).toEqual([
    { groups: [[st("a1", "a"), st("a2", "a")], [st("b1", "b")]] },
    { step: st("x") },
    { groups: [[st("c1", "c")]] },
  ]);
});
