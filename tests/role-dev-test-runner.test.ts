/**
 * Role dev_test_runner on a real Debian container with security.nesting=true
 * on a test bridge without NAT: Incus from apt through the host's package
 * cache, initialised by preseed, and the host's exported images (one split
 * export as `incus image export` writes it, one unified tarball) imported
 * from a read-only disk at /mnt/host-images, then listed inside the nested
 * Incus. Check mode, converge, changed=0, drift, and the nesting check.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { $ } from "zx";
import { incusRun } from "../lib/incus/client.ts";
import { recap, taskOutput } from "./apply-helpers.ts";
import { uniq } from "./helpers.ts";
import {
  aptProxy,
  BUSYBOX,
  cleanup,
  createBridges,
  DEBIAN,
  launch,
  type PlayRun,
  type RoleSequence,
  removeDir,
  roleSequence,
  rolesOrSkip,
  runRole,
  sh,
  tempDir,
  waitSystemd,
} from "./role-helpers.ts";

const live = await rolesOrSkip("role-dev-test-runner", [DEBIAN, BUSYBOX]);
const u = uniq();
const BRIDGE = `rdt${u}`;
const R = `rdt-${u}`;
const UNIFIED = "anklume-box-unified";
let dir = "";
let exportDir = "";
let hostFingerprint = "";
const VARS = { dev_test_runner_verify_nesting: false };
// Measured here: without it, the runner gets no cgroup v1 cpu and cpuacct
// hierarchy (symlinks to an empty cpu,cpuacct directory) and nested LXC fails.
const MOUNT_CGROUPS = "lxc.mount.auto=cgroup:rw:force";

// Measured on the host at load time (the test name says what was found):
// cgroup v1 controllers cpu and cpuacct mounted as two separate hierarchies.
const hostCgroups = readFileSync("/proc/self/cgroup", "utf8");
const splitCpu = /^\d+:cpu:/m.test(hostCgroups) && /^\d+:cpuacct:/m.test(hostCgroups);

function changed(run: PlayRun): number {
  return recap(run.out)[R]?.changed ?? -1;
}

async function nestedAliases(): Promise<Record<string, string>> {
  const r = await sh(R, "incus image alias list --format json");
  const list = JSON.parse(r.stdout || "[]") as { name: string; target: string }[];
  return Object.fromEntries(list.map((a) => [a.name, a.target]));
}

describe.skipIf(!live)(
  "role dev_test_runner: nested Incus fed with the host's exported images (skipped only without Incus, the Debian and busybox images, Ansible or the package cache; all required under CI)",
  () => {
    beforeAll(async () => {
      dir = tempDir("anklume-role-dtr");
      // The host's export, as make export-images would write it: a split image
      // (metadata + .root) and a unified tarball rebuilt from the same files.
      exportDir = join(dir, "images");
      mkdirSync(exportDir);
      await incusRun(["image", "export", BUSYBOX, join(exportDir, BUSYBOX)]);
      const info = JSON.parse(
        (await incusRun(["image", "list", BUSYBOX, "--format", "json"])).stdout,
      ) as { fingerprint: string }[];
      hostFingerprint = info[0]?.fingerprint ?? "";
      const work = join(dir, "unified");
      await $({ quiet: true })`mkdir -p ${work}/rootfs
        tar -xf ${join(exportDir, BUSYBOX)} -C ${work}
        tar -xf ${join(exportDir, `${BUSYBOX}.root`)} -C ${work}/rootfs
        tar -czf ${join(exportDir, `${UNIFIED}.tar.gz`)} -C ${work} .`;
      const [br] = await createBridges("10.238", [BRIDGE]);
      await launch(R, DEBIAN, [{ name: "eth0", bridge: BRIDGE }], {
        "security.nesting": "true",
        "raw.lxc": MOUNT_CGROUPS,
      });
      await incusRun([
        "config",
        "device",
        "add",
        R,
        "host-images",
        "disk",
        `source=${exportDir}`,
        "path=/mnt/host-images",
        "readonly=true",
      ]);
      await waitSystemd(R);
      await aptProxy(R, br?.gateway as string);
    }, 180_000);

    afterAll(async () => {
      await cleanup([R], [BRIDGE]);
      if (dir) removeDir(dir);
    }, 60_000);

    let seq: RoleSequence | undefined;
    let incusAfterCheck = -1;

    // The shared check/converge/again/recheck sequence (role-helpers.ts).
    beforeAll(async () => {
      seq = await roleSequence(
        { dir, hosts: [R], role: "dev_test_runner", vars: VARS },
        async () => {
          incusAfterCheck = (await sh(R, "command -v incus")).exitCode;
        },
      );
      console.log(
        `dev_test_runner converge: ${seq.converge.seconds.toFixed(1)} s, no-op: ${seq.again.seconds.toFixed(1)} s`,
      );
    }, 900_000);

    test("check mode on the fresh machine succeeds and installs nothing", () => {
      const run = seq?.check as PlayRun;
      expect(run.code, run.out).toBe(0);
      expect(changed(run), run.out).toBeGreaterThan(0);
      expect(incusAfterCheck).not.toBe(0);
    });

    test("converge: Incus installed and initialised, both exported images listed inside the nested Incus", async () => {
      const run = seq?.converge as PlayRun;
      expect(run.code, run.out).toBe(0);
      const pools = await sh(R, "incus storage list --format csv -c nD");
      expect(pools.stdout).toContain("default,dir");
      expect((await sh(R, "incus network show incusbr0")).stdout).toContain("10.250.0.1/24");
      const list = await sh(R, "incus image list --format csv -c lf");
      expect(list.stdout).toContain(BUSYBOX);
      expect(list.stdout).toContain(UNIFIED);
      // The split export is the host's image itself: same fingerprint inside.
      expect((await nestedAliases())[BUSYBOX]).toBe(hostFingerprint);
      // root's subordinate ids fit into the runner's own id map (0 <host id> <size>).
      const size = Number((await sh(R, "cat /proc/self/uid_map")).stdout.trim().split(/\s+/)[2]);
      expect((await sh(R, "cat /etc/subuid /etc/subgid")).stdout).toBe(
        `root:1000000:${size - 1000000}\nroot:1000000:${size - 1000000}\n`,
      );
    }, 120_000);

    test("a second run reports changed=0", () => {
      const run = seq?.again as PlayRun;
      expect(run.code, run.out).toBe(0);
      expect(changed(run), run.out).toBe(0);
    });
    test("check mode on the converged machine reports changed=0 (make check sees the real state)", () => {
      const run = seq?.recheck as PlayRun;
      expect(run.code, run.out).toBe(0);
      expect(changed(run), run.out).toBe(0);
    });

    test("drift is corrected: a deleted image and a deleted alias come back", async () => {
      expect(
        (await sh(R, `incus image delete ${BUSYBOX} && incus image alias delete ${UNIFIED}`))
          .exitCode,
      ).toBe(0);
      const run = await runRole({ dir, hosts: [R], role: "dev_test_runner", vars: VARS });
      expect(run.code, run.out).toBe(0);
      // Two tasks change: the import (busybox; deleting it took its alias) and the aliases.
      expect(changed(run), run.out).toBe(2);
      const aliases = await nestedAliases();
      expect(aliases[BUSYBOX]).toBe(hostFingerprint);
      expect(aliases[UNIFIED]).toBeDefined();
    }, 180_000);

    test("the nesting check launches, uses and deletes a nested container (the runner has raw.lxc lxc.mount.auto=cgroup:rw:force and security.nesting)", async () => {
      const run = await runRole({
        dir,
        hosts: [R],
        role: "dev_test_runner",
        vars: { dev_test_runner_verify_nesting: true, dev_test_runner_verify_image: BUSYBOX },
      });
      console.log(`dev_test_runner with the nesting check: ${run.seconds.toFixed(1)} s`);
      expect(run.code, run.out).toBe(0);
      expect(changed(run), run.out).toBe(0);
      expect(
        taskOutput(
          run.out,
          "dev_test_runner : Dev test runner | Run a command in the nested container",
        ),
      ).toContain(`ok: [${R}]`);
      expect((await sh(R, "incus list --format csv -c n")).stdout).not.toContain(
        "anklume-verify-nesting",
      );
    }, 180_000);

    test.skipIf(!splitCpu)(
      "without raw.lxc lxc.mount.auto=cgroup:rw:force the nesting check fails and names the cgroup v1 controllers it lacks (measured on this host, whose cpu and cpuacct are two hierarchies: cpuacct and cpu; skipped only on a host where they share one hierarchy, so nothing can be lacking)",
      async () => {
        await incusRun(["config", "unset", R, "raw.lxc"]);
        await incusRun(["restart", R]);
        await waitSystemd(R);
        const run = await runRole({
          dir,
          hosts: [R],
          role: "dev_test_runner",
          vars: { dev_test_runner_verify_nesting: true, dev_test_runner_verify_image: BUSYBOX },
        });
        const failure = taskOutput(
          run.out,
          "dev_test_runner : Dev test runner | Fail when nested containers cannot start",
        );
        console.log(`nesting check without raw.lxc: ${failure.trim()}`);
        expect(run.code).not.toBe(0);
        expect(failure).toContain("Nested containers cannot start in");
        expect(failure).toContain("Failed to initialize cgroups");
        expect(failure).toContain("The cgroup v1 controllers cpuacct, cpu are not mounted");
        expect(failure).toContain('raw.lxc "lxc.mount.auto=cgroup:rw:force"');
        expect((await sh(R, "incus list --format csv -c n")).stdout).not.toContain(
          "anklume-verify-nesting",
        );
      },
      180_000,
    );
  },
);
