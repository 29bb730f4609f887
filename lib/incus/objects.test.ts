import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as v from "valibot";
import { freeSubnets } from "../../tests/apply-helpers.ts";
import { incusOrSkip, testImage, uniq } from "../../tests/helpers.ts";
import { incusRaw, incusRun } from "./client.ts";
import {
  driverRunsVms,
  IncusInstanceSchema,
  listAliases,
  listImages,
  listInstances,
  listNetworks,
  listPools,
  listProfiles,
  listProjects,
  listVolumes,
  serverDriver,
} from "./objects.ts";

const live = await incusOrSkip("lib/incus/objects.test.ts");
const u = uniq();
const project = `aot-${u}`;
const bridge = `aot${u}`;
const inst = `aot-${u}-c`;
const vol = `aot-${u}-v`;
let gw = "";

describe.skipIf(!live)("the model of Incus state, on the real daemon", () => {
  beforeAll(async () => {
    await incusRun(["project", "create", project, "-c", "features.images=false", "-c", "user.t=1"]);
    // A /24 no bridge uses (a fixed one collided with a concurrent run's bridge).
    const [sid] = await freeSubnets("10.251", 1);
    gw = `10.251.${sid}.254`;
    await incusRun([
      "network",
      "create",
      bridge,
      `ipv4.address=${gw}/24`,
      "ipv4.nat=false",
      "ipv6.address=none",
    ]);
    await incusRun(["profile", "create", "extra", "--project", project]);
    await incusRun(["storage", "volume", "create", "default", vol, "--project", project]);
    await incusRun([
      "init",
      testImage(),
      inst,
      "--project",
      project,
      "-s",
      "default",
      "-n",
      bridge,
    ]);
    await incusRun(["snapshot", "create", inst, "s1", "--project", project]);
  }, 120_000);

  afterAll(async () => {
    await incusRaw(["delete", inst, "--force", "--project", project]);
    await incusRaw(["storage", "volume", "delete", "default", vol, "--project", project]);
    await incusRaw(["profile", "delete", "extra", "--project", project]);
    await incusRaw(["project", "delete", project]);
    await incusRaw(["network", "delete", bridge]);
  }, 120_000);

  test("projects, networks, profiles and volumes come back with their config", async () => {
    const p = (await listProjects()).find((x) => x.name === project);
    expect(p?.config["user.t"]).toBe("1");
    const n = (await listNetworks()).find((x) => x.name === bridge);
    expect(n).toMatchObject({ managed: true, type: "bridge" });
    expect(n?.config["ipv4.address"]).toBe(`${gw}/24`);
    expect((await listNetworks("default")).some((x) => x.name === bridge)).toBe(true);
    const profiles = await listProfiles(project);
    expect(profiles.map((x) => x.name).sort()).toEqual(["default", "extra"]);
    expect(profiles.every((x) => x.project === project)).toBe(true);
    expect((await listProfiles()).some((x) => x.project === project && x.name === "extra")).toBe(
      true,
    );
    const v = (await listVolumes("default")).find((x) => x.name === vol);
    expect(v).toMatchObject({ project, type: "custom" });
    expect((await listPools()).map((x) => x.name)).toContain("default");
  });

  test("listInstances reads config and devices; with snapshots, it lists them", async () => {
    const fast = (await listInstances()).find((i) => i.project === project && i.name === inst);
    expect(fast).toMatchObject({ status: "Stopped", type: "container" });
    expect(fast?.devices).toHaveProperty("eth0");
    const withSnaps = (await listInstances({ snapshots: true })).find(
      (i) => i.project === project && i.name === inst,
    );
    expect((withSnaps?.snapshots ?? []).map((s) => s.name)).toEqual(["s1"]);
  });

  test("images and aliases of the default project include the test image", async () => {
    const alias = (await listAliases("default")).find((a) => a.name === testImage());
    expect(alias?.target).toMatch(/^[0-9a-f]{64}$/);
    const img = (await listImages("default")).find((i) => i.fingerprint === alias?.target);
    expect(img?.aliases.map((a) => a.name)).toContain(testImage());
  });

  test("the server's driver list says whether VMs can run", async () => {
    const driver = await serverDriver();
    expect(driver).toContain("lxc");
    expect(driverRunsVms("lxc | qemu")).toBe(true);
    expect(driverRunsVms("lxc")).toBe(false);
    expect(driverRunsVms(driver)).toBe(driver.includes("qemu"));
  });
});

test("an instance with only the fields a restricted client sees parses, missing maps read as empty", () => {
  const parsed = v.parse(IncusInstanceSchema, {
    name: "c",
    status: "Running",
    type: "container",
    config: null,
  });
  expect(parsed).toMatchObject({
    project: "default",
    config: {},
    devices: {},
    expanded_config: {},
    expanded_devices: {},
    profiles: [],
    snapshots: null,
  });
});
