import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";

const ROOT = join(import.meta.dir, "../../..");

/** Every .ts file of the project outside node_modules. */
function sources(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === "node_modules" || e.name.startsWith(".")) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) sources(p, out);
    else if (e.name.endsWith(".ts")) out.push(p);
  }
  return out;
}

test("the speed tricks in lib/sync/_fast are reached only through lib/sync's public functions", () => {
  const importers = sources(ROOT)
    .filter((f) => !f.includes("/lib/sync/_fast/"))
    .filter((f) => /from "[^"]*_fast\/|import\("[^"]*_fast\//.test(readFileSync(f, "utf8")))
    .map((f) => relative(ROOT, f))
    .sort();
  // sync (the stamp), checkShape (the compiled shape check), parseYaml (the plain-YAML scan),
  // and the differential benches (compiled check vs valibot, fast vs exact YAML).
  expect(importers).toEqual([
    "bench/differential.ts",
    "bench/yaml-differential.ts",
    "lib/sync/shape-check.ts",
    "lib/sync/sync.ts",
    "lib/sync/yaml-load.ts",
  ]);
});
