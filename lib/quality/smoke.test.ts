import { describe, expect, test } from "bun:test";
import { parseSteps, STEPS, smokeSummary, stepHeader, tail } from "./smoke.ts";

describe("parseSteps()", () => {
  test("all five by default; lists and ranges select steps in order", () => {
    expect(parseSteps(undefined).map((s) => s.n)).toEqual([1, 2, 3, 4, 5]);
    expect(parseSteps("5,1").map((s) => s.n)).toEqual([1, 5]);
    expect(parseSteps("2-4").map((s) => s.n)).toEqual([2, 3, 4]);
  });
  test("anything but step numbers 1-5 is refused with the form to use", () => {
    for (const bad of ["0", "6", "a", "4-2", "1,,2"]) {
      expect(() => parseSteps(bad)).toThrow(/use numbers 1-5, e.g. 1,3-5/);
    }
  });
});

describe("the report", () => {
  test("the steps are SPEC-operations section 18's, the last one a direct Incus probe", () => {
    expect(STEPS.map((s) => s.target)).toEqual(["sync-dry", "check", "lint", "snap-list", null]);
    expect(stepHeader(STEPS[1] as (typeof STEPS)[number])).toBe(
      "--- Step 2/5: check mode apply (make check) ---",
    );
  });
  test("one failed step fails the run and is named; no step at all is not a pass", () => {
    const [a, b] = STEPS as [(typeof STEPS)[number], (typeof STEPS)[number]];
    expect(smokeSummary([{ step: a, ok: true, detail: "" }])).toEqual({
      line: "Smoke: 1 passed, 0 failed",
      ok: true,
    });
    expect(
      smokeSummary([
        { step: a, ok: true, detail: "" },
        { step: b, ok: false, detail: "" },
      ]),
    ).toEqual({ line: "Smoke: 1 passed, 1 failed (2 check mode apply)", ok: false });
    expect(smokeSummary([]).ok).toBe(false);
  });
  test("tail() keeps the last non-empty lines, indented", () => {
    expect(tail("a\n\nb\nc\n", 2)).toBe("    b\n    c");
  });
});
