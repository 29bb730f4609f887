import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { readInventory } from "../core/inventory.ts";
import {
  DEFAULT_IMAGE,
  desiredFromVars,
  firewallBridges,
  firewallHost,
  firewallInterfaces,
  type HostVars,
  imageOf,
  infraId,
  int,
  type Knobs,
  nestingPrefixOf,
  parseVarsInput,
  truthy,
  type VarsInput,
} from "./desired.ts";
import { InstancesDesiredSchema } from "./instances.ts";
import {
  FirewallDesiredSchema,
  ImagesDesiredSchema,
  NetworksDesiredSchema,
  ProfilesDesiredSchema,
  ProjectsDesiredSchema,
} from "./kinds.ts";

const FIXTURES = join(import.meta.dir, "..", "..", "tests", "fixtures");

/** The input the role sends, read from a generated tree (what Ansible would load). */
function varsOf(tree: string, extra: Partial<VarsInput> = {}): VarsInput {
  const inv = readInventory(join(FIXTURES, tree));
  if (!inv) throw new Error(`no inventory in ${tree}`);
  return parseVarsInput({
    hosts: Object.fromEntries(inv.hosts.map((h) => [h.host, h.vars])),
    ...extra,
  });
}
const captured = (name: string) =>
  JSON.parse(readFileSync(join(FIXTURES, "desired", name), "utf8")) as Record<string, unknown>;

/**
 * The per-kind roles also sent the executor's knobs inside the instances
 * document; `declared` is a set (inventory order there, sorted here).
 */
function splitExec(instances: Record<string, unknown>) {
  const { parallel, timeout, vm_agent_retries, vm_agent_delay, ...rest } = instances;
  return {
    exec: { parallel, timeout, vm_agent_retries, vm_agent_delay },
    rest: sortDeclared(rest),
  };
}
function sortDeclared(instances: Record<string, unknown>) {
  const declared = [...((instances.declared as { name: string }[]) ?? [])];
  declared.sort((a, b) => a.name.localeCompare(b.name));
  return { ...instances, declared };
}

describe("desiredFromVars gives what the per-kind roles' Jinja gave (tests/fixtures/desired)", () => {
  const cases: [string, string, Partial<VarsInput>][] = [
    ["worked.json", "worked-example", {}],
    [
      "worked-limit.json",
      "worked-example",
      {
        play_hosts: ["lab-dhcp", "lab-vm"],
        limited: true,
        knobs: {
          incus_networks_ipv4_nat: "false",
          anklume_os_image_override: "anklume-busybox",
          incus_instances_parallel: "2",
        },
      },
    ],
    ["fw.json", "firewall-example", {}],
  ];
  for (const [file, tree, extra] of cases) {
    test(`${file}: every kind, key for key`, () => {
      const want = captured(file);
      const got = desiredFromVars(varsOf(tree, extra));
      for (const kind of ["projects", "networks", "profiles", "images"] as const) {
        expect({ kind, value: got[kind] }).toEqual({ kind, value: want[kind] });
      }
      const { exec, rest } = splitExec(want.instances as Record<string, unknown>);
      expect(sortDeclared(got.instances as Record<string, unknown>)).toEqual(rest);
      expect(got.exec).toEqual(exec as typeof got.exec);
    });
  }

  test("each kind's output is valid input of its planner", () => {
    for (const [tree, extra] of [
      ["worked-example", {}],
      ["firewall-example", {}],
    ] as const) {
      const got = desiredFromVars(varsOf(tree, extra));
      for (const [schema, value] of [
        [ProjectsDesiredSchema, got.projects],
        [NetworksDesiredSchema, got.networks],
        [ProfilesDesiredSchema, got.profiles],
        [ImagesDesiredSchema, got.images],
        [InstancesDesiredSchema, got.instances],
      ] as const) {
        expect(v.safeParse(schema, value).issues).toBeUndefined();
      }
      if (got.firewall !== null) {
        expect(v.safeParse(FirewallDesiredSchema, got.firewall).issues).toBeUndefined();
      }
    }
  });
});

describe("the firewall", () => {
  test("sys-firewall gets the multi-NIC profile: its own bridge first, then every other, sorted", () => {
    const got = desiredFromVars(varsOf("firewall-example"));
    expect(got.firewall).toEqual({
      infra: "000-fwlab",
      project: "000-anklume",
      profile: "firewall-multi-nic",
      bridges: ["000-net-anklume", "000-net-work", "000-net-zoo"],
    });
    const fw = (
      got.instances as { instances: { name: string; profiles: string[] }[] }
    ).instances.find((i) => i.name === "000-sys-firewall");
    expect(fw?.profiles).toEqual(["default", "firewall-multi-nic"]);
  });

  test("firewall_router_interfaces follow the same order: eth0 on the admin bridge", () => {
    const all: HostVars[] = [
      { incus_network: { name: "net-z" } },
      { incus_network: { name: "net-a" } },
      { incus_network: { name: "net-admin" } },
      { incus_network: { name: "net-a" } },
    ];
    const bridges = firewallBridges({ incus_network: { name: "net-admin" } }, all);
    expect(bridges).toEqual(["net-admin", "net-a", "net-z"]);
    expect(firewallInterfaces(bridges)).toEqual([
      { name: "eth0", bridge: "net-admin" },
      { name: "eth1", bridge: "net-a" },
      { name: "eth2", bridge: "net-z" },
    ]);
    expect(firewallBridges({}, all)).toEqual([]);
  });

  test("the firewall host is the first by name whose roles include firewall_router; none without", () => {
    expect(
      firewallHost([
        ["b", { instance_roles: ["firewall_router"] }],
        ["a", { instance_roles: ["base_system", "firewall_router"] }],
        ["c", {}],
      ])?.[0],
    ).toBe("a");
    expect(firewallHost([["c", { instance_roles: ["base_system"] }]])).toBeUndefined();
    expect(desiredFromVars(varsOf("worked-example")).firewall).toBeNull();
  });
});

describe("defaults, each written once", () => {
  test("the image: OS_IMAGE override, the machine's, the infra default, the knob, then images:debian/13", () => {
    const k = (x: Knobs) => x;
    expect(imageOf({}, k({}))).toBe(DEFAULT_IMAGE);
    expect(imageOf({}, k({ incus_images_default_image: "local:x" }))).toBe("local:x");
    expect(imageOf({ default_os_image: "d" }, k({ incus_images_default_image: "x" }))).toBe("d");
    expect(imageOf({ instance_os_image: "m", default_os_image: "d" }, k({}))).toBe("m");
    expect(imageOf({ instance_os_image: "m" }, k({ anklume_os_image_override: "o" }))).toBe("o");
    expect(imageOf({ instance_os_image: "" }, k({ anklume_os_image_override: "" }))).toBe(
      DEFAULT_IMAGE,
    );
  });

  test("a machine with no type, no profiles and no flags is an lxc container on the default profile", () => {
    const got = desiredFromVars({
      hosts: {
        m: {
          instance_name: "m",
          incus_project: "p",
          domain_name: "p",
          incus_network: { name: "net-p", gateway: "10.1.1.254" },
        },
      },
    });
    expect((got.instances as { instances: unknown[] }).instances[0]).toMatchObject({
      type: "lxc",
      profiles: ["default"],
      ephemeral: false,
      ip: null,
      config: {},
      devices: {},
      storage_volumes: {},
    });
    expect(got.networks).toMatchObject({ nat: true });
    expect(got.profiles).toMatchObject({ pool: "default", nic_filtering: true });
    expect(got.exec).toEqual({
      parallel: 4,
      timeout: 300,
      vm_agent_retries: 30,
      vm_agent_delay: 2,
    });
    expect(got.warnings).toEqual([]);
  });

  test("knobs arrive as Ansible sends them: strings, numbers, booleans; null means unset", () => {
    expect(truthy("false", true)).toBe(false);
    expect(truthy("no", true)).toBe(false);
    expect(truthy("True", false)).toBe(true);
    expect(truthy(0, true)).toBe(false);
    expect(truthy(null, true)).toBe(true);
    expect(truthy(undefined, false)).toBe(false);
    expect(int("8", 4)).toBe(8);
    expect(int(3, 4)).toBe(3);
    expect(int("x", 4)).toBe(4);
    expect(int(null, 4)).toBe(4);
    const got = desiredFromVars({
      hosts: {},
      knobs: { incus_instances_parallel: "0", incus_instances_vm_delay: 5 },
    });
    expect(got.exec.parallel).toBe(1);
    expect(got.exec.timeout).toBe(750);
  });

  test("v1's unread retry budgets are accepted with a deprecation warning", () => {
    const got = desiredFromVars({
      hosts: {},
      knobs: { incus_instances_lxc_retries: 30, incus_instances_vm_retries: null } as Knobs,
    });
    expect(got.warnings).toHaveLength(1);
    expect(got.warnings[0]).toContain("incus_instances_lxc_retries is deprecated");
  });
});

describe("the infra id", () => {
  test("is the nesting prefix of the generated names plus project_name", () => {
    expect(nestingPrefixOf({ incus_project: "001-lab", domain_name: "lab" })).toBe("001-");
    expect(nestingPrefixOf({ incus_project: "lab", domain_name: "lab" })).toBe("");
    expect(nestingPrefixOf({ incus_project: "x", domain_name: "lab" })).toBe("");
    expect(
      infraId([{ project_name: "demo" }, { incus_project: "002-pro", domain_name: "pro" }]),
    ).toBe("002-demo");
    expect(infraId([])).toBe("anklume");
  });
});

test("parseVarsInput names the bad variable and says how to fix it", () => {
  expect(() => parseVarsInput({ hosts: { m: { instance_profiles: "default" } } })).toThrow(
    /hosts\.m\.instance_profiles.*make sync/,
  );
});

test("a whole-number knob that is not one is an error naming the knob, never the default", () => {
  for (const bad of ["abc", "4x", 2.5, true]) {
    expect(() => parseVarsInput({ hosts: {}, knobs: { incus_instances_parallel: bad } })).toThrow(
      /the knob incus_instances_parallel is .*: expected a whole number; fix it where it is set .*-e incus_instances_parallel=/,
    );
  }
  expect(() =>
    parseVarsInput({ hosts: {}, knobs: { incus_images_download_timeout: "10m" } }),
  ).toThrow(/incus_images_download_timeout is "10m"/);
  // As Ansible sends them: numbers, digit strings; "" and null are unset.
  const ok = parseVarsInput({
    hosts: {},
    knobs: {
      incus_instances_parallel: "8",
      incus_instances_vm_delay: 3,
      incus_instances_vm_agent_retries: "",
      incus_instances_vm_agent_delay: null,
    },
  });
  expect(desiredFromVars(ok).exec.parallel).toBe(8);
});
