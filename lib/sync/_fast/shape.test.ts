import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { InfraSchema } from "../schema.ts";
import { compileCheck } from "./schema-check.ts";
import { deriveShapes, loadShapes, shapeFile, shapeKey, shapeOk } from "./shape.ts";

// bun runs every test file in one process: put ANKLUME_CACHE_DIR back afterwards.
const savedCacheDir = process.env.ANKLUME_CACHE_DIR;
const dir = mkdtempSync(join(tmpdir(), "anklume-shape-"));
process.env.ANKLUME_CACHE_DIR = join(dir, "cache");
afterAll(() => {
  if (savedCacheDir === undefined) delete process.env.ANKLUME_CACHE_DIR;
  else process.env.ANKLUME_CACHE_DIR = savedCacheDir;
  rmSync(dir, { recursive: true, force: true });
});

test("the shape is derived on first use, cached under its key, and read back the same", async () => {
  const derived = await deriveShapes();
  expect(existsSync(shapeFile())).toBe(false);
  expect(await loadShapes()).toEqual(derived);
  expect(existsSync(shapeFile())).toBe(true);
  expect(await loadShapes()).toEqual(derived);
});

test("a cached shape that does not match the current schema is never used (drift)", async () => {
  const derived = await deriveShapes();
  // A shape file under the current key always holds the current schema's shape.
  expect(await loadShapes()).toEqual(derived);
  // A stale file (older schema, another key) is not read, and is removed on the next derive.
  const stale = join(dirname(shapeFile()), `${shapeKey()[0]}0000stale.json`);
  writeFileSync(stale, JSON.stringify({ infra: { type: "unknown" }, resourcePolicy: {} }));
  rmSync(shapeFile());
  expect(await loadShapes()).toEqual(derived);
  expect(readdirSync(dirname(shapeFile()))).toEqual([`${shapeKey()}.json`]);
  // A damaged file is derived again.
  for (const damaged of ["{", "{}", "null", '{"infra":{}}']) {
    writeFileSync(shapeFile(), damaged);
    expect(await loadShapes()).toEqual(derived);
  }
});

test("the key changes with the schema's text, the deriver's and valibot's version", () => {
  const base = shapeKey(["schema", "deriver", "valibot 1"]);
  expect(shapeKey(["schema", "deriver", "valibot 1"])).toBe(base);
  expect(shapeKey(["schema ", "deriver", "valibot 1"])).not.toBe(base);
  expect(shapeKey(["schema", "deriver2", "valibot 1"])).not.toBe(base);
  expect(shapeKey(["schema", "deriver", "valibot 2"])).not.toBe(base);
  expect(shapeKey()).toMatch(/^[bj][0-9a-f]{14,16}$/);
});

test("ANKLUME_NO_CACHE=1 derives without writing anything", async () => {
  const other = join(dir, "nocache");
  mkdirSync(other);
  process.env.ANKLUME_CACHE_DIR = other;
  process.env.ANKLUME_NO_CACHE = "1";
  try {
    expect(await loadShapes()).toEqual(await deriveShapes());
    expect(readdirSync(other)).toEqual([]);
  } finally {
    delete process.env.ANKLUME_NO_CACHE;
    process.env.ANKLUME_CACHE_DIR = join(dir, "cache");
  }
});

test("the shape, through JSON, compiles to the same check as the valibot schema", async () => {
  const fromShape = compileCheck(JSON.parse(JSON.stringify((await deriveShapes()).infra)));
  const fromSchema = compileCheck(InfraSchema);
  const ok = {
    project_name: "p",
    global: {},
    domains: { a: { subnet_id: 1, machines: { m: {} } } },
  };
  expect(fromShape(ok)).toBe(true);
  expect(fromSchema(ok)).toBe(true);
  expect(fromShape({ ...ok, typo: 1 })).toBe(false);
});

// shapeOk against valibot on generated documents: schema-check.test.ts (runDifferential).
test("shapeOk checks resource_policy apart: true, or a mapping of its own schema", async () => {
  expect(await shapeOk({ project_name: "p", global: { resource_policy: true }, domains: {} })).toBe(
    true,
  );
  expect(
    await shapeOk({
      project_name: "p",
      global: { resource_policy: { mode: "equal" } },
      domains: {},
    }),
  ).toBe(true);
  expect(
    await shapeOk({
      project_name: "p",
      global: { resource_policy: { mode: "fair" } },
      domains: {},
    }),
  ).toBe(false);
});
