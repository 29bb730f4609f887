/**
 * The whole loop, for real: `make sync` (the generator) and `make apply-infra`
 * (the playbook, wrapped by safe_apply_wrap) on an infra.yml of its own with
 * two domains, then change files and `make rollback`. Runs in a throwaway
 * workdir (tests/apply-helpers.ts), so the repository's own inventory is never
 * touched; everything the infra creates in Incus is deleted in afterAll.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
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
import { incusOrSkip, uniq } from "./helpers.ts";

setDefaultTimeout(600_000);
const live = await incusOrSkip("tests/snap-apply-infra.test.ts");
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
const M = () => [
  { name: `${prefix}${D[0]}-web`, project: `${prefix}${D[0]}` },
  { name: `${prefix}${D[1]}-db`, project: `${prefix}${D[1]}` },
];

beforeAll(async () => {
  if (!live) return;
  dir = makeWorkdir("anklume-snap-apply");
  const s = await freeSubnets(BASE, 2);
  const image = await testImage();
  write(
    join(dir, "infra.yml"),
    `project_name: sai${u}
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
`,
  );
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
  let before: string[] = [];

  test("the first apply creates both instances; with nothing to snapshot it records nothing", async () => {
    const apply = await make(dir, ["apply-infra", ...vars()], env());
    expect(apply.code, apply.out).toBe(0);
    expect(apply.out).toContain("0 snapshot(s) created, 2 skipped (not found), 0 failed");
    expect(apply.out).toContain("nothing was recorded for rollback");
    for (const m of M()) expect(await snapshotsOf(m.name, m.project)).toEqual([]);
  });

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
});
