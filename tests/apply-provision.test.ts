/**
 * make apply, play 2 on the real daemon: a Debian container (anklume-debian12,
 * python3 inside) with a role from roles_custom/ is provisioned through the
 * community.general.incus connection, addressed by its prefixed Incus name in
 * its project (decision 1); a busybox container without roles is skipped; a
 * second apply changes nothing.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { parse } from "yaml";
import { incusRaw, incusRun } from "../lib/incus/client.ts";
import {
  cleanupInfra,
  freeSubnets,
  make,
  makeWorkdir,
  recap,
  recapHosts,
  removeWorkdir,
  taskOutput,
  write,
} from "./apply-helpers.ts";
import { uniq } from "./helpers.ts";
import { rolesOrSkip } from "./role-helpers.ts";

const DEBIAN = process.env.ANKLUME_TEST_DEBIAN_IMAGE ?? "anklume-debian12";
const hasDebian = await rolesOrSkip("apply-provision");
const u = uniq();
const D = `pv${u}`;
let dir = "";
let infraId = "";
const runs: { code: number; out: string }[] = [];
let checkFirst = { code: -1, out: "" };
let projectAfterCheck = true;

describe.skipIf(!hasDebian)(
  "make apply with provisioning roles (skipped only without Incus, the anklume-debian12 image, Ansible or the package caches; all required under CI)",
  () => {
    beforeAll(async () => {
      dir = makeWorkdir("anklume-apply-provision");
      const [sid] = await freeSubnets("10.233", 1);
      mkdirSync(join(dir, "roles_custom", "touch_file", "tasks"), { recursive: true });
      write(
        join(dir, "roles_custom", "touch_file", "tasks", "main.yml"),
        `---
- name: Touch file | Write a marker
  ansible.builtin.copy:
    content: "provisioned {{ inventory_hostname }} in {{ ansible_incus_project }}\\n"
    dest: /root/anklume-provisioned
    mode: "0644"
`,
      );
      write(
        join(dir, "infra.yml"),
        `project_name: pv${u}
global:
  base_subnet: "10.233"
  default_os_image: ${DEBIAN}
domains:
  ${D}:
    subnet_id: ${sid}
    ephemeral: true
    machines:
      ${u}-deb:
        roles: [touch_file]
      ${u}-box:
        os_image: anklume-busybox
`,
      );
      expect((await make(dir, ["sync"])).code).toBe(0);
      const gv = parse(readFileSync(join(dir, "group_vars", `${D}.yml`), "utf8"));
      infraId = `${(gv.incus_project as string).slice(0, -D.length)}pv${u}`;
      const args = [
        "apply",
        "NAT=false",
        "SKIP_SNAPSHOT=1",
        `CONTEXT_DIR=${dir}`,
        `ARGS=-e incus_nftables_output_path=${dir}/x.nft`,
      ];
      // make check before anything exists: play 2 has nothing to connect to yet.
      checkFirst = await make(dir, ["check", "NAT=false", `CONTEXT_DIR=${dir}`]);
      const proj = parse(readFileSync(join(dir, "group_vars", `${D}.yml`), "utf8")).incus_project;
      projectAfterCheck = (await incusRaw(["project", "show", proj])).exitCode === 0;
      runs.push(await make(dir, args));
      runs.push(await make(dir, args));
    }, 300_000);

    afterAll(async () => {
      if (infraId) await cleanupInfra(infraId);
      if (dir) removeWorkdir(dir);
    }, 120_000);

    // Matrix: PV-001
    test("the role runs inside the prefixed instance, in its project", async () => {
      expect(runs[0]?.code, runs[0]?.out).toBe(0);
      const gv = parse(readFileSync(join(dir, "group_vars", `${D}.yml`), "utf8"));
      const hv = parse(readFileSync(join(dir, "host_vars", `${u}-deb.yml`), "utf8"));
      const r = await incusRun([
        "exec",
        hv.instance_name,
        "--project",
        gv.incus_project,
        "--",
        "cat",
        "/root/anklume-provisioned",
      ]);
      expect(r.stdout.trim()).toBe(`provisioned ${u}-deb in ${gv.incus_project}`);
    });

    // Matrix: PV-002
    test("a machine without roles is skipped (busybox has no python): end_host before any task result", async () => {
      const out = runs[0]?.out ?? "";
      expect(runs[0]?.code, out).toBe(0);
      // The roleless machine is in the inventory and its instance runs...
      const hv = parse(readFileSync(join(dir, "host_vars", `${u}-box.yml`), "utf8"));
      const gv = parse(readFileSync(join(dir, "group_vars", `${D}.yml`), "utf8"));
      const st = await incusRun([
        "list",
        hv.instance_name,
        "--project",
        gv.incus_project,
        "--format",
        "csv",
        "-c",
        "s",
      ]);
      expect(st.stdout.trim()).toBe("RUNNING");
      // ...but meta: end_host stops it before any task result: it is not in the
      // recap (a fatal or unreachable host would be), and never gathers facts.
      expect(recapHosts(out), out).toEqual([`${u}-deb`, "localhost"].sort());
      const gather = taskOutput(out, "Provisioning | Gather facts");
      expect(gather, out).toContain(`[${u}-deb]`);
      expect(gather, out).not.toContain(`[${u}-box]`);
      expect(out).not.toContain(`[${u}-box]`);
    });

    // Matrix: PV-003
    // Matrix: AP-010
    test("make check before the first apply succeeds: the machine would be created, so play 2 ends it without connecting", async () => {
      expect(checkFirst.code, checkFirst.out).toBe(0);
      expect(checkFirst.out).toContain("create container");
      expect(checkFirst.out).not.toContain("Project not found");
      // Check mode created nothing: the project appeared with the first real apply.
      expect(projectAfterCheck).toBe(false);
    });

    test("a second apply reports changed=0 for every host", () => {
      const out = runs[1]?.out ?? "";
      expect(runs[1]?.code, out).toBe(0);
      expect(recapHosts(out), out).toEqual([`${u}-deb`, "localhost"].sort());
      for (const [h, c] of Object.entries(recap(out))) expect(c.changed, `${h}\n${out}`).toBe(0);
    });
  },
);
