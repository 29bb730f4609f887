/**
 * Test fixtures for incus-guard: a network namespace with a veth "uplink"
 * (host address + default route) whose gateway lives in a second namespace,
 * so the guard can be run with `ip netns exec` without ever touching this
 * machine's own interfaces, routes or nftables. Also builds the compiled
 * binary once per test run.
 */
import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { $, type ProcessPromise } from "zx";
import { overlaps, parseCidr } from "../lib/core/cidr.ts";
import { IpRouteSchema } from "../lib/guard/guard.ts";
import { ipJson } from "../lib/guard/kernel.ts";
import { incusRaw } from "../lib/incus/client.ts";
import { listNetworks } from "../lib/incus/objects.ts";
import { uniq } from "./helpers.ts";

const q = $({ quiet: true, nothrow: true });
/** The script, by absolute path, so tests do not depend on the working directory. */
export const GUARD_SCRIPT = new URL("../scripts/incus-guard.ts", import.meta.url).pathname;

/** A namespace pair: `ns` holds the uplink `up0`, `gwNs` the gateway end `gw0`. */
export interface GuardNetns {
  ns: string;
  gwNs: string;
  /** Address of the host on the uplink, e.g. `10.77.5.2`. */
  hostIp: string;
  gateway: string;
  /** Run a command inside `ns`; throws on failure. */
  ip(args: string[]): Promise<string>;
  /** Run `ip -json` inside `ns` and parse the output. */
  ipJson(args: string[]): Promise<unknown[]>;
  /** Names of the links in `ns`. */
  links(): Promise<string[]>;
  /** Create a bridge with one address in `ns`. */
  bridge(name: string, cidr: string): Promise<void>;
  destroy(): Promise<void>;
}

async function must(p: ProcessPromise, what: string): Promise<string> {
  const r = await p;
  if (r.exitCode !== 0) throw new Error(`${what} failed: ${r.stderr}`);
  return r.stdout;
}

/**
 * Create the namespaces. `uplink` is the host side address with its prefix
 * (`10.77.5.2/24`); the gateway takes `gateway` in the same network. With
 * `withUplink: false` the namespace has only loopback (no way out at all).
 */
export async function makeGuardNetns(
  uplink = "10.77.5.2/24",
  gateway = "10.77.5.1",
  withUplink = true,
): Promise<GuardNetns> {
  const tag = uniq();
  const ns = `agh-${tag}`;
  const gwNs = `agg-${tag}`;
  const [hostIp, prefix] = uplink.split("/");
  await must(q`ip netns add ${ns}`, "ip netns add");
  const inNs = (args: string[]) => must(q`ip -n ${ns} ${args}`, `ip -n ${ns} ${args.join(" ")}`);
  const fixture: GuardNetns = {
    ns,
    gwNs,
    hostIp: hostIp ?? "",
    gateway,
    ip: inNs,
    async ipJson(args) {
      return JSON.parse((await inNs(["-json", ...args])) || "[]") as unknown[];
    },
    async links() {
      const all = (await fixture.ipJson(["link", "show"])) as { ifname: string }[];
      return all.map((l) => l.ifname).sort();
    },
    async bridge(name, cidr) {
      // The address last: a running watcher may delete the bridge as soon as it has one.
      await inNs(["link", "add", name, "type", "bridge"]);
      await inNs(["link", "set", name, "up"]);
      await inNs(["addr", "add", cidr, "dev", name]);
    },
    async destroy() {
      await q`ip netns delete ${ns}`;
      await q`ip netns delete ${gwNs}`;
    },
  };
  try {
    await inNs(["link", "set", "lo", "up"]);
    if (withUplink) {
      await must(q`ip netns add ${gwNs}`, "ip netns add");
      await inNs(["link", "add", "up0", "type", "veth", "peer", "name", "gw0", "netns", gwNs]);
      await inNs(["addr", "add", uplink, "dev", "up0"]);
      await inNs(["link", "set", "up0", "up"]);
      await must(q`ip -n ${gwNs} addr add ${`${gateway}/${prefix}`} dev gw0`, "gateway address");
      await must(q`ip -n ${gwNs} link set gw0 up`, "gateway up");
      await must(q`ip -n ${gwNs} link set lo up`, "gateway lo");
      await inNs(["route", "add", "default", "via", gateway, "dev", "up0"]);
    }
  } catch (e) {
    await fixture.destroy();
    throw e;
  }
  return fixture;
}

/** The default route of the namespace, or null. */
export async function defaultRoute(
  n: GuardNetns,
): Promise<{ gateway?: string; dev?: string } | null> {
  const routes = (await n.ipJson(["-4", "route", "show", "default"])) as {
    gateway?: string;
    dev?: string;
  }[];
  return routes[0] ?? null;
}

let built: { dir: string; bin: string } | undefined;

/** Compile `dist`-style binary once per test process into a temporary directory. */
export async function guardBinary(): Promise<string> {
  if (built) return built.bin;
  const dir = mkdtempSync(join(tmpdir(), "anklume-guard-bin-"));
  const bin = join(dir, "incus-guard");
  const r = await q`bun build --compile ${GUARD_SCRIPT} --outfile ${bin}`;
  if (r.exitCode !== 0) throw new Error(`bun build --compile failed: ${r.stderr}`);
  built = { dir, bin };
  return bin;
}

/** Delete the compiled binary's directory. */
export function removeGuardBinary(): void {
  if (built) rmSync(built.dir, { recursive: true, force: true });
  built = undefined;
}

/** How to run the guard: the script under Bun, or the compiled binary. */
export async function guardCommand(kind: "script" | "binary"): Promise<string[]> {
  return kind === "script" ? ["bun", GUARD_SCRIPT] : [await guardBinary()];
}

/** Run the guard inside a namespace, with extra environment variables; never throws. */
export async function runGuard(
  cmd: string[],
  ns: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const r = await $({
    quiet: true,
    nothrow: true,
    env: { ...process.env, ...env },
  })`ip netns exec ${ns} ${cmd} ${args}`.timeout("60s");
  return { exitCode: r.exitCode ?? 1, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Run `body` (the statements of an async function) in a child bun inside
 * namespace `ns`, so the library's `ip` calls see only that namespace. Each
 * entry of `imports` is a module path, imported as `* as <name>`; `log` is a
 * GuardLog that records `[level, message]` pairs in `lines` (levels: info,
 * warn, error, note). Returns what `body` returns, through JSON.
 */
export async function inNetns<T>(
  ns: string,
  imports: Record<string, string>,
  body: string,
  env: Record<string, string> = {},
): Promise<T> {
  const head = Object.entries(imports)
    .map(([name, path]) => `import * as ${name} from ${JSON.stringify(path)};`)
    .join("\n");
  const code = `${head}
const lines = [];
const log = { line: (m, level = "info") => lines.push([level, m]), note: (m) => lines.push(["note", m]) };
const out = await (async () => { ${body} })();
process.stdout.write(JSON.stringify(out ?? null));`;
  const r = await $({
    quiet: true,
    nothrow: true,
    env: { ...process.env, ...env },
  })`ip netns exec ${ns} ${process.execPath} -e ${code}`.timeout("60s");
  if (r.exitCode !== 0) throw new Error(`child in ${ns} failed (exit ${r.exitCode}): ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** The absolute path of a module of lib/guard, for `inNetns`. */
export function guardModule(name: string): string {
  return realpathSync(new URL(`../lib/guard/${name}.ts`, import.meta.url).pathname);
}

/** Namespaces of a test file not deleted yet: a test that times out never reaches its `finally`. */
const alive = new Set<GuardNetns>();

/** Delete every namespace `withNetns` left behind; call it from `afterAll`. */
export async function destroyLeftNetns(): Promise<void> {
  for (const n of alive) await n.destroy();
  alive.clear();
}

/** A fresh namespace pair for one test (uplink 10.77.5.2/24 by default), deleted when it ends. */
export async function withNetns<T>(
  fn: (n: GuardNetns) => Promise<T>,
  uplink = "10.77.5.2/24",
  gateway = "10.77.5.1",
  withUplink = true,
): Promise<T> {
  const n = await makeGuardNetns(uplink, gateway, withUplink);
  alive.add(n);
  try {
    return await fn(n);
  } finally {
    await n.destroy();
    alive.delete(n);
  }
}

/**
 * A /24 in 10.200.0.0/13 (as "10.x.y") that overlaps no route of this
 * machine and no Incus network, for a test bridge that a namespace's uplink
 * then shares.
 */
export async function freeTestSubnet(): Promise<string> {
  const used = await listNetworks();
  const routes = await ipJson(["-4", "route", "show", "table", "all"], IpRouteSchema);
  const taken = [
    ...used.map((u) => parseCidr(u.config["ipv4.address"] ?? "")),
    ...routes.map((r) => parseCidr(r.dst.includes("/") ? r.dst : `${r.dst}/32`)),
  ].filter((c) => c !== null);
  for (let i = 0; i < 200; i++) {
    const candidate = `10.${200 + Math.floor(Math.random() * 8)}.${Math.floor(Math.random() * 250)}`;
    const c = parseCidr(`${candidate}.0/24`);
    if (c && !taken.some((t) => overlaps(t, c))) return candidate;
  }
  throw new Error("no free /24 in 10.200.0.0/13 for the test bridge");
}

/**
 * Create a managed Incus bridge (no NAT, no IPv6) at `${subnet}.1/24`;
 * returns a function that deletes it (and checks it is gone, once more if not).
 */
export async function incusTestBridge(name: string, subnet: string): Promise<() => Promise<void>> {
  const created = await incusRaw(
    [
      "network",
      "create",
      name,
      `ipv4.address=${subnet}.1/24`,
      "ipv4.nat=false",
      "ipv6.address=none",
    ],
    { input: "\n" },
  );
  if (created.exitCode !== 0) throw new Error(`incus network create ${name}: ${created.stderr}`);
  return async () => {
    for (let i = 0; i < 2; i++) {
      if ((await incusRaw(["network", "show", name])).exitCode !== 0) return;
      await incusRaw(["network", "delete", name]);
    }
  };
}
