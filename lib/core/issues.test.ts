import { expect, test } from "bun:test";
import {
  capIssues,
  closest,
  errorCount,
  formatIssue,
  formatPath,
  type Issue,
  isMapping,
  q,
  typeName,
} from "./issues.ts";

test("formatPath writes dotted paths, indexes and quoted odd keys", () => {
  expect(formatPath(["domains", "pro", "machines", "pro-dev", "ip"])).toBe(
    "domains.pro.machines.pro-dev.ip",
  );
  expect(formatPath(["network_policies", 2, "to"])).toBe("network_policies[2].to");
  expect(formatPath(["x", "config", "security.nesting"])).toBe('x.config["security.nesting"]');
  expect(formatPath([])).toBe("(top level)");
});

test("formatIssue puts file:line:col first and the fix on its own line", () => {
  const text = formatIssue({
    severity: "error",
    path: ["domains", "pro", "subnet_id"],
    message: "bad",
    fix: "do this",
    file: "infra.yml",
    line: 7,
    col: 16,
  });
  expect(text).toBe("infra.yml:7:16: domains.pro.subnet_id: bad\n      fix: do this");
});

test("closest suggests a near key and nothing for a far one", () => {
  expect(closest("subnet_idd", ["subnet_id", "machines"])).toBe("subnet_id");
  expect(closest("machnes", ["subnet_id", "machines"])).toBe("machines");
  expect(closest("zzzzzz", ["subnet_id", "machines"])).toBeUndefined();
});

test("q and typeName describe values for messages", () => {
  expect(q("x")).toBe('"x"');
  expect(q(3)).toBe("3");
  expect(typeName(true)).toBe("the boolean true");
  expect(typeName([])).toBe("a list");
  expect(typeName(null)).toBe("null");
});

test("closest is bounded: no suggestion past 64 characters, and a huge pair costs no quadratic time (D14)", () => {
  const long = "a".repeat(100);
  // A one-letter typo of a long name: suggested up to 64 characters, not beyond.
  expect(closest(`${"a".repeat(63)}b`, [`${"a".repeat(63)}c`])).toBe(`${"a".repeat(63)}c`);
  expect(closest(`${long}b`, [`${long}c`])).toBeUndefined();
  // 200,000 × 200,000 cells would take minutes; a short word against a huge candidate stops at once.
  const huge = "x".repeat(200_000);
  expect(closest("machnes", [huge, "machines"])).toBe("machines");
  expect(closest(huge, [huge])).toBeUndefined();
});

test("closest keeps the first of equally close candidates and takes any iterable", () => {
  expect(closest("ab", new Set(["ac", "ad"]))).toBe("ac");
  expect(closest("pro", new Map([["pro", 1]]).keys())).toBe("pro");
});

test("echoed values and path keys are cut to 80 characters (D17)", () => {
  const name = "n".repeat(1 << 20);
  expect(q(name)).toBe(`"${"n".repeat(79)}…"`);
  expect(typeName(name)).toBe(`the string "${"n".repeat(79)}…"`);
  expect(formatPath(["domains", name])).toBe(`domains["${"n".repeat(79)}…"]`);
});

test("a date and binary data are named as such, not as a mapping (D17)", () => {
  expect(typeName(new Date("2024-01-01"))).toBe("the date 2024-01-01 (an unquoted date)");
  expect(typeName(new Date("2024-01-01T10:00:00Z"))).toContain("2024-01-01T10:00:00.000Z");
  expect(typeName(new Uint8Array(2))).toBe("binary data (a !!binary value)");
  expect(q(new Date(0))).toBe("the date 1970-01-01 (an unquoted date)");
});

test("isMapping: a plain object only, not a list, a date or binary data (D2)", () => {
  expect(isMapping({})).toBe(true);
  expect(isMapping(Object.create(null))).toBe(true);
  for (const x of [[], new Date(0), new Uint8Array(1), null, "x", 1, new Map()]) {
    expect(isMapping(x)).toBe(false);
  }
});

test("capIssues keeps the first 100 errors and warnings and counts the rest (D13)", () => {
  const e = (i: number): Issue => ({ severity: "error", path: [i], message: `e${i}` });
  const w = (i: number): Issue => ({ severity: "warning", path: [i], message: `w${i}` });
  const all = [...Array.from({ length: 250 }, (_, i) => e(i)), w(0), w(1)];
  const capped = capIssues(all);
  expect(capped.filter((i) => i.severity === "warning")).toHaveLength(2);
  expect(capped.filter((i) => i.severity === "error")).toHaveLength(101);
  expect(capped.at(-1)?.more).toBe(150);
  expect(formatIssue(capped.at(-1) as Issue)).toBe(
    "… and 150 more errors (only the first 100 are listed; fix these and sync again)",
  );
  expect(errorCount(capped)).toBe(250);
  expect(capIssues(all.slice(0, 100))).toEqual(all.slice(0, 100));
  expect(capIssues([e(1), e(2), e(3)], 2).at(-1)?.message).toContain("1 more error (");
});
