/**
 * The whole loop, for real: `make sync` (the generator) and `make apply-infra`
 * (the playbook, wrapped by safe_apply_wrap) on an infra.yml of its own with
 * two domains, then change files and `make rollback`. Runs in a throwaway
 * workdir (tests/apply-helpers.ts), so the repository's own inventory is never
 * touched; everything the infra creates in Incus is deleted in afterAll.
 * A scenario: the tests run in order, each on the state the previous left.
 * The later steps are safe_apply_wrap's knobs and failure paths around the
 * real `make apply-infra`: SKIP_SNAPSHOT, KEEP, a failing snapshot, a failing
 * cleanup (real failing incus calls, lib/snapshots/test-faults.ts) and a
 * failing apply (a machine whose image does not exist).
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { blockSnapshots, faultsOrSkip } from "../lib/snapshots/test-faults.ts";
import {
  cleanupInfra,
  freeSubnets,
  make,
  makeWorkdir,
  removeWorkdir,
  testImage,
  write,
} from "./apply-helpers.ts";
import { fingerprint, sh, snapshotsOf } from "./fixtures/snap-fixture.ts";
import { incusOrSkip, scenario, uniq } from "./helpers.ts";

setDefaultTimeout(600_000);
const live = await incusOrSkip("tests/snap-apply-infra.test.ts");
const faults = live && (await faultsOrSkip("tests/snap-apply-infra.test.ts"));
const u = uniq();
// Domain names short enough that the bridge keeps its unique v1 name
// (<prefix>net-<domain> fits in 15 characters), on a /16 no other suite uses.
const D = [`s${u}a`, `s${u}b`];
const BASE = "10.236";
let dir = "";
let prefix = "";
let infraId = "";
const state = () => join(dir, "snapshot-state");
const env = () => ({ ANKLUME_SNAPSHOT_STATE_DIR: state() });
const vars = () => ["NAT=false"];
const history = () => {
  const f = join(state(), "history");
  return existsSync(f) ? readFileSync(f, "utf8").trim().split("\n") : [];
};
const preApply = (snaps: string[]) => snaps.filter((x) => x.startsWith("pre-apply-"));
/** infra.yml: two domains, and with `bad` a third machine whose image does not exist. */
const infra = (s: number[], image: string, bad = false) => `project_name: sai${u}
global:
  base_subnet: "${BASE}"
  default_os_image: ${image}
domains:
  ${D[0]}:
    subnet_id: ${s[0]}
    machines:
      ${D[0]}-web: {ip: "${BASE}.${s[0]}.10"}
  ${D[1]}:
    subnet_id: ${s[1]}
    machines:
      ${D[1]}-db: {}
${bad ? `      ${D[1]}-bad: {os_image: nosuch-image-${u}}\n` : ""}`;
let subnets: number[] = [];
const M = () => [
  { name: `${prefix}${D[0]}-web`, project: `${prefix}${D[0]}` },
  { name: `${prefix}${D[1]}-db`, project: `${prefix}${D[1]}` },
];

beforeAll(async () => {
  if (!live) return;
  dir = makeWorkdir("anklume-snap-apply");
  const s = await freeSubnets(BASE, 2);
  subnets = s;
  const image = await testImage();
  write(join(dir, "infra.yml"), infra(s, image));
  const sync = await make(dir, ["sync"], env());
  expect(sync.code, sync.out).toBe(0);
  const gv = parse(readFileSync(join(dir, "group_vars", `${D[0]}.yml`), "utf8"));
  prefix = (gv.incus_project as string).slice(0, -(D[0] as string).length);
  infraId = `${prefix}sai${u}`;
});

afterAll(async () => {
  if (infraId) await cleanupInfra(infraId);
  if (dir) removeWorkdir(dir);
}, 120_000);

describe.if(live)("make sync + make apply-infra + make rollback, for real", () => {
  // The tests below are the steps of one scenario, run in order (tests/helpers.ts, test audit 5.6).
  const test = scenario();
  let before: string[] = [];

  test("the first apply creates both instances; with nothing to snapshot it records nothing", async () => {
    const apply = await make(dir, ["apply-infra", ...vars()], env());
    expect(apply.code, apply.out).toBe(0);
    expect(apply.out).toContain("0 snapshot(s) created, 2 skipped (not found), 0 failed");
    expect(apply.out).toContain("nothing was recorded for rollback");
    for (const m of M()) expect(await snapshotsOf(m.name, m.project)).toEqual([]);
  });

  // Matrix: RB-2-002
  test("the next apply snapshots both instances, each in its own project", async () => {
    await Promise.all(
      M().map((m) =>
        sh(m.name, m.project, `mkdir -p /data && echo ${m.name} > /data/a && echo keep > /data/c`),
      ),
    );
    before = await Promise.all(M().map((m) => fingerprint(m.name, m.project)));
    const apply = await make(dir, ["apply-infra", ...vars()], env());
    expect(apply.code, apply.out).toBe(0);
    for (const m of M()) expect(apply.out).toContain(`  OK ${m.name} (project=${m.project})`);
    expect(apply.out).toContain("2 snapshot(s) created, 0 skipped (not found), 0 failed");
    const ts = readFileSync(join(state(), "latest"), "utf8").trim();
    for (const m of M()) expect(await snapshotsOf(m.name, m.project)).toEqual([`pre-apply-${ts}`]);
  });

  // Matrix: RB-2-002
  test("make rollback brings every file back in both projects", async () => {
    await Promise.all(
      M().map((m) =>
        sh(m.name, m.project, "echo changed > /data/a; rm /data/c; echo x > /data/new"),
      ),
    );
    const rb = await make(dir, ["rollback"], env());
    expect(rb.code, rb.out).toBe(0);
    expect(rb.out).toContain("2 instance(s) restored, 0 skipped");
    expect(await Promise.all(M().map((m) => fingerprint(m.name, m.project)))).toEqual(before);
  });

  // Matrix: RB-3-002
  test("apply-limit G=<domain> snapshots only that domain", async () => {
    const apply = await make(
      dir,
      ["apply-limit", `G=${D[1]}`, ...vars(), "ARGS=--tags infra"],
      env(),
    );
    expect(apply.code, apply.out).toBe(0);
    const [web, db] = M();
    expect(apply.out).toContain(`  OK ${db?.name} (project=${db?.project})`);
    expect(apply.out).not.toContain(`OK ${web?.name}`);
    expect(readFileSync(join(state(), "latest-scope"), "utf8")).toBe(`${D[1]}\n`);
  });
  // Matrix: RB-2-003
  test("SKIP_SNAPSHOT=1 takes no snapshot and runs no cleanup (KEEP=0 deletes nothing)", async () => {
    const before = history();
    const snaps = await Promise.all(M().map((m) => snapshotsOf(m.name, m.project)));
    const apply = await make(dir, ["apply-infra", ...vars(), "SKIP_SNAPSHOT=1", "KEEP=0"], env());
    expect(apply.code, apply.out).toBe(0);
    expect(apply.out).toContain("Skipping pre-apply snapshot (SKIP_SNAPSHOT is set)");
    expect(apply.out).toContain("==> apply-infra complete");
    expect(history()).toEqual(before);
    expect(await Promise.all(M().map((m) => snapshotsOf(m.name, m.project)))).toEqual(snaps);
  });

  test("KEEP=1 after a successful apply leaves exactly the snapshot it took", async () => {
    const apply = await make(dir, ["apply-infra", ...vars(), "KEEP=1"], env());
    expect(apply.code, apply.out).toBe(0);
    const ts = readFileSync(join(state(), "latest"), "utf8").trim();
    expect(apply.out).toMatch(/OK Deleted pre-apply-/);
    expect(history()).toEqual([`pre-apply-${ts}`]);
    for (const m of M())
      expect(preApply(await snapshotsOf(m.name, m.project))).toEqual([`pre-apply-${ts}`]);
  });
});

describe.if(faults)("safe_apply_wrap failure paths around the real make apply-infra", () => {
  // Matrix: RB-2-004
  test("a failing snapshot warns and the apply goes on: exit 0, the other instance recorded", async () => {
    const [web, db] = M() as [{ name: string; project: string }, { name: string; project: string }];
    const unblock = await blockSnapshots(web.name, web.project);
    let apply: Awaited<ReturnType<typeof make>>;
    try {
      apply = await make(dir, ["apply-infra", ...vars(), "KEEP=10"], env());
    } finally {
      await unblock();
    }
    expect(apply.code, apply.out).toBe(0);
    expect(apply.out).toMatch(
      new RegExp(`WARN ${web.name} \\(project=${web.project}\\): snapshot failed: `),
    );
    expect(apply.out).toContain("1 snapshot(s) created, 0 skipped (not found), 1 failed");
    expect(apply.out).toContain("==> apply-infra complete");
    const ts = readFileSync(join(state(), "latest"), "utf8").trim();
    expect(await snapshotsOf(db.name, db.project)).toContain(`pre-apply-${ts}`);
    expect(await snapshotsOf(web.name, web.project)).not.toContain(`pre-apply-${ts}`);
  });

  test("a failing cleanup is reported and does not fail the apply; the name stays for the next cleanup", async () => {
    const [web, db] = M() as [{ name: string; project: string }, { name: string; project: string }];
    const old = history();
    expect(old.length).toBeGreaterThan(1);
    const unblock = await blockSnapshots(db.name, db.project);
    let apply: Awaited<ReturnType<typeof make>>;
    try {
      apply = await make(dir, ["apply-infra", ...vars(), "KEEP=1"], env());
    } finally {
      await unblock();
    }
    expect(apply.code, apply.out).toBe(0);
    expect(apply.out).toMatch(
      new RegExp(
        `WARN could not delete pre-apply-\\S+ of ${db.name} \\(project=${db.project}\\): `,
      ),
    );
    expect(apply.out).toMatch(/Error 1 \(ignored\)/);
    expect(apply.out).toContain("==> apply-infra complete");
    // db held every old name, so none could be deleted everywhere: all stay.
    const kept = history();
    expect(kept.slice(0, -1)).toEqual(old);
    const retry = await make(dir, ["rollback-cleanup", "KEEP=1"], env());
    expect(retry.code, retry.out).toBe(0);
    expect(history()).toEqual(kept.slice(-1));
    // The block covered db's pre-apply snapshot of this run too: web alone holds the newest.
    expect(preApply(await snapshotsOf(web.name, web.project))).toEqual(kept.slice(-1));
    expect(preApply(await snapshotsOf(db.name, db.project))).toEqual([]);
  });
});

describe.if(live)("a failing apply", () => {
  // Matrix: RB-3-001
  test("make stops: exit non-zero, no cleanup (KEEP=0 deleted nothing), the snapshot stays for make rollback", async () => {
    write(join(dir, "infra.yml"), infra(subnets, await testImage(), true));
    const sync = await make(dir, ["sync"], env());
    expect(sync.code, sync.out).toBe(0);
    await Promise.all(M().map((m) => sh(m.name, m.project, "echo before-bad > /data/a")));
    const before = await Promise.all(M().map((m) => fingerprint(m.name, m.project)));
    const apply = await make(dir, ["apply-infra", ...vars(), "KEEP=0"], env());
    expect(apply.code, apply.out).not.toBe(0);
    expect(apply.out).toContain(`nosuch-image-${u}`);
    expect(apply.out).toContain("2 snapshot(s) created, 1 skipped (not found), 0 failed");
    expect(apply.out).toContain("==> Running: apply-infra");
    expect(apply.out).not.toContain("==> apply-infra complete");
    const ts = readFileSync(join(state(), "latest"), "utf8").trim();
    expect(history()).toContain(`pre-apply-${ts}`);
    for (const m of M()) expect(await snapshotsOf(m.name, m.project)).toContain(`pre-apply-${ts}`);
    await Promise.all(M().map((m) => sh(m.name, m.project, "echo broken > /data/a")));
    const rb = await make(dir, ["rollback"], env());
    expect(rb.code, rb.out).toBe(0);
    expect(rb.out).toContain(`to pre-apply-${ts}`);
    expect(await Promise.all(M().map((m) => fingerprint(m.name, m.project)))).toEqual(before);
  });
});
