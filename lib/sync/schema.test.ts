import { expect, test } from "bun:test";
import { shapeIssues } from "./schema.ts";

const ok = { project_name: "x", global: null, domains: { a: { subnet_id: 1 } } };

test("a minimal infra has the right shape", () => {
  expect(shapeIssues(ok)).toEqual([]);
});

test("unknown keys name the closest known key, at the key", () => {
  const issues = shapeIssues({ ...ok, domains: { a: { subnet_id: 1, machnes: {} } } });
  expect(issues).toEqual([
    expect.objectContaining({
      path: ["domains", "a", "machnes"],
      atKey: true,
      fix: 'did you mean "machines"?',
    }),
  ]);
});

test("a boolean is never a number and a quoted number says to drop the quotes", () => {
  expect(shapeIssues({ ...ok, domains: { a: { subnet_id: true } } })[0]?.message).toContain(
    "boolean true",
  );
  expect(shapeIssues({ ...ok, domains: { a: { subnet_id: "4" } } })[0]?.fix).toContain(
    "remove the quotes",
  );
});

test("resource_policy: true or a mapping, its fields checked with their full path", () => {
  expect(shapeIssues({ ...ok, global: { resource_policy: true } })).toEqual([]);
  expect(shapeIssues({ ...ok, global: { resource_policy: false } })[0]?.path).toEqual([
    "global",
    "resource_policy",
  ]);
  expect(shapeIssues({ ...ok, global: { resource_policy: { mode: "x" } } })[0]?.path).toEqual([
    "global",
    "resource_policy",
    "mode",
  ]);
});
