import { expect, test } from "bun:test";
import type { IncusInstance as Instance } from "../incus/objects.ts";
import { type InstancesDesired, planInstances } from "./instances.ts";
import { planSteps } from "./reconcile.ts";

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

test("type vm produces `incus launch --vm` with its static IP, waits for the agent, and resets relative_level (fake: VMs cannot start here)", () => {
  const p = planInstances(want({ type: "vm", ip: "10.1.2.3" }), [], ctx, (d) => d.image, new Map());
  const launch = planSteps(p)[0]?.args ?? [];
  expect(launch.slice(0, 5)).toEqual(["launch", "img", "001-v", "--vm", "--project"]);
  expect(launch).toContain("security.protection.delete=true");
  expect(launch.slice(-2)).toEqual(["--device", "eth0,ipv4.address=10.1.2.3"]);
  expect(planSteps(p).map((s) => s.args?.[0] ?? "wait")).toEqual([
    "launch",
    "wait",
    "exec",
    "config",
  ]);
  expect(planSteps(p)[2]?.args?.slice(-4)).toEqual(["1", "0", "true", "false"]);
});

test("a new instance without devices to add is one `incus launch`; with some, init, the devices, then start", () => {
  const bare = planInstances(want(), [], ctx, (d) => d.image, new Map());
  expect(planSteps(bare).map((s) => s.args?.[0])).toEqual(["launch", "exec", "config"]);
  expect(planSteps(bare)[0]?.args).not.toContain("--device");
  const withDev = planInstances(
    want({ devices: { gpu: { type: "gpu" } } }),
    [],
    ctx,
    (d) => d.image,
    new Map(),
  );
  expect(planSteps(withDev).map((s) => s.args?.slice(0, 3).join(" "))).toEqual([
    expect.stringMatching(/^init img /),
    "config device add",
    "start 001-v --project",
    expect.stringMatching(/^exec /),
    expect.stringMatching(/^config set /),
  ]);
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
  expect(planSteps(p).map((s) => s.args?.join(" "))).toEqual([
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
  expect(planSteps(same)).toEqual([]);
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
  expect(p.after.map((s) => s.args?.join(" "))).toEqual(["delete 001-eph --project 001-p --force"]);
  expect(p.perInstance).toEqual([]);
});

test("storage volumes: created with their size, resized when the size changes, attached when they have a path", () => {
  const w = want({ storage_volumes: { data: { pool: null, size: "1GiB", path: "/srv" } } });
  const created = planInstances(w, [], ctx, (d) => d.image, new Map());
  expect(planSteps(created)[0]?.args).toEqual([
    "storage",
    "volume",
    "create",
    "default",
    "data",
    "size=1GiB",
    "--project",
    "001-p",
  ]);
  expect(planSteps(created).map((s) => s.args?.join(" "))).toContain(
    "config device add 001-v data disk path=/srv pool=default source=data --project 001-p",
  );
  const resized = planInstances(
    w,
    [],
    ctx,
    (d) => d.image,
    new Map([["001-p/default/data", { size: "512MiB" }]]),
  );
  expect(planSteps(resized)[0]?.args).toEqual([
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

test("planInstances gives each new instance one independent step list: volume, init, devices, start, context", () => {
  const base = want().instances[0] as InstancesDesired["instances"][number];
  const w: InstancesDesired = {
    ...want(),
    instances: ["a", "b", "c"].map((n) => ({
      ...base,
      name: n,
      ip: `10.1.2.${n.charCodeAt(0)}`,
      storage_volumes: { [`vol-${n}`]: { pool: null, size: null, path: "/srv" } },
    })),
  };
  const p = planInstances(w, [], ctx, (d) => d.image, new Map());
  expect(p.before).toEqual([]);
  expect(p.after).toEqual([]);
  expect(p.perInstance.map((i) => i.key)).toEqual(["001-p/a", "001-p/b", "001-p/c"]);
  for (const { key, steps } of p.perInstance) {
    const n = key.split("/")[1] as string;
    // Nothing of another instance: every step names this one, and only this one.
    for (const s of steps) {
      expect(s.desc.startsWith(`${key}: `), s.desc).toBe(true);
      const others = ["a", "b", "c"].filter((x) => x !== n);
      const foreign = (s.args ?? []).filter((a) =>
        others.some((o) => a === o || a.includes(`vol-${o}`)),
      );
      expect(foreign, s.desc).toEqual([]);
    }
    expect(steps.map((s) => s.desc.slice(key.length + 2))).toEqual([
      `create storage volume default/vol-${n}`,
      "create container from img",
      `add device vol-${n}`,
      "start",
      "write /etc/anklume nesting context",
      "record nesting context",
    ]);
  }
});

test("a converged instance has no step list; a drifted one has its own", () => {
  const running = {
    name: "001-v",
    project: "001-p",
    status: "Running",
    type: "container",
    profiles: ["default"],
    config: {
      "security.protection.delete": "true",
      "user.anklume.managed_keys": "security.protection.delete",
      "user.anklume.context": "1/1/false/false",
    },
    devices: {},
    expanded_config: {},
    expanded_devices: {},
    snapshots: null,
  } as Instance;
  const w = {
    ...want(),
    instances: [
      want().instances[0] as InstancesDesired["instances"][number],
      { ...(want().instances[0] as InstancesDesired["instances"][number]), name: "001-w" },
    ],
  };
  const p = planInstances(
    w,
    [running, { ...running, name: "001-w", status: "Stopped" }],
    ctx,
    (d) => d.image,
    new Map(),
  );
  expect(p.perInstance).toEqual([
    {
      key: "001-p/001-w",
      steps: [
        {
          desc: "001-p/001-w: start (was Stopped)",
          args: ["start", "001-w", "--project", "001-p"],
        },
      ],
    },
  ]);
});
