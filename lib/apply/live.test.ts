import { expect, test } from "bun:test";
import type { InstancesDesired } from "./instances.ts";
import { ProjectsDesiredSchema } from "./kinds.ts";
import {
  APPLY_KINDS,
  imageChooser,
  parseDesired,
  readKnobs,
  STAGES,
  skipUncreatableVms,
  volumePools,
} from "./live.ts";

const inst = (over: Partial<InstancesDesired["instances"][number]>) => ({
  name: "m",
  project: "p",
  type: "lxc" as const,
  image: "anklume-busybox",
  profiles: ["default"],
  config: {},
  devices: {},
  storage_volumes: {},
  ephemeral: false,
  ip: null,
  bridge: "br",
  ...over,
});
const want = (instances: InstancesDesired["instances"]): InstancesDesired => ({
  instances,
  declared: [],
  projects: ["p"],
  auto_cleanup: false,
  default_pool: "default",
  restart_on_device_change: true,
  context: true,
});

test("skipUncreatableVms: without KVM a new VM is dropped with a warning; existing VMs and containers stay", () => {
  const w = want([
    inst({ name: "new-vm", type: "vm" }),
    inst({ name: "old-vm", type: "vm" }),
    inst({ name: "ct" }),
  ]);
  const r = skipUncreatableVms(w, new Set(["p/old-vm"]), "lxc");
  expect(r.want.instances.map((d) => d.name)).toEqual(["old-vm", "ct"]);
  expect(r.warnings).toHaveLength(1);
  expect(r.warnings[0]).toMatch(/^p\/new-vm: VM not created: .*driver "lxc": no KVM.*type: lxc$/);
  const kvm = skipUncreatableVms(w, new Set(), "lxc | qemu");
  expect(kvm.want.instances).toHaveLength(3);
  expect(kvm.warnings).toEqual([]);
});

test("imageChooser: a local alias as is; a remote one by alias once the project caches it", () => {
  const choose = imageChooser([
    { project: "p", aliases: [{ name: "debian/13" }] },
    { project: "default", aliases: [{ name: "alpine/3" }] },
  ]);
  expect(choose(inst({ image: "anklume-busybox" }))).toBe("anklume-busybox");
  expect(choose(inst({ image: "images:debian/13" }))).toBe("debian/13");
  expect(choose(inst({ image: "images:alpine/3" }))).toBe("images:alpine/3");
  expect(choose(inst({ project: "q", image: "images:debian/13" }))).toBe("images:debian/13");
});

test("volumePools: the pools of the declared volumes, the default pool when none is named", () => {
  expect(volumePools(want([inst({})]))).toEqual([]);
  expect(
    volumePools(
      want([
        inst({ storage_volumes: { a: { pool: null, size: null, path: "/a" } } }),
        inst({ storage_volumes: { b: { pool: "fast", size: "1GiB", path: null } } }),
      ]),
    ).sort(),
  ).toEqual(["default", "fast"]);
});

test("readKnobs: numbers or numeric strings, as Ansible sends them; anything else is left to the defaults", () => {
  expect(
    readKnobs({ parallel: "2", timeout: 120, vm_agent_retries: "5", vm_agent_delay: 1 }),
  ).toEqual({
    parallel: 2,
    timeout: 120,
    vm_agent_retries: 5,
    vm_agent_delay: 1,
  });
  expect(readKnobs({ parallel: null, instances: [] })).toEqual({});
  expect(readKnobs({ parallel: "many" })).toEqual({});
  expect(readKnobs(undefined)).toEqual({});
});

test("parseDesired names the invalid path and says to re-run make sync", () => {
  expect(() =>
    parseDesired(ProjectsDesiredSchema, { infra: "i", projects: [{}] }, "projects"),
  ).toThrow(
    /Cannot reconcile projects: the desired state is invalid at projects\.0\.name: .*make sync/,
  );
});

test("STAGES hold every kind once, in apply order, and each kind after the kinds it needs", () => {
  expect(STAGES.flat()).toEqual([...APPLY_KINDS]);
  const stageOf = (k: string) => STAGES.findIndex((s) => s.includes(k as never));
  const needs: Record<string, string[]> = {
    profiles: ["projects", "networks"],
    images: ["projects"],
    firewall: ["projects", "networks"],
    instances: ["projects", "networks", "profiles", "images", "firewall"],
    orphans: ["instances"],
  };
  for (const [k, deps] of Object.entries(needs))
    for (const d of deps) expect(stageOf(d), `${k} needs ${d}`).toBeLessThan(stageOf(k));
});
