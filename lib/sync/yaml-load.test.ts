import { describe, expect, test } from "bun:test";
import { createLocator, parseYaml } from "./yaml-load.ts";

describe("parseYaml", () => {
  test("reads YAML 1.1 booleans as PyYAML does (the exact path)", async () => {
    const r = await parseYaml("a: yes\nb: off\n", "x.yml");
    expect(r).toEqual({ ok: true, value: { a: true, b: false } });
  });
  test("reports a duplicate key with its line instead of keeping the last one", async () => {
    const r = await parseYaml("a: 1\nb: 2\na: 3\n", "x.yml");
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.issues[0]?.line).toBe(3);
      expect(r.issues[0]?.message).toContain("twice");
    }
  });
  test("reports a syntax error with file and line", async () => {
    const r = await parseYaml("a: [1, 2\nb: 3\n", "infra.yml");
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.issues[0]?.file).toBe("infra.yml");
      expect(r.issues[0]?.line).toBeGreaterThan(0);
    }
  });
});

describe("Locator", () => {
  test("finds the line of a nested value and of a key", async () => {
    const loc = await createLocator("a:\n  b:\n    - x\n    - y\n  c: 2\n");
    expect(loc.locate(["a", "b", 1])?.line).toBe(4);
    expect(loc.locate(["a", "c"], true)).toEqual({ line: 5, col: 3 });
  });
});
