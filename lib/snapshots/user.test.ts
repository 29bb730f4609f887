import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import {
  createProject,
  destroy,
  fingerprint,
  launch,
  sh,
  snapshotsOf,
  testImage,
} from "../../tests/fixtures/snap-fixture.ts";
import { incusOrSkip, uniq } from "../../tests/helpers.ts";
import type { SnapInstance } from "./ops.ts";
import {
  createSnapshot,
  deleteSnapshot,
  formatCreated,
  isSelf,
  listSnapshots,
  resolveTarget,
  restoreSnapshot,
  snapshotRows,
  snapshotTable,
  snapshotTaken,
} from "./user.ts";

setDefaultTimeout(120_000);

const inst = (name: string, project: string, snaps: [string, string][] = []): SnapInstance => ({
  name,
  project,
  status: "Running",
  type: "container",
  snapshots: snaps.map(([n, created_at]) => ({ name: n, created_at })),
});

describe("listing and self (pure)", () => {
  const all = [
    inst("001-web", "001-pro", [["s1", "2026-01-02T03:04:05.123456Z"]]),
    inst("plain", "default"),
  ];

  test("snapshotRows: one row per snapshot, one (null) row for an instance without any", () => {
    expect(snapshotRows(all)).toEqual([
      {
        instance: "001-web",
        project: "001-pro",
        snapshot: "s1",
        created: "2026-01-02T03:04:05.123456Z",
      },
      { instance: "plain", project: "default", snapshot: null, created: null },
    ]);
  });

  test("snapshotTable aligns columns, names empty instances and keeps no trailing space", () => {
    expect(snapshotTable(snapshotRows(all))).toBe(
      [
        "INSTANCE  PROJECT  SNAPSHOT        CREATED",
        "001-web   001-pro  s1              2026-01-02 03:04:05 UTC",
        "plain     default  (no snapshots)",
      ].join("\n"),
    );
  });

  test("formatCreated: UTC to the second; empty for none; unparsable text as given", () => {
    expect(formatCreated("2026-01-02T03:04:05.9Z")).toBe("2026-01-02 03:04:05 UTC");
    expect(formatCreated(null)).toBe("");
    expect(formatCreated("yesterday")).toBe("yesterday");
  });

  test("resolveTarget: self is the instance named like this host; else an error that says so", () => {
    expect(resolveTarget(all, "self", undefined, "web").name).toBe("001-web");
    expect(resolveTarget(all, "plain", undefined, "web").name).toBe("plain");
    expect(() => resolveTarget(all, "self", undefined, "laptop")).toThrow(
      `Cannot use "self": this host's name "laptop" is not an Incus instance in any project`,
    );
    expect(isSelf(all, all[0] as SnapInstance, "web")).toBe(true);
    expect(isSelf(all, all[1] as SnapInstance, "web")).toBe(false);
    expect(isSelf(all, all[0] as SnapInstance, "laptop")).toBe(false);
  });
});

// Each test below takes the snapshots it uses.
const live = await incusOrSkip("lib/snapshots/user.test.ts");
const u = uniq();
const P = `lus${u}`;
const A = { name: `001-lua${u}`, short: `lua${u}` };
const B = { name: `001-lub${u}` };

beforeAll(async () => {
  if (!live) return;
  await createProject(P);
  await Promise.all([launch(testImage(), A.name, P), launch(testImage(), B.name, P)]);
  await sh(A.name, P, "mkdir -p /data && echo one > /data/a");
}, 180_000);

afterAll(async () => {
  if (live)
    await destroy(
      [
        [A.name, P],
        [B.name, P],
      ],
      [P],
    );
}, 120_000);

describe.if(live)(
  "createSnapshot, restoreSnapshot, deleteSnapshot, listSnapshots on the real daemon",
  () => {
    test("createSnapshot by short name takes it once; a taken name is refused; dryRun takes nothing", async () => {
      const started: string[] = [];
      const r = await createSnapshot(A.short, "c1", { onStart: (i) => started.push(i.name) });
      expect(r.status).toBe("done");
      expect(r.inst.project).toBe(P);
      expect(started).toEqual([A.name]);
      expect(await snapshotsOf(A.name, P)).toContain("c1");
      const again = await createSnapshot(A.name, "c1");
      expect(again.status).toBe("exists");
      expect(again.available).toContain("c1");
      const dry = await createSnapshot(A.name, "c-dry", { dryRun: true });
      expect(dry.status).toBe("dry-run");
      expect(await snapshotsOf(A.name, P)).not.toContain("c-dry");
    });

    test("snapshotTaken sees a snapshot the daemon holds, and gives up on a missing one after the settle time", async () => {
      await createSnapshot(A.name, "t1");
      const inst = { name: A.name, project: P };
      expect(await snapshotTaken(inst, "t1", 0)).toBe(true);
      expect(await snapshotTaken(inst, "never", 1500)).toBe(false);
    });

    test("deleteSnapshot removes only that one; a missing name lists what there is", async () => {
      await createSnapshot(A.name, "d1");
      await createSnapshot(A.name, "d2");
      expect((await deleteSnapshot(A.name, "d1", { dryRun: true })).status).toBe("dry-run");
      expect(await snapshotsOf(A.name, P)).toContain("d1");
      expect((await deleteSnapshot(A.name, "d1")).status).toBe("done");
      const have = await snapshotsOf(A.name, P);
      expect(have).not.toContain("d1");
      expect(have).toContain("d2");
      const missing = await deleteSnapshot(A.name, "d1");
      expect(missing.status).toBe("missing");
      expect(missing.available).toEqual(expect.arrayContaining(["d2"]));
    });

    test("restoreSnapshot brings the files back; dryRun leaves a file written after the snapshot", async () => {
      await sh(A.name, P, "rm -f /data/after");
      const before = await fingerprint(A.name, P);
      await createSnapshot(A.name, "r1");
      await sh(A.name, P, "echo after > /data/after");
      const after = await fingerprint(A.name, P);
      expect((await restoreSnapshot(A.name, "r1", { dryRun: true })).status).toBe("dry-run");
      expect(await fingerprint(A.name, P)).toBe(after);
      expect((await restoreSnapshot(A.name, "nosuch")).status).toBe("missing");
      expect((await restoreSnapshot(A.name, "r1")).status).toBe("done");
      expect(await fingerprint(A.name, P)).toBe(before);
    });

    test("restoring the instance this runs in asks confirm; no aborts, yes and force restore", async () => {
      const self = { hostname: A.name };
      await sh(A.name, P, "rm -f /data/after");
      await createSnapshot(A.name, "s1");
      await sh(A.name, P, "echo after > /data/after");
      const asked: string[] = [];
      const no = await restoreSnapshot("self", "s1", {
        ...self,
        confirm: async (i) => {
          asked.push(i.name);
          return false;
        },
      });
      expect(no.status).toBe("aborted");
      expect(asked).toEqual([A.name]);
      expect(await sh(A.name, P, "cat /data/after")).toBe("after\n");
      const yes = await restoreSnapshot("self", "s1", { ...self, confirm: async () => true });
      expect(yes.status).toBe("done");
      expect(await sh(A.name, P, "ls /data")).not.toContain("after");
      await sh(A.name, P, "echo after > /data/after");
      const forced = await restoreSnapshot(A.name, "s1", {
        ...self,
        force: true,
        confirm: async () => {
          throw new Error("force must not ask");
        },
      });
      expect(forced.status).toBe("done");
      expect(await sh(A.name, P, "ls /data")).not.toContain("after");
    });

    test("restoring another instance never asks", async () => {
      await createSnapshot(B.name, "b1");
      const r = await restoreSnapshot(B.name, "b1", {
        hostname: A.name,
        confirm: async () => {
          throw new Error("must not ask");
        },
      });
      expect(r.status).toBe("done");
    });

    test("listSnapshots: one instance, or every instance of a project sorted by name", async () => {
      await createSnapshot(B.name, "l1");
      const one = await listSnapshots(B.name);
      expect(one.every((r) => r.instance === B.name && r.project === P)).toBe(true);
      expect(one.map((r) => r.snapshot)).toContain("l1");
      expect(one.find((r) => r.snapshot === "l1")?.created).toMatch(/^\d{4}-/);
      const project = await listSnapshots(undefined, { project: P });
      expect([...new Set(project.map((r) => r.instance))]).toEqual([A.name, B.name]);
      await expect(listSnapshots(`nosuch${u}`)).rejects.toThrow(
        `Cannot find instance "nosuch${u}"`,
      );
    });
  },
);
