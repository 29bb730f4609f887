import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
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
  stateDir,
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
      writeFileSync(join(dir, "latest"), "\n");
      writeFileSync(join(dir, "latest-scope"), "  \n");
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

describe("edges (mutation survivors)", () => {
  test("isTimestamp rejects impossible dates and times, each field on its own, and extra text", () => {
    expect(isTimestamp("20261129-235959")).toBe(true);
    for (const bad of [
      "20261329-120000",
      "20260230-120000",
      "20261100-120000",
      "20261129-240000",
      "20261129-126000",
      "20261129-120060",
      "20261129-120000x",
      "x20261129-120000",
      "2026112-1200000",
    ]) {
      expect(isTimestamp(bad)).toBe(false);
    }
  });
  test("preApplyTimestamp wants the prefix and a real timestamp after it", () => {
    expect(preApplyTimestamp("pre-apply-20261129-120000")).toBe("20261129-120000");
    expect(preApplyTimestamp("snap-20261129-120000")).toBeNull();
    expect(preApplyTimestamp("pre-apply-20261399-120000")).toBeNull();
    // Another prefix of the same length is not pre-apply-.
    expect(preApplyTimestamp("snapshots-20261129-120000")).toBeNull();
  });
  test("snapshotNameProblem: each rule with its message", () => {
    expect(snapshotNameProblem("")).toBe("a snapshot name cannot be empty");
    expect(snapshotNameProblem("a/b")).toBe(
      'snapshot name "a/b" contains "/"; use letters, digits, - _ .',
    );
    expect(snapshotNameProblem(".")).toBe('snapshot name "." is reserved');
    expect(snapshotNameProblem("..")).toBe('snapshot name ".." is reserved');
    expect(snapshotNameProblem("a b")).toBe(
      'snapshot name "a b" contains whitespace; use - or _ instead',
    );
    expect(snapshotNameProblem("...")).toBeNull();
    expect(snapshotNameProblem("ok.1")).toBeNull();
  });
  test("planCleanup keeps everything when the history is exactly keep long; parseKeep wants digits only", () => {
    expect(planCleanup(["a", "b"], 2)).toEqual({ remove: [], keep: ["a", "b"] });
    expect(planCleanup(["a", "b", "c"], 2)).toEqual({ remove: ["a"], keep: ["b", "c"] });
    expect(() => planCleanup([], -1)).toThrow("keep must be an integer >= 0, got -1");
    expect(() => planCleanup([], 1.5)).toThrow("keep must be an integer >= 0, got 1.5");
    expect(parseKeep("12")).toBe(12);
    expect(parseKeep("0")).toBe(0);
    for (const bad of ["", "-1", "1.5", "1x", "x1", " 1"]) expect(parseKeep(bad)).toBeNull();
  });
  test("stateDir: the argument, else ANKLUME_SNAPSHOT_STATE_DIR, else ~/.anklume/pre-apply-snapshots", () => {
    const saved = process.env.ANKLUME_SNAPSHOT_STATE_DIR;
    try {
      process.env.ANKLUME_SNAPSHOT_STATE_DIR = "/from/env";
      expect(stateDir("/given")).toBe("/given");
      expect(stateDir()).toBe("/from/env");
      delete process.env.ANKLUME_SNAPSHOT_STATE_DIR;
      expect(stateDir()).toBe(join(homedir(), ".anklume", "pre-apply-snapshots"));
      expect(stateDir("")).toBe(join(homedir(), ".anklume", "pre-apply-snapshots"));
    } finally {
      if (saved === undefined) delete process.env.ANKLUME_SNAPSHOT_STATE_DIR;
      else process.env.ANKLUME_SNAPSHOT_STATE_DIR = saved;
    }
  });
  test("an empty history file and blank state files read as empty", () => {
    const dir = mkdtempSync(join(tmpdir(), "anklume-naming-"));
    try {
      writeHistory(dir, []);
      expect(readFileSync(join(dir, "history"), "utf8")).toBe("");
      expect(readState(dir)).toEqual({ latest: null, scope: null, history: [] });
      writeFileSync(join(dir, "latest"), "\n");
      writeFileSync(join(dir, "latest-scope"), "  \n");
      expect(readState(dir)).toEqual({ latest: null, scope: null, history: [] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
