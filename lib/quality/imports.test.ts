import { describe, expect, test } from "bun:test";
import {
  localUses,
  parseExports,
  parseImports,
  resolveSpecifier,
  stripComments,
} from "./imports.ts";

describe("parseImports()", () => {
  test("reads named, default, namespace, type, side-effect, dynamic imports and re-exports", () => {
    const text = [
      'import process from "node:process";',
      'import { a, b as c, type D } from "./x.ts";',
      "import {",
      "  e,",
      "  type F,",
      '} from "../y.ts";',
      'import * as ns from "./z.ts";',
      'import type { G } from "./g.ts";',
      'import "./side.ts";',
      'const m = await import("./dyn.ts");',
      'export { h } from "./h.ts";',
    ].join("\n");
    expect(parseImports(text)).toEqual([
      { from: "node:process", names: ["default"] },
      { from: "./x.ts", names: ["a", "b", "D"] },
      { from: "../y.ts", names: ["e", "F"] },
      { from: "./z.ts", names: ["*"] },
      { from: "./g.ts", names: ["G"] },
      { from: "./side.ts", names: [] },
      { from: "./dyn.ts", names: ["*"] },
      { from: "./h.ts", names: ["h"] },
    ]);
  });
  test("an import written inside a comment or a help text is not an import", () => {
    const text = [
      "// import { x } from './commented.ts';",
      "/* import { y } from './block.ts'; */",
      "//   default: /etc/apt/sources.list.d/*.sources",
      'import { z } from "./real.ts";',
      "// and */ closes nothing",
    ].join("\n");
    expect(parseImports(text)).toEqual([{ from: "./real.ts", names: ["z"] }]);
  });
});

describe("stripComments()", () => {
  test("keeps strings (a // inside one is not a comment) and every line break", () => {
    const text = 'const u = "http://x"; // note\n/* a\nb */ const v = 1;';
    const out = stripComments(text);
    expect(out).toContain('"http://x"');
    expect(out).not.toContain("note");
    expect(out.split("\n")).toHaveLength(3);
    expect(out).toContain("const v = 1;");
  });
});

describe("parseExports()", () => {
  test("lists declarations and export lists with their lines", () => {
    const text = [
      "export const A = 1;",
      "export async function run() {}",
      "export type T = string;",
      "export interface I {}",
      "export class K {}",
      "const x = 1, y = 2;",
      "export { x, y as z };",
      "// export const NOT = 1;",
    ].join("\n");
    expect(parseExports(text)).toEqual([
      { name: "A", line: 1 },
      { name: "run", line: 2 },
      { name: "T", line: 3 },
      { name: "I", line: 4 },
      { name: "K", line: 5 },
      { name: "x", line: 7 },
      { name: "z", line: 7 },
    ]);
  });
});

describe("localUses() and resolveSpecifier()", () => {
  test("counts uses besides the declaration, not in comments, imports or longer names", () => {
    const text =
      'import { LIMIT } from "./x.ts";\nexport const LIMITS = 1;\nexport const MAX = 2;\n// MAX\nconst y = MAX + 1;\nconst o = a.MAX;';
    expect(localUses(text, "MAX")).toBe(1);
    expect(localUses(text, "LIMITS")).toBe(0);
    expect(localUses(text, "LIMIT")).toBe(0);
  });
  test("resolves relative specifiers with or without .ts; packages resolve to null", () => {
    const exists = (p: string) => ["lib/core/cli.ts", "lib/a/index.ts"].includes(p);
    expect(resolveSpecifier("scripts/x.ts", "../lib/core/cli.ts", exists)).toBe("lib/core/cli.ts");
    expect(resolveSpecifier("scripts/x.ts", "../lib/core/cli", exists)).toBe("lib/core/cli.ts");
    expect(resolveSpecifier("lib/b/y.ts", "../a", exists)).toBe("lib/a/index.ts");
    expect(resolveSpecifier("scripts/x.ts", "zx", exists)).toBeNull();
    expect(resolveSpecifier("scripts/x.ts", "./missing.ts", exists)).toBeNull();
  });
});
