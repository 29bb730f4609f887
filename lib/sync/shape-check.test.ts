import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import * as v from "valibot";
import { shapeText } from "../../scripts/schema-shape.ts";
import { checkShape, InfraSchema } from "./schema.ts";
import { SHAPE_FILE, shapeOk } from "./shape-check.ts";

test("lib/schema-shape.json matches lib/schema.ts (if not: make schema-shape)", () => {
  expect(readFileSync(SHAPE_FILE, "utf8")).toBe(shapeText());
});

test("shapeOk answers as checkShape and valibot do (property)", () => {
  const value = fc.letrec((tie) => ({
    any: fc.oneof(
      { depthSize: "small" },
      fc.constantFrom(null, true, false, 0, 1, 254, 255, 1.5, "", "x", "lxc", "vm", "all", "tcp"),
      fc.array(tie("any"), { maxLength: 3 }),
      fc.dictionary(
        fc.constantFrom(
          "project_name",
          "global",
          "domains",
          "pro",
          "m",
          "subnet_id",
          "machines",
          "ip",
          "type",
          "resource_policy",
          "mode",
          "host_reserve",
          "cpu",
          "network_policies",
          "from",
          "to",
          "ports",
        ),
        tie("any"),
        { maxKeys: 5 },
      ),
    ),
  }));
  fc.assert(
    fc.property(value.any, (x) => {
      const ok = shapeOk(x);
      return ok === (checkShape(x).length === 0) && (!ok || v.safeParse(InfraSchema, x).success);
    }),
    { numRuns: 20000 },
  );
  expect(
    shapeOk({ project_name: "p", global: { resource_policy: { mode: "equal" } }, domains: {} }),
  ).toBe(true);
  expect(
    shapeOk({ project_name: "p", global: { resource_policy: { mode: "fair" } }, domains: {} }),
  ).toBe(false);
});
