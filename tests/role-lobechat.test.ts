/**
 * Role lobechat on a real Debian container (anklume-debian12) on a test
 * bridge without NAT, npm through the host's cache. The real LobeChat is the
 * npm package @lobehub/chat (36 MB of source, a pnpm install of its whole
 * dependency tree and a Next.js build: far beyond CI's budget, measured by
 * hand in docs/ai.md). The first check-mode run uses the real package: the
 * role resolves its newest release through the cache and would download it.
 * The converge uses a stand-in source archive (tests/fixtures/standins/
 * lobechat) that the role installs and builds exactly as the real one: pnpm
 * (the version its packageManager names) installs a registry dependency
 * through the cache, `pnpm run build` runs `next build`, and lobechat.service
 * runs `next start`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { $ } from "zx";
import { uniq } from "./helpers.ts";
import {
  changedOn,
  cleanup,
  createBridges,
  DEBIAN,
  expectRoleSequence,
  httpGet,
  launch,
  npmRegistry,
  type PlayRun,
  REPO,
  type RoleSequence,
  removeDir,
  roleSequence,
  rolesOrSkip,
  runRole,
  sh,
  tempDir,
  useCaches,
  waitSystemd,
} from "./role-helpers.ts";

const live = await rolesOrSkip("role-lobechat");
const u = uniq();
const BRIDGE = `rlc${u}`;
const C = `rlc-${u}`;
let dir = "";
let ip = "";
let gateway = "";

/** The stand-in's source archive, as `git archive --prefix=lobechat/` would make it. */
async function standinArchive(): Promise<string> {
  const out = join(dir, "lobechat-standin.tgz");
  await $({ quiet: true })`tar -czf ${out} -C ${join(REPO, "tests/fixtures/standins")} lobechat`;
  return out;
}

/** What the stand-in answers on GET /. */
interface StandinAnswer {
  standin: string;
  buildId: {
    twoHours: number;
    msVersion: string;
    picocolorsVersion: string;
    publicSetting: string;
    nodeOptions: string;
    builtAt: number;
  };
  ollama: string;
  accessCode: string;
  nodeEnv: string;
  node: string;
  pid: number;
}

async function answer(): Promise<StandinAnswer | undefined> {
  const r = await httpGet(`http://${ip}:3210/`);
  return r.status === 200 ? (JSON.parse(r.body) as StandinAnswer) : undefined;
}

async function servicePid(): Promise<string> {
  return (await sh(C, "systemctl show -p MainPID --value lobechat.service")).stdout.trim();
}

describe.skipIf(!live)(
  "lobechat on a Debian container through the npm cache (skipped only without Incus, the anklume-debian12 image, Ansible or the package caches; all required under CI)",
  () => {
    let registryCheck: PlayRun | undefined;
    let seq: RoleSequence | undefined;
    let latest = "";
    let leftByCheck = "-";
    const vars = {
      lobechat_ollama_url: "http://10.9.9.9:11434",
      lobechat_env: { ACCESS_CODE: "from-lobechat-env" },
      lobechat_build_env: {
        NEXT_PUBLIC_STANDIN: "first",
        NODE_OPTIONS: "--max-old-space-size=512",
      },
      // As a host without the internet does for LobeChat's xlsx: a dependency
      // given as a file and pointed at by an override.
      lobechat_overrides: { ms: "file:/var/cache/anklume/lobechat/files/ms-2.1.1.tgz" },
      lobechat_files: [] as string[],
    };

    beforeAll(async () => {
      dir = tempDir("anklume-role-lobechat");
      const [br] = await createBridges("10.237", [BRIDGE]);
      ip = `${br?.prefix}.10`;
      gateway = br?.gateway as string;
      await launch(C, DEBIAN, [{ name: "eth0", bridge: BRIDGE, ip }]);
      await waitSystemd(C);
      await useCaches(C, gateway);
      const meta = await fetch(`${npmRegistry("127.0.0.1")}@lobehub%2fchat`, {
        headers: { accept: "application/vnd.npm.install-v1+json" },
      });
      const ms = join(dir, "ms-2.1.1.tgz");
      writeFileSync(
        ms,
        Buffer.from(
          await (await fetch(`${npmRegistry("127.0.0.1")}ms/-/ms-2.1.1.tgz`)).arrayBuffer(),
        ),
      );
      vars.lobechat_files = [ms];
      latest = ((await meta.json()) as { "dist-tags": { latest: string } })["dist-tags"].latest;
      // The real package, in check mode: resolved through the cache, not downloaded.
      registryCheck = await runRole({ dir, hosts: [C], role: "lobechat", check: true });
      leftByCheck = (
        await sh(
          C,
          "ls -d /var/cache/anklume/lobechat /etc/systemd/system/lobechat.service /opt/lobechat 2>/dev/null",
        )
      ).stdout.trim();
      seq = await roleSequence({
        dir,
        hosts: [C],
        role: "lobechat",
        vars: { ...vars, lobechat_src: await standinArchive() },
      });
    }, 900_000);

    afterAll(async () => {
      await cleanup([C], [BRIDGE]);
      if (dir) removeDir(dir);
    }, 60_000);

    test("check mode with the real @lobehub/chat: its newest release is resolved through the npm cache, nothing downloaded or written", () => {
      expect(latest).toMatch(/^\d+\.\d+\.\d+/);
      expect(registryCheck?.code, registryCheck?.out).toBe(0);
      expect(registryCheck?.out).toContain(`lobehub-chat-${latest}.tgz`);
      expect(changedOn(registryCheck as PlayRun, C)).toBeGreaterThan(0);
      expect(leftByCheck).toBe("");
    });

    expectRoleSequence("lobechat (stand-in source)", C, () => seq);

    test("lobechat (stand-in source): built with pnpm (an override pointing at a file it was given) and served by lobechat.service on port 3210 from the host, with the role's settings", async () => {
      const a = await answer();
      expect(a?.standin).toBe("lobechat");
      // `ms` ran in the build: the version the override's file holds, not the package's 2.1.3.
      expect(a?.buildId.twoHours).toBe(7_200_000);
      expect(a?.buildId.msVersion).toBe("2.1.1");
      // picocolors came from the registry through the cache.
      expect(a?.buildId.picocolorsVersion).toBe("1.1.1");
      expect(a?.buildId.publicSetting).toBe("first");
      expect(a?.buildId.nodeOptions).toBe("--max-old-space-size=512");
      expect(a?.ollama).toBe("http://10.9.9.9:11434");
      expect(a?.accessCode).toBe("from-lobechat-env");
      expect(a?.nodeEnv).toBe("production");
      expect(a?.node).toMatch(/^v22\./);
      const pnpm = await sh(C, "/usr/local/bin/pnpm --version");
      expect(pnpm.stdout.trim()).toBe("10.18.3");
      const env = await sh(C, "stat -c %a /etc/lobechat/lobechat.env");
      expect(env.stdout.trim()).toBe("600");
      expect((await sh(C, "test -e /opt/lobechat.new || test -e /opt/lobechat.old")).exitCode).toBe(
        1,
      );
    });

    test("lobechat (stand-in source): a changed build environment rebuilds and restarts; a failed build leaves the running one serving", async () => {
      const before = await answer();
      const pid = await servicePid();
      const source = { ...vars, lobechat_src: await standinArchive() };
      /** A converge of the stand-in with more build environment. */
      const withBuildEnv = (extra: Record<string, string>) =>
        runRole({
          dir,
          hosts: [C],
          role: "lobechat",
          vars: { ...source, lobechat_build_env: { ...vars.lobechat_build_env, ...extra } },
        });
      const rebuilt = await withBuildEnv({ NEXT_PUBLIC_STANDIN: "second" });
      expect(rebuilt.code, rebuilt.out).toBe(0);
      expect(changedOn(rebuilt, C), rebuilt.out).toBeGreaterThan(0);
      const after = await answer();
      expect(after?.buildId.publicSetting).toBe("second");
      expect(after?.buildId.builtAt).toBeGreaterThan(before?.buildId.builtAt ?? 0);
      expect(await servicePid()).not.toBe(pid);

      const newPid = await servicePid();
      const failed = await withBuildEnv({ NEXT_PUBLIC_STANDIN: "third", STANDIN_FAIL_BUILD: "1" });
      expect(failed.code).not.toBe(0);
      expect(failed.out).toContain("stand-in build failing as asked");
      expect((await answer())?.buildId.publicSetting).toBe("second");
      expect(await servicePid()).toBe(newPid);

      // Back to the environment of the running build: nothing to do.
      const again = await withBuildEnv({ NEXT_PUBLIC_STANDIN: "second" });
      expect(again.code, again.out).toBe(0);
      expect(changedOn(again, C), again.out).toBe(0);
    }, 600_000);

    test("lobechat: a release the registry does not have fails at once, naming it and what to set", async () => {
      const r = await runRole({
        dir,
        hosts: [C],
        role: "lobechat",
        vars: { lobechat_version: "v0.0.1-none" },
        check: true,
      });
      expect(r.code).not.toBe(0);
      expect(r.out).toContain("has no release 0.0.1-none of @lobehub/chat");
      expect(r.out).toContain("set lobechat_version");
    }, 300_000);
  },
);
