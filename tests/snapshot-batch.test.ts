/**
 * v1's batch snapshot targets on the real daemon: an infra of two domains
 * (three busybox containers, no NAT) built with make apply-infra; data written,
 * snapshotted, changed and restored; one domain at a time; skips and per
 * instance failures; usage errors. A scenario in order.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { $ } from "zx";
import { incusRaw } from "../lib/incus/client.ts";
import { listInstances } from "../lib/incus/objects.ts";
import {
  cleanupInfra,
  freeSubnets,
  make,
  makeWorkdir,
  removeWorkdir,
  testImage,
  write,
} from "./apply-helpers.ts";
import { incusOrSkip, uniq } from "./helpers.ts";

const live = await incusOrSkip("snapshot-batch");
const u = uniq();
const [A, B] = [`sba${u}`, `sbb${u}`];
const id = `000-sb${u}`;
let dir = "";
let ctx = "";
const inst = {
  a1: { name: `000-${u}-a1`, project: `000-${A}` },
  a2: { name: `000-${u}-a2`, project: `000-${A}` },
  b1: { name: `000-${u}-b1`, project: `000-${B}` },
};
const all = Object.values(inst);

const env = () => ({ ANKLUME_CONTEXT_DIR: ctx });
const put = async (i: { name: string; project: string }, text: string) => {
  const r = await incusRaw([
    "exec",
    i.name,
    "--project",
    i.project,
    "--",
    "sh",
    "-c",
    `echo ${text} > /marker`,
  ]);
  expect(r.exitCode, r.stderr).toBe(0);
};
const read = async (i: { name: string; project: string }) =>
  (await incusRaw(["exec", i.name, "--project", i.project, "--", "cat", "/marker"])).stdout.trim();
const snaps = async (i: { name: string; project: string }) =>
  (
    (await listInstances({ snapshots: true })).find(
      (x) => x.name === i.name && x.project === i.project,
    )?.snapshots ?? []
  )
    .map((s) => s.name)
    .sort();
const script = (args: string[]) =>
  $({
    cwd: dir,
    nothrow: true,
    quiet: true,
    env: { ...process.env, ...env(), NO_COLOR: "1" },
  })`bun scripts/snapshot-batch.ts ${args}`;

describe.skipIf(!live)(
  "make snapshot / restore / snapshot-domain / restore-domain / snapshot-delete / snapshot-list on a real daemon",
  () => {
    beforeAll(async () => {
      dir = makeWorkdir("anklume-snapbatch");
      ctx = join(dir, "ctx");
      mkdirSync(ctx);
      write(join(ctx, "absolute_level"), "0\n");
      const [s0, s1] = await freeSubnets("10.237", 2);
      write(
        join(dir, "infra.yml"),
        `project_name: sb${u}
global:
  base_subnet: "10.237"
  default_os_image: ${testImage()}
domains:
  ${A}:
    subnet_id: ${s0}
    machines:
      ${u}-a1: {}
      ${u}-a2: {}
  ${B}:
    subnet_id: ${s1}
    machines:
      ${u}-b1: {}
`,
      );
      const sync = await make(dir, ["sync"], env());
      expect(sync.code, sync.out).toBe(0);
      const apply = await make(
        dir,
        [
          "apply-infra",
          `OS_IMAGE=${testImage()}`,
          "NAT=false",
          "SKIP_SNAPSHOT=1",
          `CONTEXT_DIR=${ctx}`,
        ],
        env(),
      );
      expect(apply.code, apply.out.slice(-3000)).toBe(0);
    }, 600_000);

    afterAll(async () => {
      if (!dir) return;
      await cleanupInfra(id);
      removeWorkdir(dir);
    }, 300_000);

    test("make snapshot NAME= then make restore NAME= brings every instance's data back", async () => {
      for (const i of all) await put(i, "one");
      const snap = await make(dir, ["snapshot", "NAME=s1"], env());
      expect(snap.code, snap.out).toBe(0);
      expect(snap.out).toContain("3 snapshot(s) created, 0 skipped, 0 failed");
      for (const i of all) expect(await snaps(i)).toEqual(["s1"]);
      for (const i of all) await put(i, "two");
      const restore = await make(dir, ["restore", "NAME=s1"], env());
      expect(restore.code, restore.out).toBe(0);
      expect(restore.out).toContain(`OK ${inst.b1.name} (project=${inst.b1.project})`);
      expect(restore.out).toContain("3 instance(s) restored");
      for (const i of all) expect(await read(i)).toBe("one");
    }, 300_000);

    test("make snapshot with a name already taken skips those instances, exit 0", async () => {
      const r = await make(dir, ["snapshot", "NAME=s1"], env());
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain(
        `SKIP ${inst.a1.name} (project=${inst.a1.project}): snapshot "s1" already exists`,
      );
      expect(r.out).toContain("0 snapshot(s) created, 3 skipped, 0 failed");
    });

    test("make snapshot-domain D= snapshots that domain only; restore-domain restores it", async () => {
      await put(inst.a1, "three");
      await put(inst.b1, "three");
      const r = await make(dir, ["snapshot-domain", `D=${A}`, "NAME=s2"], env());
      expect(r.code, r.out).toBe(0);
      expect(await snaps(inst.a1)).toEqual(["s1", "s2"]);
      expect(await snaps(inst.a2)).toEqual(["s1", "s2"]);
      expect(await snaps(inst.b1)).toEqual(["s1"]);
      await put(inst.a1, "four");
      await put(inst.b1, "four");
      const back = await make(dir, ["restore-domain", `D=${A}`, "NAME=s2"], env());
      expect(back.code, back.out).toBe(0);
      expect(await read(inst.a1)).toBe("three");
      expect(await read(inst.b1)).toBe("four");
    }, 300_000);

    test("a restore that some instance cannot do restores the others, names the failure and exits 1", async () => {
      await put(inst.a1, "five");
      const r = await script(["restore", "s2"]);
      expect(r.exitCode, r.stderr).toBe(1);
      expect(r.stderr).toContain(
        `FAILED ${inst.b1.name} (project=${inst.b1.project}): no snapshot "s2"; available: s1`,
      );
      expect(r.stderr).toContain("2 instance(s) restored, 0 skipped, 1 failed");
      expect(r.stderr).toContain(`failed on ${inst.b1.name}`);
      expect(await read(inst.a1)).toBe("three");
      const viaMake = await make(dir, ["restore", "NAME=s2"], env());
      expect(viaMake.code).not.toBe(0);
    }, 300_000);

    test("make snapshot-list [D=] shows the snapshots of the selected instances", async () => {
      const r = await make(dir, ["snapshot-list", `D=${A}`], env());
      expect(r.code, r.out).toBe(0);
      expect(r.out).toMatch(new RegExp(`${inst.a2.name}\\s+${inst.a2.project}\\s+s2`));
      expect(r.out).not.toContain(inst.b1.name);
      const json = await script(["list", "--json"]);
      expect(json.exitCode, json.stderr).toBe(0);
      const rows = JSON.parse(json.stdout) as { instance: string; snapshot: string }[];
      expect(rows.filter((x) => x.instance === inst.b1.name).map((x) => x.snapshot)).toEqual([
        "s1",
      ]);
    });

    test("--dry-run changes nothing", async () => {
      const r = await script(["delete", "s1", "--dry-run"]);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stderr).toContain(`would delete ${inst.a1.name}`);
      for (const i of all) expect(await snaps(i)).toContain("s1");
    });

    test("make snapshot-delete NAME= deletes it everywhere it exists", async () => {
      const r = await make(dir, ["snapshot-delete", "NAME=s2"], env());
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain("2 snapshot(s) deleted, 1 skipped, 0 failed");
      for (const i of all) expect(await snaps(i)).toEqual(["s1"]);
    });

    test("an instance of the inventory missing from Incus is reported and fails the batch; the others are snapshotted", async () => {
      await incusRaw([
        "config",
        "set",
        inst.a2.name,
        "security.protection.delete=false",
        "--project",
        inst.a2.project,
      ]);
      const del = await incusRaw(["delete", inst.a2.name, "--project", inst.a2.project, "--force"]);
      expect(del.exitCode, del.stderr).toBe(0);
      const r = await script(["create", "s3"]);
      expect(r.exitCode, r.stderr).toBe(1);
      expect(r.stderr).toContain(
        `FAILED ${inst.a2.name} (project=${inst.a2.project}): not in Incus`,
      );
      expect(r.stderr).toContain("2 snapshot(s) created, 0 skipped, 1 failed");
      expect(await snaps(inst.b1)).toEqual(["s1", "s3"]);
    });

    test("usage errors exit 2 and say what to add", async () => {
      for (const target of ["restore", "restore-domain", "snapshot-domain", "snapshot-delete"]) {
        const r = await make(dir, [target], env());
        expect(r.code, target).toBe(2);
        expect(r.out).toContain(`make ${target} needs`);
      }
      expect((await script([])).exitCode).toBe(2);
      expect((await script(["restore"])).exitCode).toBe(2);
      expect((await script(["create", "a b"])).exitCode).toBe(2);
      expect((await script(["list", "x"])).exitCode).toBe(2);
      expect((await script(["--help"])).exitCode).toBe(0);
      const nothing = await script(["list", "--limit", "nosuchdomain"]);
      expect(nothing.exitCode).toBe(1);
    });
  },
);
