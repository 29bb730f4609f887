import { expect, test } from "bun:test";
import { bridgesNamed, domainProjects, sliceDesired } from "./domains.ts";

const machine = (name: string, project: string, bridge: string, more = {}) => ({
  name,
  project,
  image: "anklume-busybox",
  bridge,
  ...more,
});
const desired = {
  profiles: {
    infra: "000-lab",
    domains: [
      { project: "p0", bridge: "net-p0", profiles: {} },
      {
        project: "p1",
        bridge: "net-p1",
        profiles: { gw: { devices: { e1: { network: "net-p0" } } } },
      },
    ],
  },
  images: {
    images: [
      { project: "p0", ref: "anklume-busybox" },
      { project: "p1", ref: "anklume-busybox" },
    ],
  },
  firewall: { infra: "000-lab", project: "p1", bridges: ["net-p1", "net-p0", "net-p2"] },
  instances: {
    instances: [machine("a", "p0", "net-p0"), machine("b", "p1", "net-p1")],
    declared: [
      { name: "a", project: "p0" },
      { name: "b", project: "p1" },
    ],
    projects: ["p0", "p1", "p2"],
    orphan_domains: { infra: "000-lab", projects: ["p0", "p1", "p2"], networks: [] },
  },
};

test("domainProjects: every project a per-project kind names, once, in the order first seen (p2 has no machine)", () => {
  expect(domainProjects(desired)).toEqual(["p0", "p1", "p2"]);
  expect(domainProjects({})).toEqual([]);
});

test("sliceDesired: each project's share; instances keep `declared`, scope their orphans to the project and drop orphan_domains", () => {
  const p0 = sliceDesired("profiles", desired.profiles, "p0") as { domains: unknown[] };
  expect(p0.domains).toEqual([{ project: "p0", bridge: "net-p0", profiles: {} }]);
  expect(sliceDesired("images", desired.images, "p1")).toMatchObject({
    images: [{ project: "p1", ref: "anklume-busybox" }],
  });
  expect(sliceDesired("firewall", desired.firewall, "p1")).toMatchObject({ project: "p1" });
  expect(sliceDesired("firewall", desired.firewall, "p0")).toBeNull();
  expect(sliceDesired("firewall", null, "p0")).toBeNull();
  const i1 = sliceDesired("instances", desired.instances, "p1") as Record<string, unknown>;
  expect((i1.instances as { name: string }[]).map((i) => i.name)).toEqual(["b"]);
  expect(i1.projects).toEqual(["p1"]);
  expect(i1.declared).toEqual(desired.instances.declared);
  expect(i1.orphan_domains).toBeNull();
  // A project with no machine still has its orphans looked for.
  const i2 = sliceDesired("instances", desired.instances, "p2") as Record<string, unknown>;
  expect(i2.instances).toEqual([]);
  expect(i2.projects).toEqual(["p2"]);
  // Nothing of that kind in the project: no share at all.
  expect(sliceDesired("profiles", desired.profiles, "p2")).toBeNull();
  expect(sliceDesired("images", desired.images, "p2")).toBeNull();
  expect(sliceDesired("instances", desired.instances, "elsewhere")).toBeNull();
});

test("bridgesNamed: a share waits for every bridge it names anywhere (its own, a profile device's network, the firewall's NICs), and for no other", () => {
  const creating = new Set(["net-p0", "net-p1", "net-p2"]);
  const share = (p: string) =>
    (["profiles", "images", "firewall", "instances"] as const).map((k) =>
      sliceDesired(k, desired[k], p),
    );
  expect(bridgesNamed(share("p0"), creating)).toEqual(["net-p0"]);
  expect(bridgesNamed(share("p1"), creating)).toEqual(["net-p0", "net-p1", "net-p2"]);
  expect(bridgesNamed(share("p2"), creating)).toEqual([]);
  // Bridges that already exist are not waited for.
  expect(bridgesNamed(share("p1"), new Set(["net-p1"]))).toEqual(["net-p1"]);
});
