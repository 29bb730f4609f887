import { afterAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LoadError, loadInfra, readInputFiles, resolveInput } from "./infra-load.ts";

const dir = mkdtempSync(join(tmpdir(), "anklume-load-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const put = (rel: string, text: string) => {
  mkdirSync(join(dir, rel, ".."), { recursive: true });
  writeFileSync(join(dir, rel), text);
};

test("resolveInput follows v1: file, directory, then the .yml / directory counterpart", () => {
  put("one.yml", "a: 1\n");
  put("two/base.yml", "a: 1\n");
  expect(resolveInput(join(dir, "one.yml"))).toEqual({ path: join(dir, "one.yml"), mode: "file" });
  expect(resolveInput(join(dir, "one"))).toEqual({ path: join(dir, "one.yml"), mode: "file" });
  expect(resolveInput(join(dir, "two.yml"))).toEqual({ path: join(dir, "two"), mode: "dir" });
  expect(resolveInput(join(dir, "none"))).toBeNull();
});

test("directory mode merges domains in file order; an override warns and keeps the first position", async () => {
  put(
    "d/base.yml",
    "project_name: p\nglobal:\ndomains:\n  a: {subnet_id: 1}\n  b: {subnet_id: 2}\n",
  );
  put("d/domains/10-x.yml", "a: {subnet_id: 5}\nc: {subnet_id: 3}\n");
  put("d/domains/ignored.yaml", "z: {subnet_id: 9}\n");
  put("d/policies.yml", "network_policies: []\n");
  const loaded = await loadInfra(join(dir, "d"));
  const data = loaded.data as { domains: Record<string, { subnet_id: number }> };
  expect(Object.keys(data.domains)).toEqual(["a", "b", "c"]);
  expect(data.domains.a?.subnet_id).toBe(5);
  expect(loaded.warnings[0]?.message).toContain("overrides");
  expect(readInputFiles(join(dir, "d")).map(([p]) => p.slice(dir.length))).toEqual([
    "/d/base.yml",
    "/d/domains/10-x.yml",
    "/d/policies.yml",
  ]);
});

test("policies.yml holds only network_policies; a missing base.yml is a LoadError", async () => {
  put("e/base.yml", "project_name: p\n");
  put("e/policies.yml", "network_policy: []\n");
  await expect(loadInfra(join(dir, "e"))).rejects.toBeInstanceOf(LoadError);
  mkdirSync(join(dir, "f"));
  await expect(loadInfra(join(dir, "f"))).rejects.toThrow("base.yml not found");
});
