import { expect, test } from "bun:test";
import fc from "fast-check";
import * as v from "valibot";
import { InfraSchema, ResourcePolicySchema } from "../schema.ts";
import { compileCheck } from "./schema-check.ts";

const infraCheck = compileCheck(InfraSchema);

const value = fc.letrec((tie) => ({
  any: fc.oneof(
    { depthSize: "small" },
    fc.constantFrom(
      null,
      undefined,
      true,
      false,
      0,
      1,
      254,
      255,
      -1,
      1.5,
      Number.NaN,
      "",
      "x",
      "lxc",
      "vm",
      "all",
      "tcp",
      "exclusive",
      "default",
    ),
    fc.array(tie("any"), { maxLength: 3 }),
    fc.dictionary(
      fc.constantFrom(
        "project_name",
        "global",
        "domains",
        "network_policies",
        "pro",
        "m1",
        "subnet_id",
        "machines",
        "profiles",
        "ip",
        "type",
        "config",
        "devices",
        "from",
        "to",
        "ports",
        "protocol",
        "resource_policy",
        "mode",
        "weight",
        "boot_priority",
        "services",
        "name",
        "tool",
        "zz",
      ),
      tie("any"),
      { maxKeys: 5 },
    ),
  ),
}));

test("the compiled check agrees with valibot on random documents (property)", () => {
  fc.assert(
    fc.property(value.any, (x) => infraCheck(x) === v.safeParse(InfraSchema, x).success),
    { numRuns: 20000 },
  );
});

test("the compiled check agrees with valibot on near-valid infras (property)", () => {
  const machine = fc.record(
    {
      type: fc.constantFrom("lxc", "vm", "docker", null),
      ip: fc.constantFrom("10.0.0.1", 3),
      weight: fc.constantFrom(1, 0, 2.5, true, null),
      boot_priority: fc.constantFrom(0, 100, 101, "5"),
      roles: fc.constantFrom([], ["a"], [1], "a"),
      config: fc.constantFrom({}, { a: "b" }, { a: true }, { a: [] }),
      services: fc.constantFrom(
        [],
        [{ name: "a", tool: "gpg_sign", extra: 1 }],
        [{ name: "a", tool: "x" }],
      ),
      bogus: fc.constant(1),
    },
    { requiredKeys: [] },
  );
  const infra = fc.record({
    project_name: fc.constantFrom("p", null, 3),
    global: fc.constantFrom(
      null,
      {},
      { resource_policy: true },
      { gpu_policy: "shared" },
      { gpu_policy: "x" },
    ),
    domains: fc.dictionary(
      fc.constantFrom("a", "b"),
      fc.record(
        {
          subnet_id: fc.constantFrom(0, 254, 255, true),
          machines: fc.dictionary(fc.constantFrom("m", "n"), machine),
        },
        { requiredKeys: [] },
      ),
    ),
  });
  fc.assert(
    fc.property(infra, (x) => infraCheck(x) === v.safeParse(InfraSchema, x).success),
    { numRuns: 20000 },
  );
  const rp = compileCheck(ResourcePolicySchema);
  expect(rp({ host_reserve: { cpu: "20%" }, mode: "equal" })).toBe(true);
  expect(rp({ mode: "fair" })).toBe(false);
});
