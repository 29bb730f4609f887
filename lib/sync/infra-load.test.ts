import { afterAll, expect, test } from "bun:test";
import { Buffer } from "node:buffer";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  LoadError,
  loadInfra,
  MAX_INPUT_BYTES,
  readInputFiles,
  resolveInput,
} from "./infra-load.ts";

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

test("D4: a domain file or policies.yml that cannot be read is an error, never an absence", async () => {
  const { symlinkSync } = await import("node:fs");
  const cases: [string, () => void, RegExp][] = [
    [
      "dangling",
      () => symlinkSync("missing-volume/x.yml", join(dir, "g/domains/x.yml")),
      /symbolic link to a missing file/,
    ],
    ["loop", () => symlinkSync("x.yml", join(dir, "g/domains/x.yml")), /symbolic link loop/],
    ["directory", () => mkdirSync(join(dir, "g/domains/x.yml")), /is a directory/],
    [
      "policies dir",
      () => mkdirSync(join(dir, "g/policies.yml")),
      /policies\.yml: it is a directory/,
    ],
    [
      "domains file",
      () => writeFileSync(join(dir, "g/domains"), "x"),
      /is a file, not a directory/,
    ],
  ];
  for (const [name, make, message] of cases) {
    rmSync(join(dir, "g"), { recursive: true, force: true });
    put("g/base.yml", "project_name: p\nglobal:\n  base_subnet: '10.1'\n");
    if (name !== "domains file") put("g/domains/lab.yml", "lab: {subnet_id: 1}\n");
    make();
    expect(() => readInputFiles(join(dir, "g")), name).toThrow(message);
    await expect(loadInfra(join(dir, "g")), name).rejects.toThrow(message);
  }
});

test("D11: only regular files are read (no FIFO, no device), up to MAX_INPUT_BYTES", async () => {
  const { spawnSync } = await import("node:child_process");
  spawnSync("mkfifo", [join(dir, "fifo.yml")]);
  expect(() => readInputFiles(join(dir, "fifo.yml"))).toThrow(/not a regular file/);
  put("h/base.yml", "project_name: p\n");
  mkdirSync(join(dir, "h/domains"), { recursive: true });
  spawnSync("mkfifo", [join(dir, "h/domains/f.yml")]);
  expect(() => readInputFiles(join(dir, "h"))).toThrow(/f\.yml: it is not a regular file/);
  expect(() => readInputFiles("/dev/zero")).toThrow(/not a regular file/);
  put("big.yml", `a: "${"x".repeat(MAX_INPUT_BYTES)}"\n`);
  expect(() => readInputFiles(join(dir, "big.yml"))).toThrow(/larger than 16 MiB/);
});

test("D12: invalid UTF-8 and characters PyYAML refuses (NUL, C0 controls) are errors with a line", () => {
  const bad = (name: string, bytes: Uint8Array | string) => {
    writeFileSync(join(dir, name), bytes);
    try {
      readInputFiles(join(dir, name));
    } catch (e) {
      return (e as LoadError).issues[0];
    }
    return undefined;
  };
  expect(bad("nul.yml", "a: 1\nb: my\0x\n")).toMatchObject({ line: 2, col: 6 });
  expect(bad("nul.yml", "a: 1\nb: my\0x\n")?.message).toContain("U+0000");
  expect(bad("esc.yml", "a: \u001b[1m\n")?.message).toContain("U+001B");
  const latin1 = Buffer.from("a: 1\n# caf\xe9\n", "latin1");
  expect(bad("l1.yml", latin1)).toMatchObject({ line: 2 });
  expect(bad("l1.yml", latin1)?.message).toContain("not valid UTF-8");
  // A BOM, tabs in comments, unicode and NEL are fine, as in PyYAML.
  expect(bad("ok.yml", "\ufeffa: 1 # \t café \u0085\n")).toBeUndefined();
  expect(readInputFiles(join(dir, "ok.yml"))[0]?.[1]).toBe("\ufeffa: 1 # \t café \u0085\n");
});
