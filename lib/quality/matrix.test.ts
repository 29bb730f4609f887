import { describe, expect, test } from "bun:test";
import { coverage, findRefs, formatCoverage, MatrixError, parseMatrix, verdict } from "./matrix.ts";

// Built, so that this file's own examples are not references to the real matrix.
const M = "Matrix";

const MATRIX = `
capabilities:
  snapshots:
    prefix: SN
    description: snapshots
    depth_1:
      - {id: SN-001, action: a, expected: b, deterministic: true}
      - {id: SN-002, action: a, expected: b, deterministic: true}
    depth_2:
      - {id: SN-2-001, action: a, expected: b, deterministic: true}
  apply:
    prefix: AP
    description: apply
    depth_3:
      - {id: AP-3-001, action: x, expected: y, deterministic: true}
`;

describe("parseMatrix()", () => {
  test("reads capabilities, prefixes and cells", () => {
    const m = parseMatrix(MATRIX);
    expect(Object.keys(m.capabilities)).toEqual(["snapshots", "apply"]);
    expect(m.capabilities.snapshots?.depth_1?.map((c) => c.id)).toEqual(["SN-001", "SN-002"]);
  });
  test("lists every problem: id shape per depth and prefix, duplicates, unknown keys, shared prefixes", () => {
    const bad = `
capabilities:
  a:
    prefix: AA
    description: d
    depth_1:
      - {id: AA-2-001, action: a, expected: b, deterministic: true}
      - {id: BB-001, action: a, expected: b, deterministic: true}
    depth_2:
      - {id: AA-2-001, action: a, expected: b, deterministic: true}
  b:
    prefix: AA
    description: d
`;
    let err: MatrixError | undefined;
    try {
      parseMatrix(bad);
    } catch (e) {
      err = e as MatrixError;
    }
    expect(err).toBeInstanceOf(MatrixError);
    expect(err?.problems).toEqual([
      'a.depth_1: id "AA-2-001" should look like AA-NNN',
      'a.depth_1: id "BB-001" should look like AA-NNN',
      'a.depth_2: id "AA-2-001" is used twice (also in a.depth_1)',
      "b: prefix AA is also a's",
    ]);
    expect(() =>
      parseMatrix("capabilities:\n  a:\n    prefix: AA\n    description: d\n    depht_1: []\n"),
    ).toThrow(/depht_1/);
    expect(() => parseMatrix("capabilities: [\n")).toThrow(MatrixError);
  });
});

describe("findRefs()", () => {
  test("reads // and # references, several ids on one line, with the line number", () => {
    const text = `x\n  // ${M}: SN-001, SN-2-001\ntest("t")\n# ${M}:AP-3-001\n// matrix: SN-002`;
    expect(findRefs("t.ts", text)).toEqual([
      { id: "SN-001", file: "t.ts", line: 2 },
      { id: "SN-2-001", file: "t.ts", line: 2 },
      { id: "AP-3-001", file: "t.ts", line: 4 },
    ]);
  });
});

describe("coverage() and verdict()", () => {
  const m = parseMatrix(MATRIX);
  test("counts covered cells per capability and depth, lists the uncovered ones", () => {
    const c = coverage(m, findRefs("a.test.ts", `// ${M}: SN-001\n// ${M}: SN-001, AP-3-001`));
    expect(c.total).toBe(4);
    expect(c.covered).toBe(2);
    expect(c.percent).toBe(50);
    expect(c.capabilities.snapshots?.depth_1).toEqual({
      total: 2,
      covered: 1,
      uncovered: ["SN-002"],
    });
    expect(c.capabilities.apply?.depth_1).toBeUndefined();
    expect(c.uncovered.map((u) => u.id)).toEqual(["SN-002", "SN-2-001"]);
    expect(c.references["SN-001"]).toEqual(["a.test.ts:1", "a.test.ts:2"]);
    expect(Object.keys(c.capabilities)).toEqual(["apply", "snapshots"]);
  });
  test("the threshold compares the unrounded percentage", () => {
    const refs = findRefs("a.test.ts", `// ${M}: SN-001, SN-002`);
    const c = coverage(m, refs);
    expect(verdict(c, 50).ok).toBe(true);
    expect(verdict(c, 50.01)).toEqual({ ok: false, line: "FAIL: Coverage 50% < threshold 50.01%" });
  });
  test("an id the matrix does not have fails the run whatever the coverage", () => {
    const c = coverage(
      m,
      findRefs("b.test.ts", `// ${M}: SN-001, SN-002, SN-2-001, AP-3-001, SN-099`),
    );
    expect(c.percent).toBe(100);
    expect(c.unknown).toEqual([{ id: "SN-099", file: "b.test.ts", line: 1 }]);
    expect(verdict(c, 0).ok).toBe(false);
    const text = formatCoverage(c, 0);
    expect(text).toContain("SN-099 at b.test.ts:1");
    expect(text).toContain(`\nTOTAL${" ".repeat(30)}     4       4  100%\n`);
  });
});
