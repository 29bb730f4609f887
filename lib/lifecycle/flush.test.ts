import { describe, expect, test } from "bun:test";
import { countByKind, type FlushState, flushSteps, planFlush, productionRefusal } from "./flush.ts";

const M = "user.anklume.infra";
const state = (): FlushState => ({
  projects: [
    { name: "default", config: {} },
    { name: "001-pro", config: { [M]: "001-lab" } },
    { name: "001-perso", config: { [M]: "001-lab" } },
    { name: "001-other", config: { [M]: "001-else" } },
    { name: "hand", config: {} },
  ],
  networks: [
    { name: "001-net-pro", project: "default", managed: true, config: { [M]: "001-lab" } },
    { name: "001-net-else", project: "default", managed: true, config: { [M]: "001-else" } },
    { name: "mybr", project: "default", managed: true, config: {} },
    { name: "eth0", project: "default", managed: false, config: { [M]: "001-lab" } },
  ],
  profiles: [
    { name: "default", project: "001-pro", config: {} },
    { name: "gpu", project: "001-pro", config: { [M]: "001-lab" } },
    { name: "handmade", project: "001-pro", config: {} },
    { name: "shared", project: "default", config: { [M]: "001-lab" } },
    { name: "mine", project: "default", config: {} },
  ],
  instances: [
    { name: "001-pro-dev", project: "001-pro", config: { "security.protection.delete": "true" } },
    { name: "001-perso-web", project: "001-perso", config: {} },
    { name: "stray", project: "001-pro", config: {} },
    { name: "foreign", project: "hand", config: {} },
    { name: "001-other-x", project: "001-other", config: {} },
    { name: "plain", project: "default", config: {} },
  ],
  images: [
    { fingerprint: "aaaa1111bbbb2222", project: "001-pro", aliases: [{ name: "busy" }] },
    { fingerprint: "cccc", project: "default", aliases: [] },
  ],
  volumes: [
    { name: "data", type: "custom", project: "001-pro", pool: "default" },
    { name: "001-pro-dev", type: "container", project: "001-pro", pool: "default" },
    { name: "theirs", type: "custom", project: "hand", pool: "default" },
  ],
});

describe("planFlush", () => {
  const plan = planFlush(state(), "001-lab");
  const labels = flushSteps(plan).map((s) => s.label);

  test("destroys the marked projects with everything in them, sorted, in dependency order", () => {
    expect(labels).toEqual([
      "instance 001-perso-web (project 001-perso)",
      "instance 001-pro-dev (project 001-pro)",
      "instance stray (project 001-pro)",
      "image busy (project 001-pro)",
      "volume data (pool default, project 001-pro)",
      "profile gpu (project 001-pro)",
      "profile handmade (project 001-pro)",
      "profile shared (project default)",
      "project 001-perso",
      "project 001-pro",
      "network 001-net-pro",
    ]);
  });

  test("leaves other infras, unmarked projects, bridges and profiles, and the default project alone", () => {
    const all = labels.join("\n");
    for (const x of [
      "foreign",
      "001-other",
      "mybr",
      "001-net-else",
      "mine",
      "plain",
      "cccc",
      "theirs",
      "eth0",
    ]) {
      expect(all).not.toContain(x);
    }
    expect(labels).not.toContain("project default");
  });

  test("lifts protection first, only where it is set", () => {
    const dev = plan.instances.find((s) => s.label.includes("001-pro-dev"));
    expect(dev?.unprotect).toEqual([
      "config",
      "set",
      "001-pro-dev",
      "security.protection.delete=false",
      "--project",
      "001-pro",
    ]);
    expect(dev?.args).toEqual(["delete", "001-pro-dev", "--project", "001-pro", "--force"]);
    expect(plan.instances.find((s) => s.label.includes("stray"))?.unprotect).toBeUndefined();
  });

  test("an id nothing carries plans nothing; an empty id is refused", () => {
    expect(flushSteps(planFlush(state(), "002-none"))).toEqual([]);
    expect(() => planFlush(state(), "")).toThrow("infra id");
  });

  test("a project marked default is never deleted", () => {
    const s = state();
    s.projects[0] = { name: "default", config: { [M]: "001-lab" } };
    const p = planFlush(s, "001-lab");
    expect(p.projects.map((x) => x.label)).not.toContain("project default");
    expect(p.instances.map((x) => x.label).join()).not.toContain("plain");
  });
});

test("countByKind names each kind with its count, in order, plural where needed", () => {
  const p = planFlush(state(), "001-lab");
  expect(countByKind(flushSteps(p))).toBe(
    "3 instances, 1 image, 1 volume, 3 profiles, 2 projects, 1 network",
  );
  expect(countByKind([])).toBe("");
});

describe("productionRefusal", () => {
  test("refuses at level 0 without yolo unless forced", () => {
    expect(productionRefusal({ absolute_level: 0, yolo: false }, false, "/etc/anklume")).toContain(
      "FORCE=true",
    );
    expect(productionRefusal({ absolute_level: 0, yolo: false }, true, "/x")).toBeNull();
  });
  test("passes inside a nested instance or with yolo", () => {
    expect(productionRefusal({ absolute_level: 1, yolo: false }, false, "/x")).toBeNull();
    expect(productionRefusal({ absolute_level: 0, yolo: true }, false, "/x")).toBeNull();
  });
});
