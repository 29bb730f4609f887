/**
 * Helpers for the provisioning-role tests (tests/role-*.test.ts): a Debian
 * container (anklume-debian12: python3 and systemd) on a test bridge without
 * NAT, apt pointed at the host's package cache (apt-cacher-ng on port 3142,
 * reached at the bridge's gateway), and one ansible-playbook run of a role
 * through the community.general.incus connection. Real daemon, real Ansible.
 */

import { expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { $ } from "zx";
import { incusRaw, incusRun } from "../lib/incus/client.ts";
import {
  HOST_CACHE_PORTS,
  NPM_CACHE_PORT,
  PACKAGE_CACHE_PORT,
  PYPI_CACHE_PORT,
} from "../lib/provision/package-cache.ts";
import { freeSubnets, recap } from "./apply-helpers.ts";
import { incusOrSkip, isCI } from "./helpers.ts";

export const REPO = resolve(import.meta.dir, "..");
export const DEBIAN = process.env.ANKLUME_TEST_DEBIAN_IMAGE ?? "anklume-debian12";
export const BUSYBOX = "anklume-busybox";
/** The venv bootstrap.sh makes (Ansible, and pip for the tests that build wheels). */
export const VENV_BIN = "/opt/anklume/venv/bin";

/** Fail under CI, warn and return false locally. */
function missing(suite: string, what: string): false {
  if (isCI()) throw new Error(`${suite}: ${what}, and CI=true requires it`);
  console.warn(`skipping ${suite}: ${what}`);
  return false;
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export function listening(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((res) => {
    const s = connect({ port, host });
    s.setTimeout(1000);
    s.once("connect", () => {
      s.destroy();
      res(true);
    });
    s.once("error", () => res(false));
    s.once("timeout", () => {
      s.destroy();
      res(false);
    });
  });
}

/**
 * True when the role tests can run: an Incus daemon, the Debian image,
 * ansible-playbook in the venv and the host's package caches (apt 3142,
 * PyPI 3141, npm 4873).
 */
export async function rolesOrSkip(suite: string, images: string[] = [DEBIAN]): Promise<boolean> {
  if (!(await incusOrSkip(suite))) return false;
  const aliases = (await incusRaw(["image", "alias", "list", "--format", "json"])).stdout;
  for (const img of images) {
    if (!aliases.includes(`"${img}"`)) {
      return missing(suite, `image ${img} is missing (bootstrap.sh --dev builds it)`);
    }
  }
  if ((await $({ nothrow: true, quiet: true })`test -x ${VENV_BIN}/ansible-playbook`).exitCode) {
    return missing(suite, `${VENV_BIN}/ansible-playbook is missing (bootstrap.sh installs it)`);
  }
  for (const port of HOST_CACHE_PORTS) {
    if (!(await listening(port))) {
      return missing(
        suite,
        `no package cache answers on port ${port} (apt-cacher-ng 3142, PyPI 3141, npm 4873; bootstrap.sh --dev starts them)`,
      );
    }
  }
  return true;
}

/** A test bridge without NAT and IPv6, on a free /24 under `base`. */
export interface TestBridge {
  name: string;
  /** e.g. "10.236.41" */
  prefix: string;
  gateway: string;
}

/** Create `names.length` bridges on free /24s under `base` (e.g. "10.236"), gateway .254. */
export async function createBridges(base: string, names: string[]): Promise<TestBridge[]> {
  const ids = await freeSubnets(base, names.length);
  const out: TestBridge[] = [];
  for (const [i, name] of names.entries()) {
    const prefix = `${base}.${ids[i]}`;
    await incusRun([
      "network",
      "create",
      name,
      `ipv4.address=${prefix}.254/24`,
      "ipv4.nat=false",
      "ipv6.address=none",
    ]);
    out.push({ name, prefix, gateway: `${prefix}.254` });
  }
  return out;
}

/**
 * Create and start a container from `image` with NICs on the given bridges
 * (eth0 first, each with an optional static DHCP lease) and the given
 * config; no profile but `default` (root disk).
 */
export async function launch(
  name: string,
  image: string,
  nics: { name: string; bridge: string; ip?: string }[],
  config: Record<string, string> = {},
): Promise<void> {
  const cfg = Object.entries(config).flatMap(([k, v]) => ["-c", `${k}=${v}`]);
  await incusRun(["init", image, name, "--profile", "default", ...cfg]);
  for (const nic of nics) {
    await incusRun([
      "config",
      "device",
      "add",
      name,
      nic.name,
      "nic",
      `network=${nic.bridge}`,
      `name=${nic.name}`,
      ...(nic.ip ? [`ipv4.address=${nic.ip}`] : []),
    ]);
  }
  await incusRun(["start", name]);
}

/** Wait until systemd in a Debian container says running (or degraded). */
export async function waitSystemd(name: string, seconds = 60): Promise<void> {
  for (let i = 0; i < seconds * 2; i++) {
    const r = await incusRaw(["exec", name, "--", "systemctl", "is-system-running"]);
    if (/^(running|degraded)/.test(r.stdout.trim())) return;
    await Bun.sleep(500);
  }
  throw new Error(`systemd in ${name} did not reach running in ${seconds} s`);
}

/**
 * Point apt inside the container at the host's package cache, as the
 * provisioning play does: the proxy at the bridge's gateway, and no
 * Valid-Until check (the mirror here serves a dated snapshot).
 */
export async function aptProxy(name: string, gateway: string): Promise<void> {
  await incusRun(["exec", name, "--", "sh", "-c", "cat > /etc/apt/apt.conf.d/01anklume-proxy"], {
    input: `Acquire::http::Proxy "http://${gateway}:${PACKAGE_CACHE_PORT}";\nAcquire::Check-Valid-Until "false";\n`,
  });
}

/**
 * apt, pip and npm inside the container through the host's caches, as
 * roles/package_cache writes them (/etc/pip.conf, /etc/npmrc).
 */
export async function useCaches(name: string, gateway: string): Promise<void> {
  await aptProxy(name, gateway);
  await incusRun(["exec", name, "--", "sh", "-c", "cat > /etc/pip.conf"], {
    input: `[global]\nindex-url = ${pypiIndex(gateway)}\ntrusted-host = ${gateway}\n`,
  });
  await incusRun(["exec", name, "--", "sh", "-c", "cat > /etc/npmrc"], {
    input: `registry=${npmRegistry(gateway)}\n`,
  });
}

/** The host's PyPI cache as seen from a bridge. */
export function pypiIndex(gateway: string): string {
  return `http://${gateway}:${PYPI_CACHE_PORT}/index/`;
}

/** The host's npm cache as seen from a bridge. */
export function npmRegistry(gateway: string): string {
  return `http://${gateway}:${NPM_CACHE_PORT}/`;
}

/** Run a shell command inside a container; never throws. */
export function sh(name: string, script: string, timeout?: string) {
  return incusRaw(["exec", name, "--", "sh", "-c", script], timeout ? { timeout } : {});
}

/** Wait until a shell condition holds in a container (30 s at most). */
export async function waitFor(name: string, cond: string): Promise<void> {
  for (let i = 0; i < 60; i++) {
    if ((await sh(name, cond)).exitCode === 0) return;
    await Bun.sleep(500);
  }
  const r = await sh(name, "ip -4 addr; ip route");
  throw new Error(`${name}: still not true after 30 s: ${cond}\n${r.stdout}`);
}

/** A playbook run: exit code and stdout+stderr together. */
export interface PlayRun {
  code: number;
  out: string;
  seconds: number;
}

/**
 * Run one role against containers of the default project through the
 * community.general.incus connection. The playbook is written into `dir`
 * (so `playbook_dir` is `dir`); `vars` become extra vars.
 */
export async function runRole(opts: {
  dir: string;
  hosts: string[];
  role: string;
  vars?: Record<string, unknown>;
  check?: boolean;
  project?: string;
}): Promise<PlayRun> {
  const playbook = join(opts.dir, `play-${opts.role}.yml`);
  writeFileSync(
    playbook,
    `---
- name: Test | Apply ${opts.role}
  hosts: all
  gather_facts: true
  vars:
    ansible_connection: community.general.incus
    ansible_user: root
    ansible_incus_project: ${opts.project ?? "default"}
    ansible_python_interpreter: /usr/bin/python3
  roles:
    - role: ${opts.role}
`,
  );
  const inventory = join(opts.dir, "hosts.yml");
  writeFileSync(
    inventory,
    JSON.stringify({ all: { hosts: Object.fromEntries(opts.hosts.map((h) => [h, {}])) } }),
  );
  const varsFile = join(opts.dir, `vars-${opts.role}.json`);
  writeFileSync(varsFile, JSON.stringify(opts.vars ?? {}));
  const started = performance.now();
  const r = await $({
    cwd: opts.dir,
    nothrow: true,
    quiet: true,
    env: {
      ...process.env,
      PATH: `${VENV_BIN}:${process.env.PATH}`,
      ANSIBLE_CONFIG: join(REPO, "ansible.cfg"),
      ANSIBLE_ROLES_PATH: join(REPO, "roles"),
      ANSIBLE_NOCOLOR: "1",
      ANSIBLE_FORCE_COLOR: "0",
    },
  })`ansible-playbook -i ${inventory} ${playbook} -e ${`@${varsFile}`} ${opts.check ? ["--check", "--diff"] : []}`;
  return {
    code: r.exitCode ?? 1,
    out: r.stdout + r.stderr,
    seconds: (performance.now() - started) / 1000,
  };
}

/** A temporary directory for playbooks; removed by `removeDir`. */
export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `${prefix}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Delete containers and bridges (in that order); never throws. */
export async function cleanup(containers: string[], bridges: string[]): Promise<void> {
  for (const c of containers) await incusRaw(["delete", c, "--force"]);
  for (const b of bridges) await incusRaw(["network", "delete", b]);
}

/** The `changed` count of `host` in a run's recap (-1 when the host is absent). */
export function changedOn(run: PlayRun, host: string): number {
  return recap(run.out)[host]?.changed ?? -1;
}

/** The four runs of a role's check, converge, idempotence sequence. */
export interface RoleSequence {
  /** Check mode on the machine before the role ever ran. */
  check: PlayRun;
  converge: PlayRun;
  /** The same converge again: must report changed=0. */
  again: PlayRun;
  /** Check mode on the converged machine: must report changed=0. */
  recheck: PlayRun;
}

/**
 * Run a role as every role test does (dev-sec's molecule sequence): check
 * mode on the fresh machine, converge, converge again, check mode again.
 * `afterCheck` runs between the first check and the converge, to read the
 * state the check must not have changed.
 */
export async function roleSequence(
  opts: Omit<Parameters<typeof runRole>[0], "check">,
  afterCheck?: () => Promise<void>,
): Promise<RoleSequence> {
  const check = await runRole({ ...opts, check: true });
  await afterCheck?.();
  const converge = await runRole(opts);
  const again = await runRole(opts);
  const recheck = await runRole({ ...opts, check: true });
  return { check, converge, again, recheck };
}

/** GET a URL from the host (the test process): status and body, or status 0 when nothing answers. */
export async function httpGet(url: string): Promise<{ status: number; body: string }> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    return { status: r.status, body: await r.text() };
  } catch {
    return { status: 0, body: "" };
  }
}

/**
 * The tests every role's sequence shares: check mode on the fresh machine
 * succeeds and reports changes; the converge succeeds; a second run and
 * check mode on the converged machine report changed=0 on `host`.
 */
export function expectRoleSequence(
  name: string,
  host: string,
  seq: () => RoleSequence | undefined,
): void {
  // Matrix: PV-011
  test(`${name}: check mode on the fresh machine succeeds and reports changes`, () => {
    const s = seq();
    expect(s?.check.code, s?.check.out).toBe(0);
    expect(changedOn(s?.check as PlayRun, host), s?.check.out).toBeGreaterThan(0);
  });
  test(`${name}: converge succeeds`, () => {
    const s = seq();
    console.log(`${name} converge: ${s?.converge.seconds.toFixed(1)} s`);
    expect(s?.converge.code, s?.converge.out).toBe(0);
  });
  test(`${name}: a second run reports changed=0`, () => {
    const s = seq();
    expect(s?.again.code, s?.again.out).toBe(0);
    expect(changedOn(s?.again as PlayRun, host), s?.again.out).toBe(0);
  });
  test(`${name}: check mode on the converged machine reports changed=0`, () => {
    const s = seq();
    expect(s?.recheck.code, s?.recheck.out).toBe(0);
    expect(changedOn(s?.recheck as PlayRun, host), s?.recheck.out).toBe(0);
  });
}
