import { describe, expect, test } from "bun:test";
import type { IncusInstance as Instance } from "../incus/objects.ts";
import { type InstancesDesired, planInstances } from "./instances.ts";
import { contextMarker, planSteps, type Step } from "./reconcile.ts";

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
/** The image as the instance names it, a project that does not hold it: created by the CLI. */
const byCli = (d: { image: string }) => ({ ref: d.image, inProject: false });
/** The same image, held by the project: created through the socket. */
const held = (d: { image: string }) => ({ ref: d.image, inProject: true });

test("type vm produces `incus launch --vm` with its static IP, waits for the agent, and resets relative_level (fake: VMs cannot start here)", () => {
  const p = planInstances(want({ type: "vm", ip: "10.1.2.3" }), [], ctx, byCli, new Map());
  const launch = planSteps(p)[0]?.args ?? [];
  expect(launch.slice(0, 5)).toEqual(["launch", "img", "001-v", "--vm", "--project"]);
  expect(launch).toContain("security.protection.delete=true");
  expect(launch.slice(-2)).toEqual(["--device", "eth0,ipv4.address=10.1.2.3"]);
  const kind = (s: Step) => s.args?.[0] ?? (s.waitAgent ? "wait" : "context");
  expect(planSteps(p).map(kind)).toEqual(["launch", "wait", "context"]);
  expect(planSteps(p)[2]?.context).toEqual({
    name: "001-v",
    project: "001-p",
    context: { absolute_level: 1, relative_level: 0, vm_nested: true, yolo: false },
  });
});

test("a new instance without devices to add is one `incus launch`; with some, init, the devices, then start", () => {
  const bare = planInstances(want(), [], ctx, byCli, new Map());
  expect(planSteps(bare).map((s) => s.args?.[0] ?? s.context?.name)).toEqual(["launch", "001-v"]);
  expect(planSteps(bare)[0]?.args).not.toContain("--device");
  const withDev = planInstances(
    want({ devices: { gpu: { type: "gpu" } } }),
    [],
    ctx,
    byCli,
    new Map(),
  );
  expect(planSteps(withDev).map((s) => s.args?.slice(0, 3).join(" "))).toEqual([
    expect.stringMatching(/^init img /),
    "config device add",
    "start 001-v --project",
    undefined,
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
    byCli,
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
    byCli,
    new Map(),
  );
  expect(planSteps(same)).toEqual([]);
});

test("target: a new instance is created on that cluster member; one on another member is only warned about, never moved", () => {
  const fresh = planInstances(want({ target: "m2" }), [], ctx, byCli, new Map());
  const launch = planSteps(fresh)[0]?.args ?? [];
  expect(launch.slice(launch.indexOf("--target"), launch.indexOf("--target") + 2)).toEqual([
    "--target",
    "m2",
  ]);
  expect(fresh.changes.some((c) => c.includes("on member m2"))).toBe(true);
  expect(planSteps(planInstances(want(), [], ctx, byCli, new Map()))[0]?.args).not.toContain(
    "--target",
  );
  const cur = {
    name: "001-v",
    project: "001-p",
    status: "Running",
    type: "container",
    profiles: ["default"],
    config: {
      "security.protection.delete": "true",
      "user.anklume.managed_keys": "security.protection.delete",
      "user.anklume.managed_devices": "",
      "user.anklume.context": "1/1/false/false",
    },
    devices: {},
    expanded_config: {},
    expanded_devices: {},
    snapshots: null,
    location: "m1",
  } as Instance;
  const moved = planInstances(want({ target: "m2" }), [cur], ctx, byCli, new Map());
  expect(planSteps(moved)).toEqual([]);
  expect(moved.warnings).toEqual([
    '001-p/001-v: runs on cluster member "m1" but infra.yml says target "m2": not moved (anklume never deletes and re-creates a machine for this); move it with: incus move 001-v --project 001-p --target m2',
  ]);
  const here = planInstances(want({ target: "m1" }), [cur], ctx, byCli, new Map());
  expect(here.warnings).toEqual([]);
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
    planInstances(w, cur, ctx, byCli, new Map()).orphans.map((o) => `${o.name}:${o.action}`),
  ).toEqual(["001-eph:reported", "001-keep:reported"]);
  const p = planInstances({ ...w, auto_cleanup: true }, cur, ctx, byCli, new Map());
  expect(p.orphans.map((o) => `${o.name}:${o.action}`)).toEqual([
    "001-eph:deleted",
    "001-keep:kept (protected)",
  ]);
  expect(p.after.map((s) => s.args?.join(" "))).toEqual(["delete 001-eph --project 001-p --force"]);
  expect(p.perInstance).toEqual([]);
});

test("storage volumes: created with their size, resized when the size changes, attached when they have a path", () => {
  const w = want({ storage_volumes: { data: { pool: null, size: "1GiB", path: "/srv" } } });
  const created = planInstances(w, [], ctx, byCli, new Map());
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
    byCli,
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
  const p = planInstances(w, [], ctx, byCli, new Map());
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
      "write and record the nesting context",
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
    byCli,
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

describe("an existing instance, the whole plan (mutation survivors)", () => {
  const w = want({
    type: "vm",
    profiles: ["default", "big"],
    config: { "limits.cpu": 2, "boot.host_shutdown_timeout": null },
    devices: { data: { type: "disk", source: "/srv", path: "/data" } },
    ip: "10.1.2.9",
    boot_autostart: true,
    boot_priority: 10,
    snapshots_schedule: "@daily",
    snapshots_expiry: "2w",
  });
  const cur = {
    name: "001-v",
    project: "001-p",
    status: "Running",
    type: "container",
    profiles: ["default"],
    config: {
      "limits.cpu": "1",
      "security.protection.delete": "true",
      "user.anklume.managed_keys": "limits.cpu,security.protection.delete",
      "user.anklume.managed_devices": "data",
      "user.anklume.context": "1/1/false/false",
    },
    devices: { data: { type: "disk", source: "/old", path: "/data" } },
    expanded_config: {},
    expanded_devices: { eth0: { type: "nic", network: "br", name: "eth0" } },
    snapshots: null,
  } as unknown as Instance;
  const lines = (p: ReturnType<typeof planInstances>) =>
    planSteps(p).map(
      (s) =>
        `${s.desc} | ${(s.args ?? []).join(" ")}${s.waitAgent ? "wait" : ""}${s.context ? `${s.context.project}/${s.context.name} ${contextMarker(s.context.context)}` : ""}`,
    );
  const config =
    "001-p/001-v: set config | config set 001-v boot.autostart=true boot.autostart.priority=10 limits.cpu=2 snapshots.expiry=2w snapshots.schedule=@daily user.anklume.managed_devices=data,eth0 user.anklume.managed_keys=boot.autostart,boot.autostart.priority,boot.host_shutdown_timeout,limits.cpu,security.protection.delete,snapshots.expiry,snapshots.schedule --project 001-p";
  const drift = [
    "001-p/001-v: set limits.cpu=2 (was 1)",
    "001-p/001-v: set boot.autostart=true",
    "001-p/001-v: set boot.autostart.priority=10",
    "001-p/001-v: set snapshots.schedule=@daily",
    "001-p/001-v: set snapshots.expiry=2w",
    "001-p/001-v: profiles default -> default,big",
    "001-p/001-v: update device data: source=/srv",
    "001-p/001-v: add device eth0",
  ];

  test("running: config with the derived keys, profiles, a device update, the eth0 override, a restart, the new context; a type change is only warned about", () => {
    const p = planInstances(w, [cur], ctx, byCli, new Map());
    expect(lines(p)).toEqual([
      config,
      "001-p/001-v: assign profiles | profile assign 001-v default,big --project 001-p",
      "001-p/001-v: device set data | config device set 001-v data source=/srv --project 001-p",
      "001-p/001-v: device override eth0 | config device override 001-v eth0 ipv4.address=10.1.2.9 --project 001-p",
      "001-p/001-v: restart (devices changed) | restart 001-v --project 001-p",
      "001-p/001-v: write and record the nesting context | 001-p/001-v 1/0/true/false",
    ]);
    expect(p.changes).toEqual([
      ...drift,
      "001-p/001-v: restart (devices changed)",
      "001-p/001-v: nesting context 1/0/true/false",
    ]);
    expect(p.warnings).toEqual([
      "001-p/001-v: is a container but infra.yml says type vm; delete and re-apply to change the type",
    ]);
  });

  test("stopped, without restart_on_device_change or context: started, then the VM agent is waited for", () => {
    const p = planInstances(
      { ...w, restart_on_device_change: false, context: false },
      [{ ...cur, status: "Stopped" } as Instance],
      ctx,
      byCli,
      new Map(),
    );
    expect(lines(p)).toEqual([
      config,
      "001-p/001-v: assign profiles | profile assign 001-v default,big --project 001-p",
      "001-p/001-v: device set data | config device set 001-v data source=/srv --project 001-p",
      "001-p/001-v: device override eth0 | config device override 001-v eth0 ipv4.address=10.1.2.9 --project 001-p",
      "001-p/001-v: start (was Stopped) | start 001-v --project 001-p",
      "001-p/001-v: wait for the VM agent | wait",
    ]);
    expect(p.changes).toEqual([...drift, "001-p/001-v: start (was Stopped)"]);
  });

  test("running, devices changed, restart_on_device_change off: no restart", () => {
    const p = planInstances(
      { ...w, restart_on_device_change: false },
      [cur],
      ctx,
      byCli,
      new Map(),
    );
    expect(lines(p).filter((l) => l.includes("restart"))).toEqual([]);
  });
});

describe("a new instance, the whole plan (mutation survivors)", () => {
  const lines = (p: ReturnType<typeof planInstances>) =>
    planSteps(p).map(
      (s) =>
        `${s.desc} | ${(s.args ?? []).join(" ")}${s.waitAgent ? "wait" : ""}${s.context ? `${s.context.project}/${s.context.name} ${contextMarker(s.context.context)}` : ""}`,
    );
  test("a container with a volume, a device and a static IP: init with the override, the devices, start, context", () => {
    const p = planInstances(
      {
        ...want({
          profiles: ["default", "big"],
          config: { "limits.cpu": 1 },
          devices: { gpu: { type: "gpu" } },
          storage_volumes: { vol: { pool: "fast", size: "1GiB", path: "/v" } },
          ip: "10.1.2.5",
          ephemeral: true,
        }),
        context: true,
      },
      [],
      { absolute_level: 1, relative_level: 2, vm_nested: true, yolo: true },
      () => ({ ref: "local-img", inProject: true }),
      new Map(),
    );
    expect(lines(p)).toEqual([
      "001-p/001-v: create storage volume fast/vol | storage volume create fast vol size=1GiB --project 001-p",
      "001-p/001-v: create container from local-img | init local-img 001-v --project 001-p --profile default --profile big -c limits.cpu=1 -c security.protection.delete=false -c user.anklume.managed_keys=limits.cpu,security.protection.delete -c user.anklume.managed_devices=eth0,gpu,vol --device eth0,ipv4.address=10.1.2.5",
      "001-p/001-v: add device gpu | config device add 001-v gpu gpu --project 001-p",
      "001-p/001-v: add device vol | config device add 001-v vol disk path=/v pool=fast source=vol --project 001-p",
      "001-p/001-v: start | start 001-v --project 001-p",
      "001-p/001-v: write and record the nesting context | 001-p/001-v 2/3/true/true",
    ]);
    expect(p.changes).toEqual([
      "001-p/001-v: create storage volume fast/vol",
      "001-p/001-v: create container (image local-img, profiles default,big)",
      "001-p/001-v: nesting context 2/3/true/true",
    ]);
    expect(p.warnings).toEqual([]);
  });
  test("without context: one launch and nothing else", () => {
    const p = planInstances({ ...want(), context: false }, [], ctx, byCli, new Map());
    expect(lines(p)).toEqual([
      "001-p/001-v: create and start container from img | launch img 001-v --project 001-p --profile default -c security.protection.delete=true -c user.anklume.managed_keys=security.protection.delete",
    ]);
  });
});

describe("creation through the socket", () => {
  test("a new machine whose project holds its image: the launch carries the same creation as a POST body", () => {
    const [launch] = planSteps(planInstances(want({ target: "m2" }), [], ctx, held, new Map()));
    expect(launch?.args?.slice(0, 3)).toEqual(["launch", "img", "001-v"]);
    expect(launch?.create).toEqual({
      project: "001-p",
      target: "m2",
      body: {
        name: "001-v",
        type: "container",
        source: { type: "image", alias: "img" },
        profiles: ["default"],
        config: {
          "security.protection.delete": "true",
          "user.anklume.managed_keys": "security.protection.delete",
        },
        devices: {},
        start: true,
      },
    });
  });

  test("the CLI keeps a VM's type, a static IP's eth0 override and an image the project lacks", () => {
    const vm = planSteps(planInstances(want({ type: "vm" }), [], ctx, held, new Map()))[0];
    expect(vm?.create?.body.type).toBe("virtual-machine");
    const ip = planSteps(planInstances(want({ ip: "10.1.2.3" }), [], ctx, held, new Map()))[0];
    expect(ip?.args).toContain("--device");
    expect(ip?.create).toBeUndefined();
    const lacking = planSteps(planInstances(want(), [], ctx, byCli, new Map()))[0];
    expect(lacking?.args?.[0]).toBe("launch");
    expect(lacking?.create).toBeUndefined();
  });
});
