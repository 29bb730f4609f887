/**
 * `make flush` on the real daemon: an infra of two domains (busybox, no NAT)
 * built with make apply-infra, a foreign bridge and a foreign instance made by
 * hand beside it. Flush refuses at level 0, lists without destroying under
 * DRY_RUN, then with FORCE=true removes exactly the infra's objects and its
 * generated files, keeping user variables, infra.yml and the foreign objects.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { $ } from "zx";
import { incusRaw } from "../lib/incus/client.ts";
import { listInstances, listNetworks, listProjects } from "../lib/incus/objects.ts";
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

const live = await incusOrSkip("flush");
const u = uniq();
const [A, B] = [`fla${u}`, `flb${u}`];
const id = `000-fl${u}`;
const foreignNet = `flx${u}`;
const foreignInst = `flx${u}`;
let dir = "";
let ctx = "";
let s: number[] = [];

const env = () => ({ ANKLUME_CONTEXT_DIR: ctx });
const marked = async () => {
  const projects = (await listProjects()).filter((p) => p.config["user.anklume.infra"] === id);
  const nets = (await listNetworks()).filter((n) => n.config["user.anklume.infra"] === id);
  const names = new Set(projects.map((p) => p.name));
  const insts = (await listInstances()).filter((i) => names.has(i.project));
  return { projects: projects.length, nets: nets.length, insts: insts.length };
};

describe.skipIf(!live)(
  "make flush on a real Incus daemon (skipped only without one; required under CI)",
  () => {
    beforeAll(async () => {
      dir = makeWorkdir("anklume-flush");
      ctx = join(dir, "ctx");
      mkdirSync(ctx);
      write(join(ctx, "absolute_level"), "0\n");
      write(join(ctx, "relative_level"), "0\n");
      write(join(ctx, "vm_nested"), "false\n");
      write(join(ctx, "yolo"), "false\n");
      s = await freeSubnets("10.236", 3);
      write(
        join(dir, "infra.yml"),
        `project_name: fl${u}
global:
  base_subnet: "10.236"
  default_os_image: ${testImage()}
domains:
  ${A}:
    subnet_id: ${s[0]}
    profiles:
      tuned: {config: {limits.cpu: "1"}}
    machines:
      ${u}-a1: {ip: "10.236.${s[0]}.10", profiles: [default, tuned]}
      ${u}-a2: {ephemeral: true}
  ${B}:
    subnet_id: ${s[1]}
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
      appendFileSync(join(dir, "host_vars", `${u}-a1.yml`), "my_port: 8080\n");
      const net = await incusRaw([
        "network",
        "create",
        foreignNet,
        `ipv4.address=10.236.${s[2]}.254/24`,
        "ipv4.nat=false",
        "ipv6.address=none",
      ]);
      expect(net.exitCode, net.stderr).toBe(0);
      const inst = await incusRaw([
        "init",
        testImage(),
        foreignInst,
        "--no-profiles",
        "-s",
        "default",
      ]);
      expect(inst.exitCode, inst.stderr).toBe(0);
    }, 600_000);

    afterAll(async () => {
      if (!dir) return;
      await incusRaw(["delete", foreignInst, "--force"]);
      await incusRaw(["network", "delete", foreignNet]);
      await cleanupInfra(id);
      removeWorkdir(dir);
    }, 300_000);

    test("the infra is there to flush: 2 projects, 2 bridges, 3 instances", async () => {
      expect(await marked()).toEqual({ projects: 2, nets: 2, insts: 3 });
    });

    test("refuses on a production host (level 0, not yolo) without FORCE, exit 1, destroying nothing", async () => {
      const r = await make(dir, ["flush"], env());
      expect(r.code, r.out).not.toBe(0);
      const direct = await $({
        cwd: dir,
        nothrow: true,
        quiet: true,
        env: { ...process.env, ...env() },
      })`bun scripts/flush.ts`;
      expect(direct.exitCode, direct.stderr).toBe(1);
      expect(r.out).toContain("production host");
      expect(r.out).toContain("FORCE=true");
      expect(await marked()).toEqual({ projects: 2, nets: 2, insts: 3 });
      expect(existsSync(join(dir, "inventory"))).toBe(true);
    });

    test("FORCE=false still refuses", async () => {
      const r = await make(dir, ["flush", "FORCE=false"], env());
      expect(r.code, r.out).not.toBe(0);
      expect(r.out).toContain("production host");
    });

    test("DRY_RUN=1 lists what would go, destroys nothing", async () => {
      const r = await make(dir, ["flush", "DRY_RUN=1"], env());
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain(`would destroy instance 000-${u}-a1 (project 000-${A})`);
      expect(r.out).toContain("would destroy network 000-net");
      expect(r.out).toMatch(/Dry run: \d+ resource\(s\) would be destroyed/);
      expect(r.out).not.toContain(foreignNet);
      expect(await marked()).toEqual({ projects: 2, nets: 2, insts: 3 });
      expect(existsSync(join(dir, "inventory"))).toBe(true);
    });

    test("outside production it asks; answered no it keeps everything and exits 1", async () => {
      // Matrix: LC-007
      const nested = join(dir, "ctx-nested");
      mkdirSync(nested);
      write(join(nested, "absolute_level"), "1\n");
      const r = await $({
        cwd: dir,
        nothrow: true,
        quiet: true,
        input: "no\n",
        env: { ...process.env, ANKLUME_CONTEXT_DIR: nested },
      })`bun scripts/flush.ts`;
      expect(r.exitCode, r.stderr).toBe(1);
      expect(r.stderr).toContain("Type 'yes' to confirm:");
      expect(r.stderr).toContain(`instance 000-${u}-a1 (project 000-${A})`);
      expect(r.stderr).toContain("Aborted.");
      expect(await marked()).toEqual({ projects: 2, nets: 2, insts: 3 });
      expect(existsSync(join(dir, "inventory"))).toBe(true);
    });

    test("FORCE=true destroys exactly the infra's objects and generated files, protection lifted", async () => {
      // Matrix: LC-007
      const r = await make(dir, ["flush", "FORCE=true"], env());
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain(`destroyed instance 000-${u}-a1 (project 000-${A})`);
      expect(r.out).toContain(`destroyed profile tuned (project 000-${A})`);
      expect(r.out).toMatch(
        /Flush complete: \d+ resources destroyed \(3 instances, .*2 projects, 2 networks/,
      );
      expect(await marked()).toEqual({ projects: 0, nets: 0, insts: 0 });
      // Foreign objects stay.
      expect((await listNetworks()).some((n) => n.name === foreignNet)).toBe(true);
      expect((await listInstances()).some((i) => i.name === foreignInst)).toBe(true);
      // Generated files go; the user's variables and infra.yml stay.
      expect(existsSync(join(dir, "inventory"))).toBe(false);
      expect(existsSync(join(dir, "group_vars", "all.yml"))).toBe(false);
      const a1 = readFileSync(join(dir, "host_vars", `${u}-a1.yml`), "utf8");
      expect(a1).toContain("my_port: 8080");
      expect(a1).not.toContain("MANAGED");
      expect(existsSync(join(dir, "infra.yml"))).toBe(true);
      expect(existsSync(join(dir, "Makefile"))).toBe(true);
    }, 300_000);

    test("a second flush finds nothing to do (exit 0)", async () => {
      const r = await make(dir, ["flush", "FORCE=true"], env());
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain("Nothing to flush");
    });
  },
);
