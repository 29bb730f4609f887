/**
 * Every name the Makefile declares .PHONY has a rule (issue 11: v1 listed
 * names such as test-integration and ci that had none, so `make ci` said
 * "Nothing to be done" and succeeded). Reads the Makefile; no daemon.
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";

test("every .PHONY name of the Makefile has a rule", () => {
  const text = readFileSync(join(import.meta.dir, "..", "Makefile"), "utf8");
  const joined = text.replace(/\\\n/g, " ");
  const phony = new Set<string>();
  for (const m of joined.matchAll(/^\.PHONY:(.*)$/gm)) {
    for (const n of (m[1] ?? "").split(/\s+/)) if (n) phony.add(n);
  }
  const rules = new Set([...text.matchAll(/^([A-Za-z0-9_./-]+)\s*:(?!=)/gm)].map((m) => m[1]));
  expect(phony.size).toBeGreaterThan(20);
  expect([...phony].filter((n) => !rules.has(n)).sort()).toEqual([]);
});
