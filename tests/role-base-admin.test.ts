/**
 * Roles base_system and admin_bootstrap on a real Debian container
 * (anklume-debian12) on a test bridge without NAT: apt reaches packages only
 * through the host's package cache. Each role: check mode on the fresh
 * machine, converge, a second run with changed=0, the real state checked
 * inside the container, drift corrected. One container serves both roles,
 * in play 2's order (base_system, then admin_bootstrap).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { incusRun } from "../lib/incus/client.ts";
import { recap } from "./apply-helpers.ts";
import { uniq } from "./helpers.ts";
import {
  aptProxy,
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

const live = await rolesOrSkip("role-base-admin");
const u = uniq();
const BRIDGE = `rba${u}`;
const C = `rba-${u}`;
let dir = "";

const BASE_VARS = {
  base_system_extra_packages: ["jq"],
  base_system_timezone: "Asia/Tokyo",
  base_system_locale: "fr_FR.UTF-8",
};

function changed(run: PlayRun): number {
  return recap(run.out)[C]?.changed ?? -1;
}

describe.skipIf(!live)(
  "roles base_system and admin_bootstrap on a Debian container (skipped only without Incus, the anklume-debian12 image, Ansible or the package cache; all required under CI)",
  () => {
    beforeAll(async () => {
      dir = tempDir("anklume-role-base");
      const [br] = await createBridges("10.236", [BRIDGE]);
      await launch(C, DEBIAN, [{ name: "eth0", bridge: BRIDGE }]);
      await waitSystemd(C);
      await aptProxy(C, br?.gateway as string);
    }, 120_000);

    afterAll(async () => {
      await cleanup([C], [BRIDGE]);
      if (dir) removeDir(dir);
    }, 60_000);

    describe("base_system", () => {
      let seq: RoleSequence | undefined;
      let jqAfterCheck = -1;
      let tzAfterCheck = "";

      beforeAll(async () => {
        seq = await roleSequence(
          { dir, hosts: [C], role: "base_system", vars: BASE_VARS },
          async () => {
            jqAfterCheck = (await sh(C, "dpkg -s jq")).exitCode;
            tzAfterCheck = (await sh(C, "cat /etc/timezone")).stdout.trim();
          },
        );
        console.log(
          `base_system converge: ${seq.converge.seconds.toFixed(1)} s, no-op: ${seq.again.seconds.toFixed(1)} s`,
        );
      }, 600_000);

      // Matrix: PV-004
      test("check mode on the fresh machine succeeds and changes nothing", () => {
        const run = seq?.check as PlayRun;
        expect(run.code, run.out).toBe(0);
        expect(changed(run), run.out).toBeGreaterThan(0);
        expect(jqAfterCheck).not.toBe(0);
        expect(tzAfterCheck).not.toBe("Asia/Tokyo");
      });

      // Matrix: PV-004
      test("converge installs the extra package, sets the time zone and the locale", async () => {
        const run = seq?.converge as PlayRun;
        expect(run.code, run.out).toBe(0);
        expect((await sh(C, "jq --version")).exitCode).toBe(0);
        expect((await sh(C, "dpkg -s htop | grep '^Status'")).stdout).toContain(
          "install ok installed",
        );
        expect((await sh(C, "cat /etc/timezone")).stdout.trim()).toBe("Asia/Tokyo");
        expect((await sh(C, "readlink /etc/localtime")).stdout.trim()).toBe(
          "/usr/share/zoneinfo/Asia/Tokyo",
        );
        expect((await sh(C, "date +%Z")).stdout.trim()).toBe("JST");
        expect((await sh(C, "cat /etc/default/locale")).stdout).toContain("LANG=fr_FR.UTF-8");
        expect((await sh(C, "locale -a")).stdout).toContain("fr_FR.utf8");
        // A login shell sees it (pam_env / systemd read /etc/default/locale).
        expect((await sh(C, ". /etc/default/locale; LANG=$LANG locale 2>&1")).stdout).not.toContain(
          "Cannot set",
        );
      });

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

      // Matrix: PV-005
      test("drift is corrected and reported: a removed package, a changed time zone", async () => {
        expect(
          (await sh(C, "apt-get remove -y -q jq >/dev/null && echo UTC > /etc/timezone")).exitCode,
        ).toBe(0);
        const check = await runRole({
          dir,
          hosts: [C],
          role: "base_system",
          vars: BASE_VARS,
          check: true,
        });
        expect(check.code, check.out).toBe(0);
        expect(changed(check), check.out).toBe(2);
        const run = await runRole({ dir, hosts: [C], role: "base_system", vars: BASE_VARS });
        expect(run.code, run.out).toBe(0);
        expect(changed(run), run.out).toBe(2);
        expect((await sh(C, "jq --version")).exitCode).toBe(0);
        expect((await sh(C, "cat /etc/timezone")).stdout.trim()).toBe("Asia/Tokyo");
      }, 180_000);

      // Matrix: PV-006
      test("an unknown time zone fails with one line that names it", async () => {
        const run = await runRole({
          dir,
          hosts: [C],
          role: "base_system",
          vars: { ...BASE_VARS, base_system_timezone: "Mars/Olympus" },
        });
        expect(run.code).not.toBe(0);
        expect(run.out).toContain('Cannot set the time zone "Mars/Olympus"');
      }, 120_000);
    });

    describe("admin_bootstrap (after base_system, as in play 2)", () => {
      const ADMIN_VARS = { admin_bootstrap_repo_dir: "/root/anklume" };
      let seq: RoleSequence | undefined;
      let tmpfilesAfterCheck = -1;
      let ansibleAfterCheck = -1;

      beforeAll(async () => {
        seq = await roleSequence(
          { dir, hosts: [C], role: "admin_bootstrap", vars: ADMIN_VARS },
          async () => {
            tmpfilesAfterCheck = (await sh(C, "test -e /etc/tmpfiles.d/incus-socket.conf"))
              .exitCode;
            ansibleAfterCheck = (await sh(C, "command -v ansible")).exitCode;
          },
        );
        console.log(
          `admin_bootstrap converge: ${seq.converge.seconds.toFixed(1)} s, no-op: ${seq.again.seconds.toFixed(1)} s`,
        );
      }, 900_000);

      test("check mode succeeds and changes nothing", () => {
        const run = seq?.check as PlayRun;
        expect(run.code, run.out).toBe(0);
        expect(changed(run), run.out).toBeGreaterThan(0);
        expect(tmpfilesAfterCheck).not.toBe(0);
        expect(ansibleAfterCheck).not.toBe(0);
      });

      test("converge: /run/incus, Ansible and git from apt, community.general present, the login notice", async () => {
        const run = seq?.converge as PlayRun;
        expect(run.code, run.out).toBe(0);
        expect((await sh(C, "test -d /run/incus")).exitCode).toBe(0);
        expect((await sh(C, "cat /etc/tmpfiles.d/incus-socket.conf")).stdout).toContain(
          "d /run/incus 0755 root root -",
        );
        expect((await sh(C, "ansible --version")).exitCode).toBe(0);
        expect((await sh(C, "git --version")).exitCode).toBe(0);
        expect(
          (await sh(C, "ansible-galaxy collection list community.general 2>/dev/null")).stdout,
        ).toContain("community.general");
        expect((await sh(C, "test -f /etc/profile.d/anklume-update-check.sh")).exitCode).toBe(0);
        // Debian 12's own ansible carries community.general 6.x: no incus connection plugin.
        const cg = (await sh(C, "ansible-galaxy collection list community.general 2>/dev/null"))
          .stdout;
        if (/community\.general\s+[0-8]\./.test(cg)) {
          expect(run.out).toMatch(
            /community\.general 6\.[0-9.]+ in this instance is older than 9\.0\.0/,
          );
        }
      }, 60_000);

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

      test("the login notice says when the checkout is behind its upstream, and is silent otherwise", async () => {
        const git = "git -c user.name=t -c user.email=t@t -c init.defaultBranch=main";
        const setup = await sh(
          C,
          `set -e; rm -rf /tmp/up.git /tmp/other /root/anklume
          ${git} init -q --bare /tmp/up.git
          ${git} clone -q /tmp/up.git /root/anklume 2>/dev/null
          cd /root/anklume && ${git} commit -q --allow-empty -m one && ${git} push -q origin HEAD:main 2>/dev/null
          ${git} branch -q --set-upstream-to=origin/main
          ${git} clone -q /tmp/up.git /tmp/other && cd /tmp/other && ${git} commit -q --allow-empty -m two && ${git} push -q origin HEAD:main 2>/dev/null`,
        );
        expect(setup.exitCode, setup.stderr).toBe(0);
        const login = "sh -ic '. /etc/profile.d/anklume-update-check.sh' 2>/dev/null";
        expect((await sh(C, login)).stdout.trim()).toBe("");
        expect((await sh(C, "cd /root/anklume && git fetch -q")).exitCode).toBe(0);
        expect((await sh(C, login)).stdout.trim()).toBe(
          "anklume: 1 new commit(s) on origin/main; run: make -C /root/anklume upgrade",
        );
        // A non-interactive shell never prints it.
        expect((await sh(C, ". /etc/profile.d/anklume-update-check.sh")).stdout.trim()).toBe("");
      }, 60_000);

      test("/run/incus comes back after a restart (tmpfiles.d)", async () => {
        await incusRun(["restart", C]);
        await waitSystemd(C);
        expect((await sh(C, "test -d /run/incus")).exitCode).toBe(0);
      }, 120_000);
    });
  },
);
