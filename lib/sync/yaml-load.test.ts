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

describe("parseExact reads as PyYAML does, or refuses with a clear message (D12, D13, D17)", () => {
  const issue = async (text: string) => {
    const r = await parseYaml(text, "x.yml");
    return r.ok ? undefined : r.issues[0];
  };
  test("D12: unknown tags, %YAML 9.9 and tabs where PyYAML refuses them are errors with a line", async () => {
    expect(await issue("a: 1\nb: !foo bar\n")).toMatchObject({ line: 2, col: 4 });
    expect((await issue("a: !foo bar\n"))?.message).toContain("unknown tag (!foo)");
    expect((await issue("%YAML 9.9\n---\na: 1\n"))?.message).toContain("9.9");
    for (const t of ["a:\tb\n", "a: b\tc\n", "a:\n\t- 1\n", "a: 1\t\n"]) {
      expect((await issue(t))?.message, JSON.stringify(t)).toMatch(/[Tt]ab/);
    }
    // Tabs inside quotes, block scalars and comments are fine, as in PyYAML.
    const ok = await parseYaml("a: 'x\ty' # \tc\nb: |\n  \tz\n", "x.yml");
    expect(ok).toEqual({ ok: true, value: { a: "x\ty", b: "\tz\n" } });
  });
  test("D12: numbers PyYAML does not read as numbers stay strings (2e0, 08, .)", async () => {
    const r = await parseYaml(
      "a: 2e0\nb: 08\n.: 1\nc: 017\nd: 0x1F\ne: 1_000\nf: 1.5\ng: 1.5e3\n",
      "x.yml",
    );
    expect(r).toEqual({
      ok: true,
      value: { a: "2e0", b: "08", ".": 1, c: 15, d: 31, e: 1000, f: 1.5, g: "1.5e3" },
    });
  });
  test("D13: 10,000 levels of nesting give a clear error, never a stack overflow", async () => {
    const texts = [
      `a: ${"[".repeat(10000)}${"]".repeat(10000)}\n`,
      `${Array.from({ length: 300 }, (_, i) => `${" ".repeat(i)}k:`).join("\n")} 1\n`,
    ];
    for (const t of texts) {
      const i = await issue(t);
      expect(i?.message).toMatch(/nests (too deeply|deeper than 100 levels)/);
      expect(i?.message).not.toContain("call stack");
      expect(i?.fix).toContain("flatten");
    }
  });
  test("D17: two documents and a complex key get the project's own words, no library advice or warning", async () => {
    const two = await issue("a: 1\n---\nb: 2\n");
    expect(two).toMatchObject({ line: 2 });
    expect(two?.message).toContain("more than one YAML document");
    expect(two?.message).not.toContain("parseAllDocuments");
    const warnings: unknown[] = [];
    const onWarning = (w: unknown) => warnings.push(w);
    process.on("warning", onWarning);
    const key = await issue("? [a, b]\n: 1\n");
    await new Promise((r) => setTimeout(r, 10));
    process.off("warning", onWarning);
    expect(key?.message).toContain("used as a key");
    expect(warnings).toEqual([]);
  });
});

test("D13: an alias bomb stops at the alias cap with the project's own words", async () => {
  let text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (let i = 0, prev = "a"; i < 8; prev = `b${i}`, i++) {
    text += `b${i}: &b${i} [${Array(10).fill(`*${prev}`).join(", ")}]\n`;
  }
  const r = await parseYaml(text, "x.yml");
  expect(r.ok).toBe(false);
  if (!r.ok) {
    expect(r.issues[0]?.message).toContain("aliases (*name) expand to too much data");
    expect(r.issues[0]?.message).not.toContain("attack");
  }
});
