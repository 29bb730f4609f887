import { afterAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  contextDir,
  generatorContext,
  parentContext,
  readContextFiles,
  readParentContext,
} from "./nesting.ts";

const dir = mkdtempSync(join(tmpdir(), "anklume-nesting-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function context(name: string, files: Record<string, string>): string {
  const d = join(dir, name);
  mkdirSync(d);
  for (const [f, text] of Object.entries(files)) writeFileSync(join(d, f), text);
  return d;
}

test("readContextFiles keeps each file's text, null for an absent one", () => {
  const d = context("raw", { absolute_level: "2\n", yolo: "true\n" });
  expect(readContextFiles(d)).toEqual({
    dir: d,
    texts: { absolute_level: "2\n", relative_level: null, vm_nested: null, yolo: "true\n" },
  });
});

test("contextDir is ANKLUME_CONTEXT_DIR, else /etc/anklume", () => {
  const saved = process.env.ANKLUME_CONTEXT_DIR;
  try {
    delete process.env.ANKLUME_CONTEXT_DIR;
    expect(contextDir()).toBe("/etc/anklume");
    process.env.ANKLUME_CONTEXT_DIR = dir;
    expect(contextDir()).toBe(dir);
    expect(readContextFiles().dir).toBe(dir);
  } finally {
    if (saved === undefined) delete process.env.ANKLUME_CONTEXT_DIR;
    else process.env.ANKLUME_CONTEXT_DIR = saved;
  }
});

test("generatorContext: level 1 when absent, vm_nested null when absent (generator-contract §7, §5.1)", () => {
  const empty = readContextFiles(join(dir, "none"));
  expect(generatorContext(empty)).toEqual({ absoluteLevel: 1, vmNested: null, yolo: false });
  const d = context("gen", { absolute_level: "2\n", vm_nested: "False\n", yolo: "TRUE\n" });
  expect(generatorContext(readContextFiles(d))).toEqual({
    absoluteLevel: 2,
    vmNested: false,
    yolo: true,
  });
  writeFileSync(join(d, "absolute_level"), "garbage");
  expect(generatorContext(readContextFiles(d)).absoluteLevel).toBe(1);
  writeFileSync(join(d, "absolute_level"), " -1 \n");
  expect(generatorContext(readContextFiles(d)).absoluteLevel).toBe(-1);
});

test("parentContext: 0/0/false/false when absent (operations-contract §3.5 step 13)", () => {
  expect(readParentContext(join(dir, "none"))).toEqual({
    absolute_level: 0,
    relative_level: 0,
    vm_nested: false,
    yolo: false,
  });
  const d = context("parent", {
    absolute_level: "3\n",
    relative_level: "2\n",
    vm_nested: "TRUE\n",
    yolo: "false\n",
  });
  expect(readParentContext(d)).toEqual({
    absolute_level: 3,
    relative_level: 2,
    vm_nested: true,
    yolo: false,
  });
});

test("the two readings differ only where the contracts do: an absent or unreadable level", () => {
  const files = readContextFiles(context("both", { vm_nested: "false\n" }));
  expect(generatorContext(files).absoluteLevel).toBe(1);
  expect(parentContext(files).absolute_level).toBe(0);
  expect(generatorContext(files).vmNested).toBe(false);
  expect(parentContext(files).vm_nested).toBe(false);
});
