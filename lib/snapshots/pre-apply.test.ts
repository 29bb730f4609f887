import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createProject,
  destroy,
  fingerprint,
  launch,
  sh,
  snapshotsOf,
  testImage,
  writeTree,
} from "../../tests/fixtures/snap-fixture.ts";
import { incusOrSkip, uniq } from "../../tests/helpers.ts";
import type { InventoryHost } from "../core/inventory.ts";
import { readState, recordSnapshot } from "./naming.ts";
import type { SnapInstance } from "./ops.ts";
import {
  cleanup,
  createPreApply,
  listPreApply,
  planCreate,
  planDeletes,
  planRollback,
  rollback,
} from "./pre-apply.ts";
import { blockRestore, blockSnapshots, faultsOrSkip } from "./test-faults.ts";

setDefaultTimeout(120_000);

const host = (instance: string, project: string): InventoryHost => ({
  host: instance.replace(/^\d{3}-/, ""),
  instance,
  project,
  groups: [],
  vars: {},
});
const inst = (name: string, project: string, snaps: string[] = []): SnapInstance => ({
  name,
  project,
  status: "Running",
  type: "container",
  snapshots: snaps.map((s) => ({ name: s, created_at: "" })),
});

describe("planning (pure)", () => {
  test("planCreate splits present from missing and picks a name no instance nor the history holds", () => {
    const now = new Date(2026, 0, 2, 3, 4, 5);
    const hosts = [host("001-a", "p1"), host("001-b", "p1"), host("001-a", "p2")];
    const plan = planCreate(
      hosts,
      "all",
      [inst("001-a", "p1", ["pre-apply-20260102-030405"]), inst("001-b", "p1")],
      ["pre-apply-20260102-030406"],
      now,
    );
    expect(plan.present.map((h) => `${h.project}/${h.instance}`)).toEqual(["p1/001-a", "p1/001-b"]);
    expect(plan.missing.map((h) => `${h.project}/${h.instance}`)).toEqual(["p2/001-a"]);
    expect(plan.ts).toBe("20260102-030407");
    expect(plan.snap).toBe("pre-apply-20260102-030407");
  });

  test("planRollback restores only holders of the snapshot, this host's instance last", () => {
    const s = "pre-apply-20260102-030405";
    const hosts = [host("001-me", "p"), host("001-b", "p"), host("001-c", "p"), host("001-x", "p")];
    const all = [inst("001-me", "p", [s]), inst("001-b", "p", [s]), inst("001-c", "p", ["other"])];
    const plan = planRollback(hosts, all, s, "001-me");
    expect(plan.todo.map((h) => h.instance)).toEqual(["001-b", "001-me"]);
    expect(plan.others.map((h) => h.instance)).toEqual(["001-b"]);
    expect(plan.self.map((h) => h.instance)).toEqual(["001-me"]);
    expect(plan.skipped.map((h) => h.instance)).toEqual(["001-c", "001-x"]);
  });

  test("planDeletes groups one instance's deletions together, in every project, holders only", () => {
    const all = [inst("a", "p1", ["s1", "s2", "s3"]), inst("a", "p2", ["s2"]), inst("b", "p1", [])];
    const groups = planDeletes(["s1", "s2"], all);
    expect(groups.map((g) => g.map((d) => `${d.inst.project}/${d.inst.name}:${d.name}`))).toEqual([
      ["p1/a:s1", "p1/a:s2"],
      ["p2/a:s2"],
    ]);
  });

  test("listPreApply reads the history oldest first and marks the latest", () => {
    const dir = mkdtempSync(join(tmpdir(), "pre-apply-list-"));
    try {
      expect(listPreApply(dir)).toEqual([]);
      recordSnapshot(dir, "20260101-000000", "all");
      recordSnapshot(dir, "20260102-000000", "all");
      expect(listPreApply(dir)).toEqual([
        { name: "pre-apply-20260101-000000", timestamp: "20260101-000000", latest: false },
        { name: "pre-apply-20260102-000000", timestamp: "20260102-000000", latest: true },
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// Each test below has a state directory of its own and takes its own snapshots.
const live = await incusOrSkip("lib/snapshots/pre-apply.test.ts");
const faults = live && (await faultsOrSkip("lib/snapshots/pre-apply.test.ts"));
const u = uniq();
const D1 = `lpa${u}one`;
const D2 = `lpa${u}two`;
const P1 = `001-${D1}`;
const P2 = `001-${D2}`;
const A = { name: `001-${D1}-a`, project: P1 };
const B = { name: `001-${D1}-b`, project: P1 };
const C = { name: `001-${D2}-c`, project: P2 };
const GHOST = `001-${D2}-ghost`;
const all = [A, B, C];
const work = mkdtempSync(join(tmpdir(), "lib-pre-apply-"));
const baseDir = join(work, "tree");
let n = 0;
const fresh = () => ({ baseDir, stateDir: join(work, `state-${++n}`) });
const ids = (hs: { instance: string }[]) => hs.map((h) => h.instance).sort();

beforeAll(async () => {
  if (!live) return;
  writeTree(baseDir, [
    { name: D1, project: P1, machines: { [`${D1}-a`]: A.name, [`${D1}-b`]: B.name } },
    { name: D2, project: P2, machines: { [`${D2}-c`]: C.name, [`${D2}-ghost`]: GHOST } },
  ]);
  const image = testImage();
  await createProject(P1);
  await createProject(P2);
  await Promise.all(all.map((h) => launch(image, h.name, h.project)));
  await Promise.all(all.map((h) => sh(h.name, h.project, "mkdir -p /data && echo one > /data/a")));
}, 180_000);

afterAll(async () => {
  if (live)
    await destroy(
      all.map((h) => [h.name, h.project] as [string, string]),
      [P1, P2],
    );
  rmSync(work, { recursive: true, force: true });
}, 120_000);

describe.if(live)("createPreApply, rollback and cleanup on the real daemon", () => {
  test("createPreApply snapshots every present instance in its project, reports the plan first, records the state", async () => {
    const o = fresh();
    const events: string[] = [];
    const r = await createPreApply({
      ...o,
      onPlan: (p) => events.push(`plan ${p.present.length}/${p.missing.length}`),
      onDone: (x, done) => events.push(`done ${done} ${x.ok}`),
    });
    if (r.kind !== "done") throw new Error(`expected done, got ${r.kind}`);
    expect(events).toEqual(["plan 3/1", "done 1 true", "done 2 true", "done 3 true"]);
    expect(ids(r.plan.missing)).toEqual([GHOST]);
    expect([r.ok, r.failed, r.recorded]).toEqual([3, 0, true]);
    for (const h of all) expect(await snapshotsOf(h.name, h.project)).toContain(r.plan.snap);
    expect(readState(o.stateDir)).toEqual({
      latest: r.plan.ts,
      scope: "all",
      history: [r.plan.snap],
    });
  });

  test("createPreApply with a limit snapshots only that group and records its scope", async () => {
    const o = fresh();
    const r = await createPreApply({ ...o, limit: D2 });
    if (r.kind !== "done") throw new Error(`expected done, got ${r.kind}`);
    expect(ids(r.plan.present)).toEqual([C.name]);
    expect(await snapshotsOf(A.name, P1)).not.toContain(r.plan.snap);
    expect(readState(o.stateDir).scope).toBe(D2);
    await expect(createPreApply({ ...o, limit: `nosuch${u}` })).rejects.toThrow(
      `"nosuch${u}" is neither a group nor a host`,
    );
  });

  test("createPreApply dryRun plans and takes nothing; no inventory is a result, not an error", async () => {
    const o = fresh();
    const before = await Promise.all(all.map((h) => snapshotsOf(h.name, h.project)));
    const r = await createPreApply({ ...o, dryRun: true });
    expect(r.kind).toBe("dry-run");
    expect(await Promise.all(all.map((h) => snapshotsOf(h.name, h.project)))).toEqual(before);
    expect(readState(o.stateDir).history).toEqual([]);
    expect(await createPreApply({ ...o, baseDir: join(work, "nowhere") })).toEqual({
      kind: "no-inventory",
    });
  });

  test("rollback restores every holder; dryRun restores nothing (a file written after the snapshot stays)", async () => {
    const o = fresh();
    await Promise.all(all.map((h) => sh(h.name, h.project, `echo ${h.name} > /data/a`)));
    const before = await Promise.all(all.map((h) => fingerprint(h.name, h.project)));
    const c = await createPreApply(o);
    if (c.kind !== "done") throw new Error(`expected done, got ${c.kind}`);
    await Promise.all(all.map((h) => sh(h.name, h.project, "echo after > /data/after")));
    const changed = await Promise.all(all.map((h) => fingerprint(h.name, h.project)));

    const dry = await rollback({ ...o, dryRun: true });
    expect(dry.kind).toBe("dry-run");
    expect(await Promise.all(all.map((h) => fingerprint(h.name, h.project)))).toEqual(changed);

    const r = await rollback(o);
    if (r.kind !== "done") throw new Error(`expected done, got ${r.kind}`);
    expect([r.ok, r.failed]).toEqual([3, 0]);
    expect(ids(r.plan.skipped)).toEqual([GHOST]);
    expect(await Promise.all(all.map((h) => fingerprint(h.name, h.project)))).toEqual(before);
  });

  test("rollback restores the instance it runs in last, after onSelf", async () => {
    const o = fresh();
    const c = await createPreApply(o);
    if (c.kind !== "done") throw new Error(`expected done, got ${c.kind}`);
    const events: string[] = [];
    const r = await rollback({
      ...o,
      ts: c.plan.ts,
      hostname: A.name,
      onSelf: (h) => events.push(`self ${h.instance}`),
      onDone: (x, done) => events.push(`done ${done} ${x.item.instance}`),
    });
    expect(r.kind).toBe("done");
    expect(events.slice(-2)).toEqual([`self ${A.name}`, `done 3 ${A.name}`]);
  });

  test("rollback without a recorded snapshot, or to one nobody holds, restores nothing", async () => {
    const o = fresh();
    expect(await rollback(o)).toEqual({ kind: "no-target" });
    const r = await rollback({ ...o, ts: "20000101-000000" });
    expect(r.kind).toBe("nothing");
    if (r.kind === "nothing") expect(r.plan.skipped).toHaveLength(4);
    expect(await rollback({ ...o, ts: "20000101-000000", baseDir: join(work, "nowhere") })).toEqual(
      { kind: "no-inventory", snap: "pre-apply-20000101-000000" },
    );
  });

  test("cleanup keeps the newest N of this history and deletes the rest from every holder", async () => {
    const o = fresh();
    const snaps: string[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await createPreApply(o);
      if (c.kind !== "done") throw new Error(`expected done, got ${c.kind}`);
      snaps.push(c.plan.snap);
    }
    const dry = await cleanup({ ...o, keep: 1, dryRun: true });
    expect(dry).toEqual({ kind: "dry-run", remove: snaps.slice(0, 2) });
    expect(await snapshotsOf(B.name, P1)).toEqual(expect.arrayContaining(snaps));
    const r = await cleanup({ ...o, keep: 1 });
    expect(r).toEqual({
      kind: "done",
      deleted: snaps.slice(0, 2).map((name) => ({ name, count: 3 })),
      failed: [],
    });
    const [old1, old2, newest] = snaps as [string, string, string];
    for (const h of all) {
      const have = await snapshotsOf(h.name, h.project);
      expect(have).toContain(newest);
      expect(have).not.toContain(old1);
      expect(have).not.toContain(old2);
    }
    expect(readState(o.stateDir).history).toEqual([newest]);
    expect(await cleanup({ ...o, keep: 1 })).toEqual({ kind: "nothing", count: 1, keep: 1 });
  });
});

describe.if(faults)("failure paths, with real failing incus calls (test-faults.ts)", () => {
  test("a failed snapshot is a result: the others are taken and recorded; all failed records nothing", async () => {
    const o = fresh();
    const unblock = await blockSnapshots(B.name, P1);
    try {
      const r = await createPreApply(o);
      if (r.kind !== "done") throw new Error(`expected done, got ${r.kind}`);
      expect([r.ok, r.failed, r.recorded]).toEqual([2, 1, true]);
      const bad = r.results.find((x) => !x.ok);
      expect(bad?.item.instance).toBe(B.name);
      expect(bad?.error).toContain("operation not permitted");
      expect(await snapshotsOf(B.name, P1)).not.toContain(r.plan.snap);
      expect(readState(o.stateDir).history).toEqual([r.plan.snap]);

      const only = fresh();
      const none = await createPreApply({ ...only, limit: B.name });
      if (none.kind !== "done") throw new Error(`expected done, got ${none.kind}`);
      expect([none.ok, none.failed, none.recorded]).toEqual([0, 1, false]);
      expect(readState(only.stateDir)).toEqual({ latest: null, scope: null, history: [] });
    } finally {
      await unblock();
    }
  });

  test("a failed restore is a result: the others are restored", async () => {
    const o = fresh();
    const c = await createPreApply(o);
    if (c.kind !== "done") throw new Error(`expected done, got ${c.kind}`);
    await sh(A.name, P1, "echo later > /data/later");
    const unblock = await blockRestore(C.name, P2, "/data/stuck");
    try {
      const r = await rollback(o);
      if (r.kind !== "done") throw new Error(`expected done, got ${r.kind}`);
      expect([r.ok, r.failed]).toEqual([2, 1]);
      const bad = r.results.find((x) => !x.ok);
      expect(bad?.item.instance).toBe(C.name);
      expect(bad?.error).toContain("rsync");
      expect(await sh(A.name, P1, "ls /data")).not.toContain("later");
    } finally {
      await unblock();
    }
  });

  test("a failed deletion keeps its name in the history; the next cleanup retries it", async () => {
    const o = fresh();
    const first = await createPreApply(o);
    const second = await createPreApply(o);
    if (first.kind !== "done" || second.kind !== "done") throw new Error("create failed");
    const failures: string[] = [];
    const unblock = await blockSnapshots(C.name, P2);
    let r: Awaited<ReturnType<typeof cleanup>>;
    try {
      r = await cleanup({
        ...o,
        keep: 1,
        onFailed: (d, e) => failures.push(`${d.inst.name} ${d.name} ${e}`),
      });
    } finally {
      await unblock();
    }
    expect(r).toEqual({ kind: "done", deleted: [], failed: [first.plan.snap] });
    expect(failures).toHaveLength(1);
    expect(failures[0]).toStartWith(`${C.name} ${first.plan.snap} `);
    expect(await snapshotsOf(A.name, P1)).not.toContain(first.plan.snap);
    expect(await snapshotsOf(C.name, P2)).toContain(first.plan.snap);
    expect(readState(o.stateDir).history).toEqual([first.plan.snap, second.plan.snap]);

    const again = await cleanup({ ...o, keep: 1 });
    expect(again).toEqual({
      kind: "done",
      deleted: [{ name: first.plan.snap, count: 1 }],
      failed: [],
    });
    expect(await snapshotsOf(C.name, P2)).not.toContain(first.plan.snap);
    expect(readState(o.stateDir).history).toEqual([second.plan.snap]);
  });
});
