/**
 * The VM path of make apply on the real daemon. VMs cannot start on these
 * machines (no vhost_vsock: the daemon's driver is "lxc" only), so apply must
 * skip the VM with a warning and converge everything else; on a host with KVM
 * the daemon's own answer to `incus init --vm` is the check. The firewall VM's
 * multi-NIC profile (decision 9) is built before the VM either way. The plan's
 * `incus init --vm` call itself is unit-tested in lib/reconcile.test.ts.
 *
 * The admin domain must be called `anklume`; a nesting level of the test's own
 * (a context directory) keeps its project away from a real `000-anklume`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { parse } from "yaml";
import { incusJson, incusRun } from "../lib/incus/client.ts";
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

const live = await incusOrSkip("apply-vm");
const u = uniq();
const [ADMIN, LAB] = ["anklume", `vl${u}`];
let dir = "";
let infraId = "";
let out = { code: 0, out: "" };
// Whether the daemon can run VMs decides which of the two path tests runs (a visible skip).
const vmCapable =
  live &&
  /\bqemu\b/.test(JSON.parse((await incusRun(["query", "/1.0"])).stdout).environment?.driver ?? "");
const gv: Record<string, { incus_project: string; incus_network: { name: string } }> = {};

describe.skipIf(!live)(
  "make apply-infra with firewall_mode: vm (skipped only without an Incus daemon; required under CI)",
  () => {
    beforeAll(async () => {
      dir = makeWorkdir("anklume-apply-vm");
      const s = await freeSubnets("10.231", 2);
      const image = await testImage();
      write(
        join(dir, "infra.yml"),
        `project_name: vm${u}
global:
  base_subnet: "10.231"
  default_os_image: ${image}
  firewall_mode: vm
domains:
  ${ADMIN}:
    subnet_id: ${s[0]}
    machines: {}
  ${LAB}:
    subnet_id: ${s[1]}
    machines:
      ${u}-l1: {}
`,
      );
      const ctx = join(dir, "ctx");
      mkdirSync(ctx);
      write(join(ctx, "absolute_level"), `${100 + Math.floor(Math.random() * 800)}\n`);
      const sync = await make(dir, ["sync"], { ANKLUME_CONTEXT_DIR: ctx });
      expect(sync.code, sync.out).toBe(0);
      for (const d of [ADMIN, LAB])
        gv[d] = parse(readFileSync(join(dir, "group_vars", `${d}.yml`), "utf8"));
      const adminProject = gv[ADMIN]?.incus_project ?? "";
      infraId = `${adminProject.slice(0, -ADMIN.length)}vm${u}`;
      out = await make(dir, ["apply-infra", "NAT=false", "SKIP_SNAPSHOT=1", `CONTEXT_DIR=${ctx}`]);
    }, 300_000);

    afterAll(async () => {
      if (infraId) await cleanupInfra(infraId);
      if (dir) removeWorkdir(dir);
    }, 120_000);

    const labName = (): string =>
      parse(readFileSync(join(dir, "host_vars", `${u}-l1.yml`), "utf8")).instance_name;
    const labStatus = async () =>
      (
        await incusJson(
          ["list", "--project", gv[LAB]?.incus_project as string],
          v.array(v.looseObject({ name: v.string(), status: v.string() })),
        )
      ).map((i) => `${i.name} ${i.status}`);

    test.skipIf(vmCapable)(
      "on a host without KVM (fake: no VM can start here; skipped on a KVM host, which runs the VM path below) sys-firewall is skipped with a warning and the rest converges",
      async () => {
        expect(out.code, out.out).toBe(0);
        expect(out.out).toMatch(
          /sys-firewall: VM not created: this Incus host cannot\s+run\s+virtual\s+machines/,
        );
        expect(out.out).not.toMatch(/\S+-l1: .*failed/);
        expect(await labStatus()).toEqual([`${labName()} Running`]);
      },
    );

    test.skipIf(!vmCapable)(
      "on a KVM host (skipped on hosts without KVM, as these machines are: Incus's qemu driver needs vhost_vsock) the daemon receives sys-firewall as a VM; only its (container) image fails, the rest converges",
      async () => {
        expect(out.out).toMatch(/(init|launch) \S+ \S*sys-firewall --vm/);
        expect(out.code, out.out).not.toBe(0);
        // The failure the run reports is sys-firewall's, not the lab instance's.
        expect(out.out).not.toMatch(/\S+-l1: .*failed/);
        expect(out.out).toContain("sys-firewall");
        expect(await labStatus()).toEqual([`${labName()} Running`]);
      },
    );

    // Matrix: AP-2-004
    test("the multi-NIC profile has the admin bridge first, then every other bridge (decision 9)", async () => {
      const project = gv[ADMIN]?.incus_project as string;
      const profiles = await incusJson(["profile", "list", "--project", project], v.array(v.any()));
      const fw = profiles.find((p: { name: string }) => p.name === "firewall-multi-nic");
      expect(fw, out.out).toBeDefined();
      const lab = await incusJson(
        ["list", "--project", gv[LAB]?.incus_project as string],
        v.array(v.any()),
      );
      expect(lab.map((i: { status: string }) => i.status)).toEqual(["Running"]);
      expect(fw.devices).toEqual({
        eth0: { type: "nic", name: "eth0", network: gv[ADMIN]?.incus_network.name },
        eth1: { type: "nic", name: "eth1", network: gv[LAB]?.incus_network.name },
      });
    });
  },
);
