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
