/**
 * The README's main job, for real: the shipped infra.example.yml, synced and
 * applied with `OS_IMAGE=anklume-debian12 NAT=false` (infrastructure and
 * provisioning, apt through the host package cache), then applied again.
 * Names of its own: a random nesting level gives every Incus name a prefix no
 * other run uses, and the base subnet moves to a free 10.2xx range; nothing
 * else of the example changes. Without KVM the VM is skipped with its warning.
 * Slow (about 5 min on 2 cores): one converge shared by every test below.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { incusRaw } from "../lib/incus/client.ts";
import { driverRunsVms, listNetworks, serverDriver } from "../lib/incus/objects.ts";
import { cleanupInfra, make, makeWorkdir, recap, removeWorkdir, write } from "./apply-helpers.ts";
import { uniq } from "./helpers.ts";
import { DEBIAN, rolesOrSkip } from "./role-helpers.ts";

// Incus, the Debian image, Ansible and the package cache; each required under CI.
const hasDebian = await rolesOrSkip("example-apply");

const u = uniq();
const level = 100 + Math.floor(Math.random() * 900);
const prefix = `${level}-`;
let dir = "";
let base = "";
let synced: { code: number; out: string } | undefined;
const runs: Record<string, Attempts> = {};
const PROVISIONED = [
  "anklume-instance",
  "pro-dev",
  "pro-mail",
  "perso-desk",
  "ai-ollama",
  "ai-webui",
];

/** A base "10.x" whose .0 to .4 /24s (the example's subnet ids) no bridge uses. */
async function freeBase(): Promise<string> {
  const used = (await listNetworks()).map((n) => n.config["ipv4.address"] ?? "");
  for (
    let x = 200 + Math.floor(Math.random() * 50), i = 0;
    i < 50;
    i++, x = 200 + ((x - 199) % 50)
  ) {
    const b = `10.${x}`;
    if (![0, 1, 2, 3, 4].some((s) => used.some((a) => a.startsWith(`${b}.${s}.`)))) return b;
  }
  throw new Error("no free 10.2xx base subnet for the example");
}

/**
 * Incus 6.0's `incus exec` can end a fast command with status 0 but without
 * its output when several run at once (docs/provisioning.md, *Known issue*:
 * 6-10 of 500 `echo`s five at a time, none of 300 one at a time). Ansible
 * then fails that task with "failed to resolve remote temporary directory
 * ... returned empty string", and a user's remedy is to apply again. This
 * job provisions six machines at once, so on that message, and only on it,
 * it applies once more and says so. Every attempt's recap is kept: a change
 * in any attempt counts as a change.
 */
const EXEC_RACE =
  /failed to resolve remote temporary directory from \S+: [\s\S]*?returned empty string/;
type Attempts = { code: number; out: string; recaps: ReturnType<typeof recap>[] };
async function apply(args: string[], env: Record<string, string>): Promise<Attempts> {
  const first = await make(dir, args, env);
  const attempts = [first];
  if (first.code !== 0 && EXEC_RACE.test(first.out)) {
    console.error(
      "example-apply: incus exec lost a command's output (the Incus race of docs/provisioning.md); applying once more",
    );
    attempts.push(await make(dir, args, env));
  }
  return {
    code: (attempts.at(-1) ?? first).code,
    out: attempts.map((a) => a.out).join("\n"),
    recaps: attempts.map((a) => recap(a.out)),
  };
}

function exec(machine: string, cmd: string[]) {
  const hv = parse(readFileSync(join(dir, "host_vars", `${machine}.yml`), "utf8"));
  const domain = hv.instance_domain as string;
  return incusRaw(["exec", hv.instance_name, "--project", `${prefix}${domain}`, "--", ...cmd]);
}

describe.skipIf(!hasDebian)(
  "the README's main job: the example infra, applied with provisioning on anklume-debian12 without NAT (skipped only without Incus, the anklume-debian12 image, Ansible or the package caches; all required under CI)",
  () => {
    beforeAll(async () => {
      dir = makeWorkdir("anklume-example");
      base = await freeBase();
      const ctx = join(dir, "context");
      mkdirSync(ctx);
      write(join(ctx, "absolute_level"), `${level}\n`);
      write(join(ctx, "relative_level"), "0\n");
      write(join(ctx, "vm_nested"), "false\n");
      write(join(ctx, "yolo"), "false\n");
      const example = readFileSync(join(import.meta.dir, "..", "infra.example.yml"), "utf8")
        .replaceAll("10.100", base)
        .replace("project_name: my-workstation", `project_name: example-${u}`);
      write(join(dir, "infra.yml"), example);
      const env = { ANKLUME_CONTEXT_DIR: ctx };
      synced = await make(dir, ["sync"], env);
      const args = [
        "apply",
        `OS_IMAGE=${DEBIAN}`,
        "NAT=false",
        "SKIP_SNAPSHOT=1",
        `CONTEXT_DIR=${ctx}`,
      ];
      runs.first = await apply(args, env);
      runs.second = await apply(args, env);
    }, 1_500_000);

    afterAll(async () => {
      if (dir) await cleanupInfra(`${prefix}example-${u}`);
      if (dir) removeWorkdir(dir);
    }, 600_000);

    test("make sync accepts the example as shipped", () => {
      expect(synced?.code, synced?.out).toBe(0);
    });

    test("the first apply succeeds end to end; the VM is skipped with its warning on a host without KVM", async () => {
      const out = runs.first?.out ?? "";
      expect(runs.first?.code, out.slice(-4000)).toBe(0);
      const recaps = runs.first?.recaps ?? [];
      const hosts = recaps.at(-1) ?? {};
      for (const h of PROVISIONED) {
        expect(hosts[h], h).toBeDefined();
        expect(hosts[h]?.failed, h).toBe(0);
        const changed = recaps.reduce((n, r) => n + (r[h]?.changed ?? 0), 0);
        expect(changed, h).toBeGreaterThan(0);
      }
      const skipped =
        /sandbox-vm:\s+VM\s+not\s+created:\s+this\s+Incus\s+host\s+cannot\s+run\s+virtual\s+machines/;
      if (driverRunsVms(await serverDriver())) expect(out).not.toMatch(skipped);
      else expect(out).toMatch(skipped);
    });

    test("base_system ran everywhere: its packages, time zone and locale", async () => {
      for (const h of PROVISIONED) {
        const tz = await exec(h, ["cat", "/etc/timezone"]);
        expect(tz.stdout.trim(), h).toBe("Europe/Paris");
        // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax
        const pkg = await exec(h, ["dpkg-query", "-W", "-f=${Status}", "sudo"]);
        expect(pkg.stdout, h).toBe("install ok installed");
      }
      const loc = await exec("pro-dev", ["cat", "/etc/default/locale"]);
      expect(loc.stdout).toContain("LANG=en_US.UTF-8");
    });

    test("admin_bootstrap ran on the anklume domain only: Ansible and git there, not elsewhere", async () => {
      expect((await exec("anklume-instance", ["git", "--version"])).exitCode).toBe(0);
      expect((await exec("anklume-instance", ["test", "-d", "/run/incus"])).exitCode).toBe(0);
      expect((await exec("pro-dev", ["sh", "-c", "command -v git"])).exitCode).not.toBe(0);
    });

    test("a second apply reports changed=0 for every host", () => {
      const out = runs.second?.out ?? "";
      expect(runs.second?.code, out.slice(-4000)).toBe(0);
      const recaps = runs.second?.recaps ?? [];
      expect(Object.keys(recaps.at(-1) ?? {}).length).toBeGreaterThanOrEqual(PROVISIONED.length);
      for (const hosts of recaps)
        for (const [h, c] of Object.entries(hosts))
          expect(c.changed, `${h}\n${out.slice(-4000)}`).toBe(0);
    });
  },
);
