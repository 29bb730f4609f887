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
  removeDir,
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
      await launch(R, DEBIAN, [{ name: "eth0", bridge: BRIDGE }], { "security.nesting": "true" });
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

    test("check mode on the fresh machine succeeds and installs nothing", async () => {
      const run = await runRole({
        dir,
        hosts: [R],
        role: "dev_test_runner",
        vars: VARS,
        check: true,
      });
      expect(run.code, run.out).toBe(0);
      expect(changed(run), run.out).toBeGreaterThan(0);
      expect((await sh(R, "command -v incus")).exitCode).not.toBe(0);
    }, 180_000);

    test("converge: Incus installed and initialised, both exported images listed inside the nested Incus", async () => {
      const run = await runRole({ dir, hosts: [R], role: "dev_test_runner", vars: VARS });
      console.log(`dev_test_runner converge: ${run.seconds.toFixed(1)} s, changed=${changed(run)}`);
      expect(run.code, run.out).toBe(0);
      const pools = await sh(R, "incus storage list --format csv -c nD");
      expect(pools.stdout).toContain("default,dir");
      expect((await sh(R, "incus network show incusbr0")).stdout).toContain("10.250.0.1/24");
      const list = await sh(R, "incus image list --format csv -c lf");
      expect(list.stdout).toContain(BUSYBOX);
      expect(list.stdout).toContain(UNIFIED);
      // The split export is the host's image itself: same fingerprint inside.
      expect((await nestedAliases())[BUSYBOX]).toBe(hostFingerprint);
    }, 600_000);

    test("a second run reports changed=0", async () => {
      const run = await runRole({ dir, hosts: [R], role: "dev_test_runner", vars: VARS });
      console.log(`dev_test_runner no-op: ${run.seconds.toFixed(1)} s`);
      expect(run.code, run.out).toBe(0);
      expect(changed(run), run.out).toBe(0);
    }, 180_000);

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

    test(splitCpu
      ? "the nesting check fails with its reason where the host mounts cgroup v1 cpu and cpuacct as two hierarchies (measured here: the runner gets neither, only symlinks to an empty cpu,cpuacct directory, and nested LXC stops at 'Failed to initialize cgroups')"
      : "the nesting check launches, uses and deletes a nested container", async () => {
      const run = await runRole({
        dir,
        hosts: [R],
        role: "dev_test_runner",
        vars: { dev_test_runner_verify_nesting: true, dev_test_runner_verify_image: BUSYBOX },
      });
      // Measured inside the runner: is cpuacct a mounted cgroup hierarchy?
      const layout = await sh(
        R,
        "stat -f -c %T /sys/fs/cgroup/cpuacct/ 2>&1; readlink /sys/fs/cgroup/cpuacct",
      );
      console.log(`runner /sys/fs/cgroup/cpuacct: ${layout.stdout.replace(/\n/g, " ")}`);
      const failure = taskOutput(
        run.out,
        "dev_test_runner : Dev test runner | Fail when nested containers cannot start",
      );
      console.log(`nesting check: ${failure.trim() || "passed"}`);
      if (splitCpu && !layout.stdout.startsWith("cgroupfs")) {
        expect(run.code).not.toBe(0);
        expect(run.out).toContain("Nested containers cannot start in");
        expect(run.out).toContain("Failed to initialize cgroups");
      } else {
        expect(run.code, run.out).toBe(0);
        expect(changed(run), run.out).toBe(0);
      }
      // Either way the throwaway container is gone.
      expect((await sh(R, "incus list --format csv -c n")).stdout).not.toContain(
        "anklume-verify-nesting",
      );
    }, 180_000);
  },
);
