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
