/**
 * Packages without internet, for real: a Debian container (anklume-debian12)
 * on a bridge without NAT installs a package through the host package cache
 * (apt-cacher-ng, started by bootstrap.sh --dev) that roles/package_cache
 * points apt at; a second apply changes nothing; `package_cache: false`
 * removes the proxy file; a busybox machine with roles fails with one line
 * naming the image to use. Needs the cache running on this host (under CI
 * the bootstrap starts it).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { incusRaw } from "../lib/incus/client.ts";
import { PACKAGE_CACHE_PORT } from "../lib/provision/package-cache.ts";
import {
  cleanupInfra,
  freeSubnets,
  make,
  makeWorkdir,
  recap,
  removeWorkdir,
  write,
} from "./apply-helpers.ts";
import { uniq } from "./helpers.ts";
import { DEBIAN, rolesOrSkip } from "./role-helpers.ts";

// Incus, the Debian image, Ansible and the package cache; each required under CI.
const hasDebian = await rolesOrSkip("package-cache");
const u = uniq();
const DEB = `kd${u}`;
const BOX = `kb${u}`;
const CONF = "/etc/apt/apt.conf.d/01anklume-package-cache";
let dir = "";
let infraId = "";
let gateway = "";
const runs: Record<string, { code: number; out: string }> = {};
/** The proxy file right after the first apply (later runs change it). */
let confAfterFirst = "";

function infra(sids: number[], cache: string): string {
  return `project_name: pc${u}
global:
  base_subnet: "10.234"
  default_os_image: ${DEBIAN}
  package_cache: ${cache}
domains:
  ${DEB}:
    subnet_id: ${sids[0]}
    ephemeral: true
    machines:
      ${u}-deb:
        roles: [install_jq]
  ${BOX}:
    subnet_id: ${sids[1]}
    ephemeral: true
    machines:
      ${u}-box:
        os_image: anklume-busybox
        roles: [install_jq]
`;
}

const APPLY = ["NAT=false", "SKIP_SNAPSHOT=1"];

async function inDeb(cmd: string[]) {
  const gv = parse(readFileSync(join(dir, "group_vars", `${DEB}.yml`), "utf8"));
  const hv = parse(readFileSync(join(dir, "host_vars", `${u}-deb.yml`), "utf8"));
  return incusRaw(["exec", hv.instance_name, "--project", gv.incus_project, "--", ...cmd]);
}

describe.skipIf(!hasDebian)(
  "packages without internet: apt through the host package cache (skipped only without an Incus daemon or the anklume-debian12 image; both required under CI)",
  () => {
    beforeAll(async () => {
      dir = makeWorkdir("anklume-package-cache");
      const sids = await freeSubnets("10.234", 2);
      mkdirSync(join(dir, "roles_custom", "install_jq", "tasks"), { recursive: true });
      write(
        join(dir, "roles_custom", "install_jq", "tasks", "main.yml"),
        `---
- name: Install jq | From the Debian mirror, through whatever apt is configured with
  ansible.builtin.apt:
    name: jq
    update_cache: true
    cache_valid_time: 3600
`,
      );
      write(join(dir, "infra.yml"), infra(sids, "true"));
      expect((await make(dir, ["sync"])).code).toBe(0);
      const gv = parse(readFileSync(join(dir, "group_vars", `${DEB}.yml`), "utf8"));
      gateway = gv.incus_network.gateway;
      infraId = `${(gv.incus_project as string).slice(0, -DEB.length)}pc${u}`;
      runs.first = await make(dir, ["apply-limit", `G=${DEB}`, ...APPLY]);
      confAfterFirst = (await inDeb(["cat", CONF])).stdout;
      runs.second = await make(dir, ["apply-limit", `G=${DEB}`, ...APPLY]);
      runs.box = await make(dir, ["apply-limit", `G=${BOX}`, ...APPLY]);
      write(join(dir, "infra.yml"), infra(sids, "false"));
      expect((await make(dir, ["sync"])).code).toBe(0);
      runs.off = await make(dir, ["apply-limit", `G=${DEB}`, ...APPLY]);
    }, 600_000);

    afterAll(async () => {
      if (infraId) await cleanupInfra(infraId);
      if (dir) removeWorkdir(dir);
    }, 120_000);

    // Matrix: PV-007
    test("apt in an instance without NAT installs a package through the cache on its bridge's gateway", async () => {
      expect(runs.first?.code, runs.first?.out).toBe(0);
      expect(confAfterFirst).toContain(
        `Acquire::http::Proxy "http://${gateway}:${PACKAGE_CACHE_PORT}";`,
      );
      const jq = await inDeb(["jq", "--version"]);
      expect(jq.exitCode, jq.stderr).toBe(0);
      expect(jq.stdout).toMatch(/^jq-/);
      // No way out but the cache: the bridge has no NAT and the instance no other route.
      const route = await inDeb(["ip", "route"]);
      expect(route.stdout).not.toMatch(/default via (?!.*\.254\b)/);
    });

    test("a second apply changes nothing", () => {
      expect(runs.second?.code, runs.second?.out).toBe(0);
      for (const [h, c] of Object.entries(recap(runs.second?.out ?? ""))) {
        expect(c.changed, `${h}\n${runs.second?.out}`).toBe(0);
      }
    });

    // Matrix: PV-2-002
    test("a machine with roles on the busybox image fails with one line naming the image to use", () => {
      const out = runs.box?.out ?? "";
      expect(runs.box?.code, out).not.toBe(0);
      const lines = out.split("\n").filter((l) => l.startsWith("[ERROR]"));
      expect(lines, out).toHaveLength(1);
      expect(lines[0]).toContain(`${u}-box runs anklume-busybox`);
      expect(lines[0]).toContain("OS_IMAGE=anklume-debian12");
      expect(out).not.toContain("apt-get: not found");
    });

    // Matrix: PV-2-001
    test("package_cache: false removes the proxy file (changed), and the installed package stays", async () => {
      const out = runs.off?.out ?? "";
      expect(runs.off?.code, out).toBe(0);
      expect(out).toMatch(/changed: \[\S+-deb\]/);
      const conf = await inDeb(["test", "-e", CONF]);
      expect(conf.exitCode).not.toBe(0);
      expect((await inDeb(["jq", "--version"])).exitCode).toBe(0);
    });
  },
);
