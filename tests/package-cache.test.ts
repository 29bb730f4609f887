/**
 * Packages without internet, for real: a Debian container (anklume-debian12)
 * on a bridge without NAT installs a package through the host package cache
 * (apt-cacher-ng, started by bootstrap.sh --dev) that roles/package_cache
 * points apt at, and pip and npm reach PyPI and the npm registry through the
 * host's PyPI cache (proxpi) and npm cache (verdaccio) that the same role
 * points them at; a second apply changes nothing; `package_cache: false`
 * removes the three files; a busybox machine with roles fails with one line
 * naming the image to use. Needs the caches running on this host (under CI
 * the bootstrap starts them).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { incusRaw } from "../lib/incus/client.ts";
import {
  NPM_CACHE_PORT,
  PACKAGE_CACHE_PORT,
  PYPI_CACHE_PORT,
} from "../lib/provision/package-cache.ts";
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
const PIP_CONF = "/etc/pip.conf";
const NPMRC = "/etc/npmrc";
let dir = "";
let infraId = "";
let gateway = "";
const runs: Record<string, { code: number; out: string }> = {};
/** The proxy file right after the first apply (later runs change it). */
let confAfterFirst = "";
let pipAfterFirst = "";
let npmAfterFirst = "";
/** pip and npm used inside the container after the first apply. */
const clients: Record<string, { exitCode: number; stdout: string; stderr: string }> = {};

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
  "packages without internet: apt, pip and npm through the host package caches (skipped only without an Incus daemon or the anklume-debian12 image; both required under CI)",
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
      pipAfterFirst = (await inDeb(["cat", PIP_CONF])).stdout;
      npmAfterFirst = (await inDeb(["cat", NPMRC])).stdout;
      // The clients from Debian, through the apt cache; then each through its own cache.
      clients.apt = await inDeb([
        "sh",
        "-c",
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv npm >/dev/null",
      ]);
      clients.pipDownload = await inDeb([
        "sh",
        "-c",
        "python3 -m venv /tmp/v && /tmp/v/bin/pip download --no-deps -d /tmp/dl six && ls /tmp/dl",
      ]);
      clients.pipInstall = await inDeb([
        "sh",
        "-c",
        "/tmp/v/bin/pip install six && /tmp/v/bin/python -c 'import six; print(six.__version__)'",
      ]);
      clients.npmView = await inDeb(["npm", "view", "is-number", "version"]);
      clients.npmInstall = await inDeb([
        "sh",
        "-c",
        "mkdir -p /tmp/np && cd /tmp/np && npm install --no-audit --no-fund is-number && node -e 'console.log(require(\"is-number\")(5))'",
      ]);
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

    // Matrix: PV-010
    test("pip and npm in an instance without NAT download and install through the host's PyPI and npm caches", () => {
      expect(runs.first?.code, runs.first?.out).toBe(0);
      expect(pipAfterFirst).toContain(`index-url = http://${gateway}:${PYPI_CACHE_PORT}/index/`);
      expect(pipAfterFirst).toContain(`trusted-host = ${gateway}`);
      expect(npmAfterFirst).toContain(`registry=http://${gateway}:${NPM_CACHE_PORT}/`);
      expect(clients.apt?.exitCode, clients.apt?.stderr).toBe(0);
      expect(clients.pipDownload?.exitCode, clients.pipDownload?.stderr).toBe(0);
      expect(clients.pipDownload?.stdout).toMatch(/six-[0-9.]+-py2\.py3-none-any\.whl/);
      // pip says where it looked: the cache on the gateway, nowhere else.
      expect(clients.pipDownload?.stdout).toContain(`http://${gateway}:${PYPI_CACHE_PORT}/index/`);
      expect(clients.pipInstall?.exitCode, clients.pipInstall?.stderr).toBe(0);
      expect(clients.pipInstall?.stdout.trim().split("\n").at(-1)).toMatch(/^1\.\d+\.\d+$/);
      expect(clients.npmView?.exitCode, clients.npmView?.stderr).toBe(0);
      expect(clients.npmView?.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
      expect(clients.npmInstall?.exitCode, clients.npmInstall?.stderr).toBe(0);
      expect(clients.npmInstall?.stdout.trim().split("\n").at(-1)).toBe("true");
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
    test("package_cache: false removes the apt, pip and npm files (changed), and the installed package stays", async () => {
      const out = runs.off?.out ?? "";
      expect(runs.off?.code, out).toBe(0);
      expect(out).toMatch(/changed: \[\S+-deb\]/);
      for (const f of [CONF, PIP_CONF, NPMRC]) {
        expect((await inDeb(["test", "-e", f])).exitCode, f).not.toBe(0);
      }
      expect((await inDeb(["jq", "--version"])).exitCode).toBe(0);
    });
  },
);
