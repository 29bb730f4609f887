/**
 * scripts/snapshot-apply.ts and `make rollback*` on the real daemon: three
 * busybox containers in two projects of their own, described by a tree
 * written in the generator's format (plus one machine that Incus does not
 * have), all deleted in afterAll. Each test has a state directory of its own
 * and takes the snapshots it uses, so any test runs alone (`-t`) or in any
 * order. safe_apply_wrap around the real `make apply-infra`, with its failure
 * paths, is in tests/snap-apply-infra.test.ts.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { blockRestore, blockSnapshots, faultsOrSkip } from "../lib/snapshots/test-faults.ts";
import {
  createProject,
  destroy,
  fingerprint,
  launch,
  run,
  sh,
  snapshotsOf,
  testImage,
  writeTree,
} from "./fixtures/snap-fixture.ts";
import { incusOrSkip, uniq } from "./helpers.ts";

setDefaultTimeout(120_000);
const live = await incusOrSkip("tests/snapshot-apply.test.ts");
const faults = live && (await faultsOrSkip("tests/snapshot-apply.test.ts"));
const u = uniq();
const D1 = `spa${u}one`;
const D2 = `spa${u}two`;
const P1 = `001-${D1}`;
const P2 = `001-${D2}`;
const H = {
  a: { host: `${D1}-a`, name: `001-${D1}-a`, project: P1 },
  b: { host: `${D1}-b`, name: `001-${D1}-b`, project: P1 },
  c: { host: `${D2}-c`, name: `001-${D2}-c`, project: P2 },
};
const GHOST = `001-${D2}-ghost`;
const all = [H.a, H.b, H.c];

const work = mkdtempSync(join(tmpdir(), "snapshot-apply-"));
const base = join(work, "tree");
const SA = ["bun", "scripts/snapshot-apply.ts"];
const makeCmd = (...args: string[]) => ["make", "--no-print-directory", ...args];

/** A state directory of the test's own, and the environment that points at it. */
let n = 0;
function fresh() {
  const state = join(work, `state-${++n}`);
  const env = { ANKLUME_BASE_DIR: base, ANKLUME_SNAPSHOT_STATE_DIR: state };
  const history = () => readFileSync(join(state, "history"), "utf8").trim().split("\n");
  const latest = () => readFileSync(join(state, "latest"), "utf8").trim();
  /** Take a pre-apply snapshot through the script; its timestamp. */
  const create = async (...args: string[]) => {
    const r = await run([...SA, "create", ...args], env);
    const ts = tsOf(r.stderr);
    if (r.code !== 0 || ts === "") throw new Error(`create failed: ${r.stderr}`);
    return ts;
  };
  return { state, env, history, latest, create };
}
const tsOf = (out: string) => /pre-apply-(\d{8}-\d{6})/.exec(out)?.[1] ?? "";
const prints = () => Promise.all(all.map((h) => fingerprint(h.name, h.project)));
const snapsOfAll = () => Promise.all(all.map((h) => snapshotsOf(h.name, h.project)));

beforeAll(async () => {
  if (!live) return;
  writeTree(base, [
    { name: D1, project: P1, machines: { [H.a.host]: H.a.name, [H.b.host]: H.b.name } },
    { name: D2, project: P2, machines: { [H.c.host]: H.c.name, [`${D2}-ghost`]: GHOST } },
  ]);
  const image = await testImage();
  await createProject(P1);
  await createProject(P2);
  await Promise.all(all.map((h) => launch(image, h.name, h.project)));
  await Promise.all(
    all.map((h) =>
      sh(h.name, h.project, `mkdir -p /data && echo ${h.name} > /data/a && echo keep > /data/c`),
    ),
  );
}, 180_000);

afterAll(async () => {
  if (live)
    await destroy(
      all.map((h) => [h.name, h.project] as [string, string]),
      [P1, P2],
    );
  rmSync(work, { recursive: true, force: true });
}, 120_000);

/** Put /data back to the same files in every container. */
const reset = () =>
  Promise.all(
    all.map((h) =>
      sh(
        h.name,
        h.project,
        `rm -rf /data && mkdir /data && echo ${h.name} > /data/a && echo keep > /data/c`,
      ),
    ),
  );
/** What an apply might do to the files. */
const mutate = () =>
  Promise.all(
    all.map((h) =>
      sh(h.name, h.project, "echo applied > /data/a; rm -f /data/c; echo new > /data/new"),
    ),
  );

describe.if(live)("pre-apply snapshots on the real daemon", () => {
  // Matrix: RB-001
  test("create snapshots every instance of every domain in its real project, and skips a missing one", async () => {
    const s = fresh();
    const r = await run([...SA, "create"], s.env);
    expect(r.code).toBe(0);
    for (const h of all) expect(r.stderr).toContain(`  OK ${h.name} (project=${h.project})`);
    expect(r.stderr).toContain(`WARN ${GHOST} (project=${P2}): not found in Incus, skipping`);
    expect(r.stderr).toContain("  3 snapshot(s) created, 1 skipped (not found), 0 failed");
    const ts = tsOf(r.stderr);
    expect(ts).not.toBe("");
    expect(r.stderr).toContain(`Roll back with: make rollback (or make rollback T=${ts})`);
    for (const h of all) expect(await snapshotsOf(h.name, h.project)).toContain(`pre-apply-${ts}`);
    expect(s.latest()).toBe(ts);
    expect(readFileSync(join(s.state, "latest-scope"), "utf8")).toBe("all\n");
    expect(s.history()).toEqual([`pre-apply-${ts}`]);
  });

  // Matrix: RB-002
  test("make rollback restores every file of every instance to the latest snapshot", async () => {
    const s = fresh();
    await reset();
    const before = await prints();
    await s.create();
    await mutate();
    const changed = await prints();
    for (let i = 0; i < all.length; i++) expect(changed[i]).not.toBe(before[i]);
    const rb = await run(makeCmd("rollback"), s.env);
    expect(rb.code).toBe(0);
    expect(rb.stderr).toContain("  3 instance(s) restored, 1 skipped (no matching snapshot)");
    expect(await prints()).toEqual(before);
  });

  // Matrix: RB-2-001
  test("create --limit <group>: only the group is snapshotted, and rollback skips the others", async () => {
    const s = fresh();
    await reset();
    const r = await run([...SA, "create", "--limit", D2], s.env);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`  OK ${H.c.name} (project=${P2})`);
    expect(r.stderr).not.toContain(H.a.name);
    const ts = tsOf(r.stderr);
    expect(readFileSync(join(s.state, "latest-scope"), "utf8")).toBe(`${D2}\n`);
    expect(await snapshotsOf(H.c.name, P2)).toContain(`pre-apply-${ts}`);
    expect(await snapshotsOf(H.a.name, P1)).not.toContain(`pre-apply-${ts}`);
    await mutate();
    const rb = await run(makeCmd("rollback"), s.env);
    expect(rb.code).toBe(0);
    expect(rb.stderr).toContain("  1 instance(s) restored, 3 skipped (no matching snapshot)");
    expect(await sh(H.c.name, P2, "cat /data/a")).toBe(`${H.c.name}\n`);
    expect(await sh(H.a.name, P1, "cat /data/a")).toBe("applied\n");
  });

  // Matrix: RB-003
  test("make rollback T=<timestamp> restores that snapshot, not the latest", async () => {
    const s = fresh();
    await reset();
    const first = await s.create();
    await sh(H.a.name, P1, "echo later > /data/later");
    const second = await s.create();
    expect(second > first).toBe(true);
    expect(s.latest()).toBe(second);
    const rb = await run(makeCmd("rollback", `T=${first}`), s.env);
    expect(rb.code).toBe(0);
    expect(rb.stderr).toContain(`to pre-apply-${first}`);
    expect(await sh(H.a.name, P1, "ls /data")).toBe("a\nc\n");
  });

  // Matrix: RB-2-005
  test("rollback restores the instance it runs in last (hostname faked through ANKLUME_HOSTNAME)", async () => {
    const s = fresh();
    const ts = await s.create();
    const rb = await run([...SA, "rollback", ts], { ...s.env, ANKLUME_HOSTNAME: H.a.name });
    expect(rb.code).toBe(0);
    expect(rb.stderr).toContain(`NOTE restoring ${H.a.name} (project=${P1}) last`);
    const oks = rb.stderr.split("\n").filter((l) => l.startsWith("  OK "));
    expect(oks).toHaveLength(3);
    expect(oks.at(-1)).toBe(`  OK ${H.a.name} (project=${P1})`);
  });

  // Matrix: RB-004
  test("rollback-list shows the history oldest first with the latest marked", async () => {
    const s = fresh();
    const first = await s.create();
    const second = await s.create();
    const r = await run(makeCmd("rollback-list"), s.env);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      `  Pre-apply snapshots:\n  pre-apply-${first}\n  pre-apply-${second}  <-- latest\n`,
    );
    const json = await run([...SA, "list", "--json"], s.env);
    expect(JSON.parse(json.stdout)).toEqual([
      { name: `pre-apply-${first}`, timestamp: first, latest: false },
      { name: `pre-apply-${second}`, timestamp: second, latest: true },
    ]);
    const none = await run(makeCmd("rollback-list"), fresh().env);
    expect(none.stdout).toBe("  Pre-apply snapshots:\n  (none)\n");
  });

  // Matrix: RB-005
  test("rollback-cleanup KEEP=1 deletes the older pre-apply snapshots everywhere and leaves other snapshots", async () => {
    const s = fresh();
    const ts = [await s.create(), await s.create(), await s.create()];
    // --state-dir and --base-dir work like the environment.
    const r4 = await run([...SA, "--state-dir", s.state, "--base-dir", base, "create"]);
    expect(r4.code).toBe(0);
    ts.push(tsOf(r4.stderr));
    expect(s.history()).toEqual(ts.map((t) => `pre-apply-${t}`));
    const mine = `mine${u}${n}`;
    expect((await run(["bun", "scripts/snap.ts", "create", H.a.name, mine])).code).toBe(0);
    const r = await run(makeCmd("rollback-cleanup", "KEEP=1"), s.env);
    expect(r.code).toBe(0);
    for (const t of ts.slice(0, 3))
      expect(r.stderr).toContain(`  OK Deleted pre-apply-${t} (3 instance(s))`);
    const newest = `pre-apply-${ts[3]}`;
    expect(s.history()).toEqual([newest]);
    for (const have of await snapsOfAll()) {
      expect(have).toContain(newest);
      for (const t of ts.slice(0, 3)) expect(have).not.toContain(`pre-apply-${t}`);
    }
    expect(await snapshotsOf(H.a.name, P1)).toContain(mine);
    const again = await run([...SA, "cleanup", "--keep", "1"], s.env);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain("1 pre-apply snapshot(s), keeping 1: nothing to clean up");
  });

  // Matrix: RB-007
  test("--dry-run says what create, rollback and cleanup would do and changes nothing, files included", async () => {
    const s = fresh();
    await reset();
    await s.create();
    // Written after the snapshot: a rollback that really ran would delete it.
    await Promise.all(all.map((h) => sh(h.name, h.project, "echo x > /data/dry")));
    const files = await prints();
    const before = await snapsOfAll();
    const hist = readFileSync(join(s.state, "history"), "utf8");
    const c = await run([...SA, "create", "--dry-run"], s.env);
    expect(c.code).toBe(0);
    expect(c.stderr).toContain(`would snapshot ${H.a.name} (project=${P1})`);
    const r = await run([...SA, "rollback", "--dry-run"], s.env);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`would restore ${H.a.name} (project=${P1})`);
    const k = await run([...SA, "cleanup", "--keep", "0", "--dry-run"], s.env);
    expect(k.code).toBe(0);
    expect(k.stderr).toContain("would delete");
    for (const h of all) expect(await sh(h.name, h.project, "cat /data/dry")).toBe("x\n");
    expect(await prints()).toEqual(files);
    expect(await snapsOfAll()).toEqual(before);
    expect(readFileSync(join(s.state, "history"), "utf8")).toBe(hist);
  });

  describe("errors", () => {
    // Matrix: RB-006
    test("nothing to roll back is an error that suggests make rollback-list", async () => {
      const r = await run(makeCmd("rollback"), fresh().env);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain("No pre-apply snapshot to roll back to");
      expect(r.stderr).toContain("make rollback-list");
    });

    test("a rollback that restores nothing fails and counts the skipped instances", async () => {
      const r = await run([...SA, "rollback", "20000101-000000"], fresh().env);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("0 instance(s) restored, 4 skipped");
      expect(r.stderr).toContain("Nothing was restored");
    });

    test("no inventory: create warns and is a no-op, exit 0", async () => {
      const s = fresh();
      const r = await run([...SA, "create"], { ...s.env, ANKLUME_BASE_DIR: join(work, "nowhere") });
      expect(r.code).toBe(0);
      expect(r.stderr).toContain("No inventory");
      expect(existsSync(s.state)).toBe(false);
    });

    test("usage errors exit 2; an unknown --limit exits 1; nothing changes", async () => {
      const s = fresh();
      const before = await snapsOfAll();
      for (const args of [
        [],
        ["bogus"],
        ["create", "--nope"],
        ["rollback", "yesterday"],
        ["cleanup", "--keep", "x"],
        ["list", "extra"],
        ["create", "--jobs", "0"],
      ]) {
        const r = await run([...SA, ...args], s.env);
        expect(r.code).toBe(2);
        expect(r.stderr).toContain("error:");
      }
      const lim = await run([...SA, "create", "--limit", `nosuch${u}`], s.env);
      expect(lim.code).toBe(1);
      expect(lim.stderr).toContain(`"nosuch${u}" is neither a group nor a host`);
      expect(await snapsOfAll()).toEqual(before);
      expect(existsSync(s.state)).toBe(false);
      expect(existsSync(join(work, "nowhere"))).toBe(false);
    });

    test("--help exits 0", async () => {
      const r = await run([...SA, "--help"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("rollback [<timestamp>]");
    });
  });
});

// Real failing incus calls: lib/snapshots/test-faults.ts marks a directory or
// file immutable on the dir storage driver, so the daemon itself fails.
describe.if(faults)("failure paths: the documented exit code and message", () => {
  test("a failed snapshot warns and create exits 0; the others are taken and recorded", async () => {
    const s = fresh();
    const unblock = await blockSnapshots(H.b.name, P1);
    let r: Awaited<ReturnType<typeof run>>;
    try {
      r = await run([...SA, "create"], s.env);
    } finally {
      await unblock();
    }
    expect(r.code).toBe(0);
    const ts = tsOf(r.stderr);
    expect(r.stderr).toMatch(
      new RegExp(
        `  WARN ${H.b.name} \\(project=${P1}\\): snapshot failed: .*operation not permitted`,
      ),
    );
    expect(r.stderr).toContain("  2 snapshot(s) created, 1 skipped (not found), 1 failed");
    expect(r.stderr).toContain(
      `WARNING: 1 snapshot(s) failed: a rollback to pre-apply-${ts} will not restore those instances`,
    );
    expect(s.history()).toEqual([`pre-apply-${ts}`]);
    expect(await snapshotsOf(H.b.name, P1)).not.toContain(`pre-apply-${ts}`);
  });

  test("when every snapshot fails, create still exits 0 and records nothing", async () => {
    const s = fresh();
    const unblock = await blockSnapshots(H.b.name, P1);
    let r: Awaited<ReturnType<typeof run>>;
    try {
      r = await run([...SA, "create", "--limit", H.b.host], s.env);
    } finally {
      await unblock();
    }
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("  0 snapshot(s) created, 0 skipped (not found), 1 failed");
    expect(r.stderr).toContain(
      "WARNING: nothing was snapshotted, so nothing was recorded for rollback",
    );
    expect(existsSync(s.state)).toBe(false);
  });

  test("a failed restore: rollback restores the others, reports FAIL and 'N failed', exits 1", async () => {
    const s = fresh();
    await reset();
    await s.create();
    await mutate();
    const unblock = await blockRestore(H.c.name, P2, "/data/stuck");
    let rb: Awaited<ReturnType<typeof run>>;
    try {
      rb = await run([...SA, "rollback"], s.env);
    } finally {
      await unblock();
    }
    expect(rb.code).toBe(1);
    expect(rb.stderr).toMatch(new RegExp(`  FAIL ${H.c.name} \\(project=${P2}\\): .*rsync`));
    expect(rb.stderr).toContain(
      "  2 instance(s) restored, 1 skipped (no matching snapshot), 1 failed",
    );
    expect(await sh(H.a.name, P1, "cat /data/a")).toBe(`${H.a.name}\n`);
    const retry = await run(makeCmd("rollback"), s.env);
    expect(retry.code).toBe(0);
    expect(await sh(H.c.name, P2, "cat /data/a")).toBe(`${H.c.name}\n`);
  });

  test("a failed deletion: cleanup warns, exits 1, keeps the name in the history; the next cleanup retries it", async () => {
    const s = fresh();
    const first = await s.create();
    const second = await s.create();
    const unblock = await blockSnapshots(H.c.name, P2);
    let r: Awaited<ReturnType<typeof run>>;
    try {
      r = await run([...SA, "cleanup", "--keep", "1"], s.env);
    } finally {
      await unblock();
    }
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(`  WARN could not delete pre-apply-${first} of ${H.c.name} \\(project=${P2}\\): `),
    );
    expect(r.stderr).not.toContain(`OK Deleted pre-apply-${first}`);
    expect(s.history()).toEqual([`pre-apply-${first}`, `pre-apply-${second}`]);
    expect(await snapshotsOf(H.a.name, P1)).not.toContain(`pre-apply-${first}`);
    const again = await run(makeCmd("rollback-cleanup", "KEEP=1"), s.env);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain(`  OK Deleted pre-apply-${first} (1 instance(s))`);
    expect(s.history()).toEqual([`pre-apply-${second}`]);
    expect(await snapshotsOf(H.c.name, P2)).not.toContain(`pre-apply-${first}`);
  });
});
