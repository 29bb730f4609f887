import { expect, test } from "bun:test";
import { renderTree } from "./render.ts";
import type { Infra } from "./schema.ts";

test("renderTree lists files in v1's order with prefixed Incus names and unprefixed file names", () => {
  const infra = {
    project_name: "p",
    global: { base_subnet: "10.9" },
    domains: {
      b: { subnet_id: 2, machines: { "b-1": { ip: "10.9.2.10" }, "b-2": {} } },
      a: { subnet_id: 1 },
    },
  } as unknown as Infra;
  const files = renderTree(infra, "002-");
  expect(files.map((f) => f.rel)).toEqual([
    "group_vars/all.yml",
    "inventory/b.yml",
    "group_vars/b.yml",
    "host_vars/b-1.yml",
    "host_vars/b-2.yml",
    "inventory/a.yml",
    "group_vars/a.yml",
  ]);
  expect(files[2]?.data).toMatchObject({
    domain_name: "b",
    incus_project: "002-b",
    incus_network: { name: "002-net-b", subnet: "10.9.2.0/24", gateway: "10.9.2.254" },
  });
  expect(files[1]?.data).toEqual({
    all: { children: { b: { hosts: { "b-1": { ansible_host: "10.9.2.10" }, "b-2": null } } } },
  });
  expect(files[6]?.data).not.toHaveProperty("incus_profiles");
  expect(files[4]?.data).not.toHaveProperty("instance_ip");
  expect(files[0]?.data).not.toHaveProperty("ansible_connection");
});

test("renderTree writes every key exactly: defaults, inheritance, sorted images, nulls left out", () => {
  const policy = { from: "a", to: "b", ports: [80] };
  const infra = {
    project_name: "p",
    global: {
      base_subnet: "10.9",
      default_os_image: "img-default",
      default_connection: "community.general.incus",
      default_user: "root",
      auto_cleanup: true,
      package_cache: "auto",
    },
    domains: {
      a: {
        subnet_id: 1,
        description: "Domain A",
        ephemeral: true,
        trust_level: "trusted",
        profiles: { small: { config: { "limits.cpu": "1" } } },
        machines: {
          "a-1": {
            description: "one",
            type: "vm",
            ip: "10.9.1.10",
            os_image: "img-z",
            gpu: true,
            profiles: ["default", "small"],
            config: { "security.nesting": "true" },
            devices: { d: { type: "disk" } },
            storage_volumes: { v: { size: "1GiB" } },
            services: ["s"],
            roles: ["base_system"],
            boot_autostart: true,
            boot_priority: 5,
            snapshots_schedule: "@daily",
            snapshots_expiry: "7d",
            ephemeral: false,
          },
          "a-2": { ip: "" },
        },
      },
      b: { subnet_id: 2, profiles: {}, machines: {} },
      c: { subnet_id: 3 },
    },
    network_policies: [policy],
  } as unknown as Infra;
  const files = Object.fromEntries(renderTree(infra, "001-").map((f) => [f.rel, f.data]));
  expect(files["group_vars/all.yml"]).toEqual({
    project_name: "p",
    base_subnet: "10.9",
    default_os_image: "img-default",
    psot_default_connection: "community.general.incus",
    psot_default_user: "root",
    incus_all_images: ["img-default", "img-z"],
    network_policies: [policy],
    auto_cleanup: true,
    package_cache: "auto",
  });
  expect(files["group_vars/a.yml"]).toEqual({
    domain_name: "a",
    domain_description: "Domain A",
    domain_ephemeral: true,
    domain_trust_level: "trusted",
    incus_project: "001-a",
    incus_network: { name: "001-net-a", subnet: "10.9.1.0/24", gateway: "10.9.1.254" },
    subnet_id: 1,
    incus_profiles: { small: { config: { "limits.cpu": "1" } } },
  });
  // No description: an empty one; no ephemeral: false; an empty profiles map: none.
  expect(files["group_vars/b.yml"]).toEqual({
    domain_name: "b",
    domain_description: "",
    domain_ephemeral: false,
    incus_project: "001-b",
    incus_network: { name: "001-net-b", subnet: "10.9.2.0/24", gateway: "10.9.2.254" },
    subnet_id: 2,
  });
  expect(files["inventory/b.yml"]).toEqual({ all: { children: { b: { hosts: null } } } });
  expect(files["inventory/c.yml"]).toEqual({ all: { children: { c: { hosts: null } } } });
  expect(files["host_vars/a-1.yml"]).toEqual({
    instance_name: "001-a-1",
    instance_type: "vm",
    instance_description: "one",
    instance_domain: "a",
    instance_ephemeral: false,
    instance_os_image: "img-z",
    instance_ip: "10.9.1.10",
    instance_gpu: true,
    instance_profiles: ["default", "small"],
    instance_config: { "security.nesting": "true" },
    instance_devices: { d: { type: "disk" } },
    instance_storage_volumes: { v: { size: "1GiB" } },
    instance_services: ["s"],
    instance_roles: ["base_system"],
    instance_boot_autostart: true,
    instance_boot_priority: 5,
    instance_snapshots_schedule: "@daily",
    instance_snapshots_expiry: "7d",
  });
  // Inherits the domain's ephemeral and the default image; an empty ip is no ip.
  expect(files["host_vars/a-2.yml"]).toEqual({
    instance_name: "001-a-2",
    instance_type: "lxc",
    instance_description: "",
    instance_domain: "a",
    instance_ephemeral: true,
    instance_os_image: "img-default",
  });
  expect(files["inventory/a.yml"]).toEqual({
    all: { children: { a: { hosts: { "a-1": { ansible_host: "10.9.1.10" }, "a-2": null } } } },
  });
});

test("renderTree without images, policies or a base subnet: the defaults, no empty lists", () => {
  const infra = {
    project_name: "p",
    domains: { a: { subnet_id: 4, machines: { m: {} } } },
  } as unknown as Infra;
  const files = Object.fromEntries(renderTree(infra, "").map((f) => [f.rel, f.data]));
  // Strict: a key whose value is undefined is left out, not kept as undefined.
  expect(files["group_vars/all.yml"]).toStrictEqual({ project_name: "p", base_subnet: "10.100" });
  expect(files["host_vars/m.yml"]).toStrictEqual({
    instance_name: "m",
    instance_type: "lxc",
    instance_description: "",
    instance_domain: "a",
    instance_ephemeral: false,
  });
});
