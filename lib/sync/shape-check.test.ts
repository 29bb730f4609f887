import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { shapeIssues } from "./schema.ts";
import { checkShape } from "./shape-check.ts";

// bun runs every test file in one process: put ANKLUME_CACHE_DIR back afterwards.
const savedCacheDir = process.env.ANKLUME_CACHE_DIR;
const cache = mkdtempSync(join(tmpdir(), "anklume-shape-check-"));
process.env.ANKLUME_CACHE_DIR = cache;
afterAll(() => {
  if (savedCacheDir === undefined) delete process.env.ANKLUME_CACHE_DIR;
  else process.env.ANKLUME_CACHE_DIR = savedCacheDir;
  rmSync(cache, { recursive: true, force: true });
});

const ok = {
  project_name: "p",
  global: null,
  domains: { a: { subnet_id: 1, machines: { m: { ip: "x" } } } },
};
const bad = [
  { ...ok, domains: { a: { subnet_id: 1, machnes: {} } } },
  { ...ok, global: { resource_policy: false } },
  { ...ok, global: { resource_policy: { mode: "fair" } } },
  [],
  null,
];

test("checkShape finds nothing in a well-shaped infra and valibot's issues in the others", async () => {
  expect(await checkShape(ok)).toEqual([]);
  expect(await checkShape({ ...ok, global: { resource_policy: true } })).toEqual([]);
  for (const data of bad) {
    const issues = await checkShape(data);
    expect(issues.length).toBeGreaterThan(0);
    expect(issues).toEqual(shapeIssues(data));
  }
});

test("ANKLUME_SHAPE_EXACT=1 gives the same answers without the compiled check", async () => {
  process.env.ANKLUME_SHAPE_EXACT = "1";
  try {
    expect(await checkShape(ok)).toEqual([]);
    for (const data of bad) expect(await checkShape(data)).toEqual(shapeIssues(data));
  } finally {
    delete process.env.ANKLUME_SHAPE_EXACT;
  }
});
