/**
 * scripts/snapshot-apply.ts, safe_apply_wrap and `make rollback*` on the real
 * daemon: three busybox containers in two projects of their own, described by
 * a tree written in the generator's format (plus one machine that Incus does
 * not have), all deleted in afterAll.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
const state = join(work, "state");
const env = { ANKLUME_BASE_DIR: base, ANKLUME_SNAPSHOT_STATE_DIR: state };
const SA = ["bun", "scripts/snapshot-apply.ts"];
const makeCmd = (...args: string[]) => ["make", "--no-print-directory", ...args];

// A Makefile that includes the project's and wraps a fake "apply" (a command
// that changes files in every container) in the real safe_apply_wrap; the
// real `make apply-infra` test lives in the playbook's suite.
const wrapMk = join(work, "wrap.mk");
const mutateAll = all
  .map(
    (h) =>
      `incus exec ${h.name} --project ${h.project} -- sh -c 'echo applied > /data/a; rm -f /data/c'`,
  )
  .join(" && ");

const history = () => readFileSync(join(state, "history"), "utf8").trim().split("\n");
const latest = () => readFileSync(join(state, "latest"), "utf8").trim();
const tsOf = (out: string) => /pre-apply-(\d{8}-\d{6})/.exec(out)?.[1] ?? "";

beforeAll(async () => {
  if (!live) return;
  writeTree(base, [
    { name: D1, project: P1, machines: { [H.a.host]: H.a.name, [H.b.host]: H.b.name } },
    { name: D2, project: P2, machines: { [H.c.host]: H.c.name, [`${D2}-ghost`]: GHOST } },
  ]);
  writeFileSync(
    wrapMk,
    `include Makefile\nfake-apply:\n\t$(call safe_apply_wrap,fake-apply,${mutateAll},$(G))\n`,
  );
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

describe.if(live)("pre-apply snapshots on the real daemon", () => {
  let first = "";

  test("create snapshots every instance of every domain in its real project, and skips a missing one", async () => {
    const r = await run([...SA, "create"], env);
    expect(r.code).toBe(0);
    for (const h of all) expect(r.stderr).toContain(`  OK ${h.name} (project=${h.project})`);
    expect(r.stderr).toContain(`WARN ${GHOST} (project=${P2}): not found in Incus, skipping`);
    expect(r.stderr).toContain("  3 snapshot(s) created, 1 skipped (not found), 0 failed");
    first = tsOf(r.stderr);
    expect(first).not.toBe("");
    for (const h of all)
      expect(await snapshotsOf(h.name, h.project)).toEqual([`pre-apply-${first}`]);
    expect(latest()).toBe(first);
    expect(readFileSync(join(state, "latest-scope"), "utf8")).toBe("all\n");
    expect(history()).toEqual([`pre-apply-${first}`]);
  });

  test("safe_apply_wrap snapshots, runs the apply, cleans up; make rollback restores every file", async () => {
    const before = await Promise.all(all.map((h) => fingerprint(h.name, h.project)));
    const apply = await run(makeCmd("-f", wrapMk, "fake-apply"), env);
    expect(apply.code).toBe(0);
    expect(apply.stderr).toContain("3 snapshot(s) created");
    expect(apply.stderr).toContain("==> Running: fake-apply");
    expect(apply.stderr).toContain("==> fake-apply complete");
    const ts = tsOf(apply.stderr);
    expect(ts > first).toBe(true);
    expect(latest()).toBe(ts);
    const changed = await Promise.all(all.map((h) => fingerprint(h.name, h.project)));
    for (let i = 0; i < all.length; i++) expect(changed[i]).not.toBe(before[i]);
    const rb = await run(makeCmd("rollback"), env);
    expect(rb.code).toBe(0);
    expect(rb.stderr).toContain("  3 instance(s) restored, 1 skipped (no matching snapshot)");
    const after = await Promise.all(all.map((h) => fingerprint(h.name, h.project)));
    expect(after).toEqual(before);
  });

  test("apply-limit scope: only the group is snapshotted, and rollback skips the others", async () => {
    const apply = await run(makeCmd("-f", wrapMk, "fake-apply", `G=${D2}`), env);
    expect(apply.code).toBe(0);
    expect(apply.stderr).toContain(`  OK ${H.c.name} (project=${P2})`);
    expect(apply.stderr).not.toContain(H.a.name);
    const ts = tsOf(apply.stderr);
    expect(readFileSync(join(state, "latest-scope"), "utf8")).toBe(`${D2}\n`);
    expect(await snapshotsOf(H.c.name, P2)).toContain(`pre-apply-${ts}`);
    expect(await snapshotsOf(H.a.name, P1)).not.toContain(`pre-apply-${ts}`);
    const rb = await run(makeCmd("rollback"), env);
    expect(rb.code).toBe(0);
    expect(rb.stderr).toContain("  1 instance(s) restored, 3 skipped (no matching snapshot)");
    expect(await sh(H.c.name, P2, "cat /data/a")).toBe(`${H.c.name}\n`);
  });

  test("make rollback T=<timestamp> restores that snapshot, not the latest", async () => {
    await sh(H.a.name, P1, "echo later > /data/later");
    const rb = await run(makeCmd("rollback", `T=${first}`), env);
    expect(rb.code).toBe(0);
    expect(rb.stderr).toContain(`to pre-apply-${first}`);
    expect(await sh(H.a.name, P1, "ls /data")).toBe("a\nc\n");
  });

  test("rollback restores the instance it runs in last (hostname faked through ANKLUME_HOSTNAME)", async () => {
    const rb = await run([...SA, "rollback", first], { ...env, ANKLUME_HOSTNAME: H.a.name });
    expect(rb.code).toBe(0);
    expect(rb.stderr).toContain(`NOTE restoring ${H.a.name} (project=${P1}) last`);
    const oks = rb.stderr.split("\n").filter((l) => l.startsWith("  OK "));
    expect(oks).toHaveLength(3);
    expect(oks.at(-1)).toBe(`  OK ${H.a.name} (project=${P1})`);
  });

  test("rollback-list shows the history oldest first with the latest marked", async () => {
    const r = await run(makeCmd("rollback-list"), env);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]).toBe("  Pre-apply snapshots:");
    expect(lines.slice(1).map((l) => l.trim().replace(/\s+<-- latest$/, ""))).toEqual(history());
    expect(lines.at(-1)).toBe(`  pre-apply-${latest()}  <-- latest`);
    const json = await run([...SA, "list", "--json"], env);
    expect(JSON.parse(json.stdout).filter((x: { latest: boolean }) => x.latest)).toHaveLength(1);
  });

  test("SKIP_SNAPSHOT=1 takes no snapshot and cleans nothing", async () => {
    const before = history();
    const r = await run(makeCmd("-f", wrapMk, "fake-apply", "SKIP_SNAPSHOT=1"), env);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("Skipping pre-apply snapshot");
    expect(history()).toEqual(before);
  });

  test("KEEP=N in the wrapper and rollback-cleanup KEEP=1 leave exactly the newest", async () => {
    await run([...SA, "create"], env);
    const apply = await run(makeCmd("-f", wrapMk, "fake-apply", "KEEP=2"), env);
    expect(apply.code).toBe(0);
    expect(history(), apply.stderr).toHaveLength(2);
    await run([...SA, "create"], env);
    await run([...SA, "create"], env);
    await run([...SA, "--state-dir", state, "--base-dir", base, "create"]);
    expect(history()).toHaveLength(5);
    await run(["bun", "scripts/snap.ts", "create", H.a.name, "mine"]);
    const r = await run(makeCmd("rollback-cleanup", "KEEP=1"), env);
    expect(r.code).toBe(0);
    expect(r.stderr.match(/OK Deleted pre-apply-/g)).toHaveLength(4);
    const newest = latest();
    expect(history()).toEqual([`pre-apply-${newest}`]);
    expect(await snapshotsOf(H.a.name, P1)).toEqual(["mine", `pre-apply-${newest}`]);
    for (const h of [H.b, H.c])
      expect(await snapshotsOf(h.name, h.project)).toEqual([`pre-apply-${newest}`]);
    const again = await run([...SA, "cleanup", "--keep", "1"], env);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain("nothing to clean up");
  });

  test("--dry-run says what create, rollback and cleanup would do and changes nothing", async () => {
    const before = await Promise.all(all.map((h) => snapshotsOf(h.name, h.project)));
    const hist = readFileSync(join(state, "history"), "utf8");
    const c = await run([...SA, "create", "--dry-run"], env);
    expect(c.code).toBe(0);
    expect(c.stderr).toContain(`would snapshot ${H.a.name} (project=${P1})`);
    const r = await run([...SA, "rollback", "--dry-run"], env);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("would restore");
    const k = await run([...SA, "cleanup", "--keep", "0", "--dry-run"], env);
    expect(k.code).toBe(0);
    expect(k.stderr).toContain("would delete");
    expect(await Promise.all(all.map((h) => snapshotsOf(h.name, h.project)))).toEqual(before);
    expect(readFileSync(join(state, "history"), "utf8")).toBe(hist);
  });

  describe("errors", () => {
    test("nothing to roll back is an error that suggests make rollback-list", async () => {
      const empty = join(work, "empty-state");
      const r = await run(makeCmd("rollback"), { ...env, ANKLUME_SNAPSHOT_STATE_DIR: empty });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain("make rollback-list");
    });

    test("a rollback that restores nothing fails and counts the skipped instances", async () => {
      const r = await run([...SA, "rollback", "20000101-000000"], env);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("0 instance(s) restored, 4 skipped");
      expect(r.stderr).toContain("Nothing was restored");
    });

    test("no inventory: create warns and is a no-op, exit 0", async () => {
      const before = readFileSync(join(state, "history"), "utf8");
      const r = await run([...SA, "create"], { ...env, ANKLUME_BASE_DIR: join(work, "nowhere") });
      expect(r.code).toBe(0);
      expect(r.stderr).toContain("No inventory");
      expect(readFileSync(join(state, "history"), "utf8")).toBe(before);
    });

    test("usage errors exit 2; an unknown --limit exits 1; nothing changes", async () => {
      const before = await Promise.all(all.map((h) => snapshotsOf(h.name, h.project)));
      for (const args of [
        [],
        ["bogus"],
        ["create", "--nope"],
        ["rollback", "yesterday"],
        ["cleanup", "--keep", "x"],
        ["list", "extra"],
        ["create", "--jobs", "0"],
      ]) {
        const r = await run([...SA, ...args], env);
        expect(r.code).toBe(2);
        expect(r.stderr).toContain("error:");
      }
      const lim = await run([...SA, "create", "--limit", `nosuch${u}`], env);
      expect(lim.code).toBe(1);
      expect(lim.stderr).toContain(`"nosuch${u}" is neither a group nor a host`);
      expect(await Promise.all(all.map((h) => snapshotsOf(h.name, h.project)))).toEqual(before);
      expect(existsSync(join(work, "nowhere"))).toBe(false);
    });

    test("--help exits 0", async () => {
      const r = await run([...SA, "--help"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("rollback [<timestamp>]");
    });
  });
});
