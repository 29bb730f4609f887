import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import {
  freshTimestamp,
  isTimestamp,
  parseHistory,
  parseKeep,
  parseRollbackTarget,
  planCleanup,
  preApplyName,
  preApplyTimestamp,
  readState,
  recordSnapshot,
  snapshotNameProblem,
  timestamp,
  userSnapshotName,
  writeHistory,
} from "./naming.ts";

/** The fixed default seed replays CI's cases; FC_SEED=<n> explores others (test audit 6.5). */
const SEED = Number(process.env.FC_SEED ?? 20261125);

describe("naming", () => {
  test("timestamp() formats local time as YYYYMMDD-HHMMSS", () => {
    expect(timestamp(new Date(2026, 1, 19, 14, 30, 22))).toBe("20260219-143022");
    expect(timestamp(new Date(2026, 0, 1, 0, 0, 5))).toBe("20260101-000005");
  });

  test("userSnapshotName() uses the snap- prefix", () => {
    expect(userSnapshotName(new Date(2026, 1, 19, 14, 30, 22))).toBe("snap-20260219-143022");
  });

  test("isTimestamp() rejects malformed and impossible dates", () => {
    expect(isTimestamp("20260219-143022")).toBe(true);
    for (const bad of [
      "20260230-120000",
      "20261319-120000",
      "20260219-246000",
      "2026021-143022",
      "x",
    ]) {
      expect(isTimestamp(bad)).toBe(false);
    }
  });

  test("pre-apply names round-trip through preApplyTimestamp()", () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date(2000, 0, 1), max: new Date(2099, 11, 31), noInvalidDate: true }),
        (d) => {
          const ts = timestamp(d);
          expect(preApplyTimestamp(preApplyName(ts))).toBe(ts);
          expect(parseRollbackTarget(ts)).toBe(ts);
          expect(parseRollbackTarget(preApplyName(ts))).toBe(ts);
        },
      ),
      { seed: SEED },
    );
    expect(preApplyTimestamp("snap-20260219-143022")).toBeNull();
    expect(parseRollbackTarget("latest")).toBeNull();
  });

  test("snapshotNameProblem() rejects names Incus would refuse", () => {
    expect(snapshotNameProblem("before-upgrade")).toBeNull();
    expect(snapshotNameProblem("a/b")).toContain("/");
    expect(snapshotNameProblem("")).not.toBeNull();
    expect(snapshotNameProblem("a b")).toContain("whitespace");
  });

  test("freshTimestamp() moves past a name already in the history", () => {
    const now = new Date(2026, 1, 19, 14, 30, 22);
    expect(freshTimestamp(now, [])).toBe("20260219-143022");
    expect(freshTimestamp(now, ["pre-apply-20260219-143022", "pre-apply-20260219-143023"])).toBe(
      "20260219-143024",
    );
  });
});

describe("retention", () => {
  test("planCleanup() keeps exactly the newest N, oldest removed first", () => {
    fc.assert(
      fc.property(fc.array(fc.string(), { maxLength: 20 }), fc.nat(25), (history, keep) => {
        const plan = planCleanup(history, keep);
        expect(plan.keep.length).toBe(Math.min(keep, history.length));
        expect([...plan.remove, ...plan.keep]).toEqual(history);
      }),
      { seed: SEED },
    );
    expect(planCleanup(["a", "b", "c", "d"], 1)).toEqual({ remove: ["a", "b", "c"], keep: ["d"] });
  });

  test("planCleanup() refuses a negative keep", () => {
    expect(() => planCleanup(["a"], -1)).toThrow();
  });

  test("parseKeep() accepts only non-negative integers", () => {
    expect(parseKeep("5")).toBe(5);
    expect(parseKeep("0")).toBe(0);
    for (const bad of ["-1", "x", "1.5", ""]) expect(parseKeep(bad)).toBeNull();
  });
});

describe("state files", () => {
  test("recordSnapshot() writes v1's three files; writeHistory() trims without touching latest", () => {
    const dir = mkdtempSync(join(tmpdir(), "snap-state-"));
    try {
      expect(readState(dir)).toEqual({ latest: null, scope: null, history: [] });
      recordSnapshot(dir, "20260219-143022", "all");
      recordSnapshot(dir, "20260219-150000", "lab");
      expect(readFileSync(join(dir, "latest"), "utf8")).toBe("20260219-150000\n");
      expect(readFileSync(join(dir, "latest-scope"), "utf8")).toBe("lab\n");
      expect(readFileSync(join(dir, "history"), "utf8")).toBe(
        "pre-apply-20260219-143022\npre-apply-20260219-150000\n",
      );
      writeHistory(dir, ["pre-apply-20260219-150000"]);
      expect(readState(dir)).toEqual({
        latest: "20260219-150000",
        scope: "lab",
        history: ["pre-apply-20260219-150000"],
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("parseHistory() ignores blank lines and surrounding spaces", () => {
    expect(parseHistory("\n pre-apply-1 \n\npre-apply-2\n")).toEqual([
      "pre-apply-1",
      "pre-apply-2",
    ]);
  });
});
