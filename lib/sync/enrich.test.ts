import { expect, test } from "bun:test";
import { enrich } from "./enrich.ts";
import type { Infra } from "./schema.ts";

test("enrich leaves an infra without firewall VM or exclusive AI untouched (no copy)", () => {
  const infra = {
    project_name: "x",
    global: {},
    domains: { a: { subnet_id: 1 } },
  } as unknown as Infra;
  const e = enrich(infra);
  expect(e.infra).toBe(infra);
  expect(e.info).toEqual([]);
});

test("a user-declared sys-firewall wins over the generated one", () => {
  const infra = {
    project_name: "x",
    global: { firewall_mode: "vm" },
    domains: {
      anklume: { subnet_id: 0, machines: {} },
      lab: { subnet_id: 1, machines: { "sys-firewall": { type: "vm" } } },
    },
  } as unknown as Infra;
  const e = enrich(infra);
  expect(e.autoFirewall).toBe(false);
  expect(e.infra.domains?.anklume?.machines).toEqual({});
});

test("the AI policy is not added when one already targets ai-tools, and the input is never mutated", () => {
  const infra = {
    project_name: "x",
    global: { ai_access_policy: "exclusive", ai_access_default: "pro" },
    domains: { pro: { subnet_id: 1 }, "ai-tools": { subnet_id: 4 } },
    network_policies: [{ from: "pro", to: "ai-tools", ports: [11434] }],
  } as unknown as Infra;
  const before = JSON.stringify(infra);
  const e = enrich(infra);
  expect(e.infra.network_policies).toHaveLength(1);
  expect(JSON.stringify(infra)).toBe(before);
});

test("a machine with dev_test_runner gets the host's image export read-only, unless it names that device itself", () => {
  const infra = {
    project_name: "p",
    domains: {
      dev: {
        subnet_id: 1,
        machines: {
          runner: { roles: ["base_system", "dev_test_runner"] },
          own: {
            roles: ["dev_test_runner"],
            config: { "security.nesting": "false" },
            devices: { "host-images": { type: "disk", source: "/x", path: "/y" } },
          },
          plain: { roles: ["base_system"] },
        },
      },
    },
  } as unknown as Parameters<typeof enrich>[0];
  const before = structuredClone(infra);
  const out = enrich(infra).infra.domains?.dev?.machines ?? {};
  expect(out.runner?.devices).toEqual({
    "host-images": {
      type: "disk",
      source: "/var/lib/anklume/images",
      path: "/mnt/host-images",
      readonly: "true",
      required: "false",
    },
  });
  expect(out.own?.devices?.["host-images"]?.source).toBe("/x");
  expect(out.plain?.devices).toBeUndefined();
  // Nesting on, unless the machine says otherwise.
  expect(out.runner?.config).toEqual({ "security.nesting": "true" });
  expect(out.plain?.config).toBeUndefined();
  expect(out.own?.config).toEqual({ "security.nesting": "false" });
  expect(infra).toEqual(before);
});
