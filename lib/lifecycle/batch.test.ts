import { describe, expect, test } from "bun:test";
import type { InventoryHost } from "../core/inventory.ts";
import type { SnapInstance } from "../snapshots/ops.ts";
import { batchSnapshotName, isFailure, planBatch, verdictReason } from "./batch.ts";

const host = (h: string, project: string): InventoryHost => ({
  host: h,
  instance: `001-${h}`,
  project,
  groups: [],
  vars: {},
});
const inst = (name: string, project: string, snaps: string[]): SnapInstance => ({
  name,
  project,
  status: "Running",
  type: "container",
  snapshots: snaps.map((s) => ({ name: s, created_at: "" })),
});

const hosts = [
  host("admin", "001-anklume"),
  host("dev", "001-pro"),
  host("web", "001-pro"),
  host("gone", "001-pro"),
];
const live = [
  inst("001-admin", "001-anklume", ["s1"]),
  inst("001-dev", "001-pro", ["s1", "s2"]),
  inst("001-web", "001-pro", []),
  // Same name, another project: not the inventory's instance.
  inst("001-gone", "001-other", ["s1"]),
];

describe("planBatch", () => {
  test("create: run where the name is free, skip where it exists, fail where the instance is missing", () => {
    const p = planBatch("create", hosts, live, "s1", "nobody");
    expect(p.map((i) => [i.host, i.verdict])).toEqual([
      ["admin", "exists"],
      ["dev", "exists"],
      ["web", "run"],
      ["gone", "no-instance"],
    ]);
  });

  test("restore: run where the snapshot exists, missing elsewhere; the instance this runs in goes last", () => {
    const p = planBatch("restore", hosts, live, "s1", "001-admin");
    expect(p.map((i) => [i.host, i.verdict, i.self])).toEqual([
      ["dev", "run", false],
      ["web", "missing", false],
      ["gone", "no-instance", false],
      ["admin", "run", true],
    ]);
  });

  test("delete: run where it exists, absent elsewhere", () => {
    const p = planBatch("delete", hosts, live, "s2", "x");
    expect(p.map((i) => i.verdict)).toEqual(["absent", "run", "absent", "no-instance"]);
  });

  test("keeps the available names for the message", () => {
    const p = planBatch("restore", hosts, live, "nope", "x");
    expect(verdictReason("restore", "nope", p[1] as (typeof p)[number])).toBe(
      'no snapshot "nope"; available: s1, s2',
    );
    expect(verdictReason("restore", "nope", p[2] as (typeof p)[number])).toBe(
      'no snapshot "nope"; available: (none)',
    );
  });
});

test("isFailure: missing snapshots and instances fail create and restore; delete only skips", () => {
  expect(isFailure("restore", "missing")).toBe(true);
  expect(isFailure("create", "no-instance")).toBe(true);
  expect(isFailure("restore", "no-instance")).toBe(true);
  expect(isFailure("delete", "no-instance")).toBe(false);
  expect(isFailure("create", "exists")).toBe(false);
  expect(isFailure("delete", "absent")).toBe(false);
});

test("batchSnapshotName is v1's iso8601_basic_short in local time", () => {
  expect(batchSnapshotName(new Date(2026, 1, 22, 2, 8, 0))).toBe("20260222T020800");
});
