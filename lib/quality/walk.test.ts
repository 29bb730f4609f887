import { afterAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { walkFiles } from "./walk.ts";

const dir = mkdtempSync(join(tmpdir(), "anklume-walk-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("walkFiles() lists files sorted and relative, skipping named directories and symlinks", () => {
  for (const d of ["b", "node_modules/x", "a/inventory"])
    mkdirSync(join(dir, d), { recursive: true });
  for (const f of ["z.ts", "b/y.ts", "node_modules/x/i.ts", "a/inventory/h.yml", "a/k.md"]) {
    writeFileSync(join(dir, f), "");
  }
  symlinkSync(join(dir, "z.ts"), join(dir, "link.ts"));
  expect(walkFiles(dir, new Set(["node_modules", "inventory"]))).toEqual([
    "a/k.md",
    "b/y.ts",
    "z.ts",
  ]);
});
