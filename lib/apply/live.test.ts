import { describe, expect, test } from "bun:test";
import { incusOrSkip, uniq } from "../../tests/helpers.ts";
import type { StepRunner } from "./execute.ts";
import type { InstancesDesired } from "./instances.ts";
import { ProjectsDesiredSchema } from "./kinds.ts";
import {
  APPLY_KINDS,
  executeKind,
  imageChooser,
  objectOf,
  parseDesired,
  readKnobs,
  reconcile,
  STAGES,
  skipUncreatableVms,
  volumePools,
} from "./live.ts";
import { emptyPlan, type Plan, type Step } from "./reconcile.ts";

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

test("imageChooser: a local alias as is; a remote one by alias once the project caches it; whether the project holds it", () => {
  const choose = imageChooser([
    { project: "p", aliases: [{ name: "debian/13" }] },
    { project: "default", aliases: [{ name: "alpine/3" }] },
  ]);
  const cases: [Parameters<typeof inst>[0], string, boolean][] = [
    [{ image: "anklume-busybox" }, "anklume-busybox", false],
    [{ project: "default", image: "alpine/3" }, "alpine/3", true],
    [{ image: "images:debian/13" }, "debian/13", true],
    [{ image: "images:alpine/3" }, "images:alpine/3", false],
    [{ project: "q", image: "images:debian/13" }, "images:debian/13", false],
  ];
  for (const [over, ref, inProject] of cases)
    expect(choose(inst(over))).toEqual({ ref, inProject });
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

describe("executeKind: the before steps of different objects side by side", () => {
  const step = (desc: string, args: string[]): Step => ({ desc, args });
  const bridges = ["n0", "n1", "n2"].flatMap((n) => [
    step(`${n} create`, ["network", "create", n, "ipv4.address=10.0.0.1/24"]),
    step(`${n} set`, ["network", "set", n, "ipv4.nat=false"]),
  ]);

  test("objectOf: the project a step acts in, else its own object", () => {
    expect(objectOf(bridges[0] as Step)).toBe("network n0");
    expect(objectOf(step("p", ["project", "create", "p1", "-c", "a=b"]))).toBe("project p1");
    expect(
      objectOf(
        step("d", ["profile", "device", "add", "default", "eth0", "nic", "--project", "p1"]),
      ),
    ).toBe("project p1");
    expect(
      objectOf(
        step("i", [
          "image",
          "copy",
          "x",
          "local:",
          "--project",
          "default",
          "--target-project",
          "p2",
        ]),
      ),
    ).toBe("project p2");
  });

  test("each object's steps in order, objects overlapping; a failure stops its object and `after` only", async () => {
    const running = new Set<string>();
    let overlap = 0;
    const ran: string[] = [];
    const run: StepRunner = async (s) => {
      running.add(s.desc);
      overlap = Math.max(overlap, running.size);
      await new Promise((r) => setTimeout(r, 5));
      running.delete(s.desc);
      ran.push(s.desc);
      if (s.desc === "n1 create") throw new Error("boom");
      return undefined;
    };
    const plan: Plan = { ...emptyPlan(), before: bridges, after: [step("orphan", ["x"])] };
    const out = await executeKind(plan, run, 4);
    expect(overlap).toBeGreaterThan(1);
    expect(ran.indexOf("n0 create")).toBeLessThan(ran.indexOf("n0 set"));
    expect(ran).toContain("n2 set");
    expect(ran).not.toContain("n1 set");
    expect(ran).not.toContain("orphan");
    expect(out.failures).toEqual([{ step: "n1 create", error: "boom" }]);
    const ok = await executeKind({ ...plan, before: bridges.slice(0, 2) }, async (s) => {
      ran.push(`again ${s.desc}`);
      return undefined;
    });
    expect(ok.failures).toEqual([]);
    expect(ran.slice(-3)).toEqual(["again n0 create", "again n0 set", "again orphan"]);
  });

  test("`done` hears of each object as soon as its own steps end, before the slower ones, with whether they were written", async () => {
    const heard: string[] = [];
    const delay: Record<string, number> = { n0: 1, n1: 40, n2: 15 };
    const run: StepRunner = async (s) => {
      await new Promise((r) => setTimeout(r, delay[s.args?.[2] ?? ""] ?? 1));
      if (s.desc === "n2 set") throw new Error("boom");
      return undefined;
    };
    await executeKind({ ...emptyPlan(), before: bridges }, run, 4, {
      done: (object, ok) => heard.push(`${object} ${ok}`),
    });
    expect(heard).toEqual(["network n0 true", "network n2 false", "network n1 true"]);
  });
});

describe("reconcile(): an apply that creates bridges goes on by domain (real reads of the daemon, a runner that writes nothing)", async () => {
  const ok = await incusOrSkip("reconcile by domain");
  const id = `zbd${uniq()}`;
  const domains = [0, 1, 2].map((d) => ({ project: `${id}p${d}`, bridge: `${id}n${d}` }));
  const desired = {
    projects: { infra: id, projects: domains.map((d) => ({ name: d.project })) },
    networks: {
      infra: id,
      nat: false,
      networks: domains.map((d, i) => ({ name: d.bridge, gateway: `10.239.${200 + i}.254` })),
    },
    profiles: { infra: id, domains: domains.map((d) => ({ ...d, profiles: {} })) },
    images: { images: domains.map((d) => ({ project: d.project, ref: "anklume-busybox" })) },
    instances: {
      instances: domains.flatMap((d) =>
        [0, 1].map((m) => ({
          name: `${d.project}m${m}`,
          project: d.project,
          image: "anklume-busybox",
          bridge: d.bridge,
        })),
      ),
      projects: domains.map((d) => d.project),
      context: false,
      parallel: 2,
    },
    orphans: { infra: id, projects: domains.map((d) => d.project), networks: [] },
  };
  /** n0 is made quickly, n1 slowly, n2 fails; records when each step starts and ends. */
  const events: string[] = [];
  const run: StepRunner = async (s) => {
    const a = s.args ?? [];
    events.push(`start ${s.desc}`);
    const net = a[0] === "network" ? (a[2] ?? "") : "";
    await new Promise((r) => setTimeout(r, net.endsWith("n1") ? 150 : 5));
    events.push(`end ${s.desc}`);
    if (net.endsWith("n2")) throw new Error("Incus refused the bridge");
    return undefined;
  };

  test.if(ok)(
    "the first domain's instances start while a later bridge is still made; a failed bridge stops its own domain only; orphans are not looked for",
    async () => {
      const r = await reconcile(
        ["projects", "networks", "profiles", "images", "instances", "orphans"],
        desired,
        { run, contextDir: "/nonexistent" },
      );
      const at = (e: string) => events.findIndex((x) => x.startsWith(e));
      const p = domains.map((d) => d.project);
      // Domain 0 goes on while n1 is still being created.
      expect(at(`start ${p[0]}/${p[0]}m0`)).toBeGreaterThan(-1);
      expect(at(`start ${p[0]}/${p[0]}m0`)).toBeLessThan(at(`end bridge ${domains[1]?.bridge}`));
      // Domain 1 waited for its bridge.
      expect(at(`start ${p[1]}/default`)).toBeGreaterThan(at(`end bridge ${domains[1]?.bridge}`));
      expect(events.filter((e) => e.startsWith(`end ${p[1]}/${p[1]}m`))).toHaveLength(2);
      // Domain 2's bridge failed: nothing of it ran after the project.
      expect(events.filter((e) => e.includes(p[2] as string) && !e.includes("project"))).toEqual(
        [],
      );
      // At most `parallel` (2) instances at once, across domains.
      let live = 0;
      let most = 0;
      for (const e of events.filter((x) => /m[01]: /.test(x))) {
        if (e.startsWith("start") && e.endsWith("create and start container from anklume-busybox"))
          most = Math.max(most, ++live);
        if (e.startsWith("end") && e.endsWith("create and start container from anklume-busybox"))
          live--;
      }
      expect(most).toBe(2);
      expect(r.kinds.map((k) => k.kind)).toEqual([
        "projects",
        "networks",
        "profiles",
        "images",
        "instances",
      ]);
      expect(r.errors).toEqual([
        `Step "bridge ${domains[2]?.bridge}: create" failed: Incus refused the bridge`,
      ]);
      const instances = r.kinds.find((k) => k.kind === "instances");
      expect(instances?.changes.filter((c) => c.includes("create container"))).toHaveLength(4);
    },
  );
});
