import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { yamlDifference, yamlDocument } from "../../../bench/yaml-differential.ts";
import { parseExact, parseYaml } from "../yaml-load.ts";
import { plainBlockYaml } from "./plain-yaml.ts";

describe("plainBlockYaml", () => {
  test("accepts ordinary infra.yml text", () => {
    const text = `---\nproject_name: demo\nglobal:\n  base_subnet: "10.100"\ndomains:\n  pro:\n    subnet_id: 1\n    machines:\n      pro-dev:\n        ip: "10.100.1.10"\n        profiles: [default, gpu]\n        roles:\n          - base_system\n        config:\n          security.nesting: "true"\n`;
    expect(plainBlockYaml(text)).toBe(true);
  });
  test("rejects what Bun's parser could read differently", () => {
    for (const bad of [
      "a: yes\n",
      "a: 1\na: 2\n",
      "a:\n  b: 1\n  b: 2\n",
      "- x: 1\n  x: 2\n",
      "a: 017\n",
      "a: 1_000\n",
      "a: 2026-01-01\n",
      "a: &x 1\nb: *x\n",
      "a: |\n  text\n",
      "a: {b: 1}\n",
      "a: plain\n  continued\n",
      "on: 1\n",
      "a: [yes, no]\n",
    ]) {
      expect(plainBlockYaml(bad)).toBe(false);
    }
  });
  test("keeps separate mappings in a sequence apart", () => {
    expect(plainBlockYaml("- p: 1\n  q: 2\n- p: 3\n  q: 4\n")).toBe(true);
    expect(plainBlockYaml("a:\n  x: 1\nb:\n  x: 2\n")).toBe(true);
    expect(plainBlockYaml("roles:\n- a\n- b\nother: 1\n")).toBe(true);
  });
});

// Random block documents built from tricky scalars: whenever the scan accepts a
// text, Bun's parser must give exactly what the exact YAML 1.1 parser gives.
const scalar = fc.oneof(
  fc.constantFrom(
    "yes",
    "no",
    "on",
    "true",
    "False",
    "null",
    "~",
    "10.100",
    "017",
    "0o7",
    "0x1F",
    "1e3",
    "1_0",
    "12:30",
    "2026-01-01",
    ".5",
    "-1",
    "+1",
    "10.100.1.10",
    "a b",
    "x #y",
    "images:debian/13",
    "'q'",
    '"d"',
    "-",
    "--",
    "a:b",
  ),
  fc.string({ maxLength: 8 }),
  fc.integer().map(String),
);
const keyArb = fc.oneof(
  fc.constantFrom("a", "b", "c", "yes", "1", "x.y"),
  fc.string({ minLength: 1, maxLength: 4 }),
);
function render(depth: number): fc.Arbitrary<string[]> {
  const leaf = scalar.map((s) => [s]);
  if (depth === 0) return leaf;
  const map = fc
    .array(fc.tuple(keyArb, render(depth - 1)), { minLength: 1, maxLength: 4 })
    .map((pairs) =>
      pairs.flatMap(([k, v]) =>
        v.length === 1 && !v[0]?.startsWith(" ")
          ? [`${k}: ${v[0]}`]
          : [`${k}:`, ...v.map((l) => `  ${l}`)],
      ),
    );
  const seq = fc
    .array(render(depth - 1), { minLength: 1, maxLength: 3 })
    .map((items) => items.flatMap((v) => [`- ${v[0]}`, ...v.slice(1).map((l) => `  ${l}`)]));
  const flow = fc.array(scalar, { maxLength: 3 }).map((xs) => [`[${xs.join(", ")}]`]);
  return fc.oneof(leaf, map, seq, flow);
}

test("fast and exact parsers agree on every text the scan accepts (property)", async () => {
  const bun = (globalThis as { Bun?: { YAML: { parse(t: string): unknown } } }).Bun;
  if (!bun) throw new Error("this property compares against Bun's parser");
  let accepted = 0;
  await fc.assert(
    fc.asyncProperty(render(3), async (lines) => {
      const text = `${lines.join("\n")}\n`;
      if (!plainBlockYaml(text)) return true;
      const exact = await parseExact(text, "t.yml");
      let fast: unknown;
      try {
        fast = bun.YAML.parse(text) ?? null;
      } catch {
        return !exact.ok;
      }
      if (!exact.ok) return false;
      accepted++;
      expect(fast).toEqual(exact.value);
      return true;
    }),
    { numRuns: 10000, seed: 20261129 },
  );
  expect(accepted).toBeGreaterThan(100);
});

test("D7: duplicate keys spelled differently are never accepted by the fast path", async () => {
  for (const text of [
    'a:\n  ip: "10.100.1.10"\n  "\\x69p": "10.100.1.99"\n',
    'a:\n  "\\u0069p": 1\n  ip: 2\n',
    "1: a\n+1: b\n",
    "- -0: a\n  0: b\n",
    "12345678901234567890: a\n12345678901234567891: b\n",
  ]) {
    expect(plainBlockYaml(text), text).toBe(false);
    expect((await parseYaml(text, "t.yml")).ok, text).toBe(false);
  }
});

// The same differential as `make bench-yaml-differential`, fewer runs, a fixed seed.
test("D7: parseYaml (fast path) never accepts or reads differently what parseExact rejects (differential, seed 7)", async () => {
  const runs = 20000;
  let fast = 0;
  for (const text of fc.sample(yamlDocument, { numRuns: runs, seed: 7 })) {
    const r = await yamlDifference(text);
    if (r.fast) fast++;
    expect(r.diff, text).toBeNull();
  }
  expect(fast).toBeGreaterThan(runs / 50);
}, 60_000);
