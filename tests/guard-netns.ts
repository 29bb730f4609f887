/**
 * Test fixtures for incus-guard: a network namespace with a veth "uplink"
 * (host address + default route) whose gateway lives in a second namespace,
 * so the guard can be run with `ip netns exec` without ever touching this
 * machine's own interfaces, routes or nftables. Also builds the compiled
 * binary once per test run.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { $, type ProcessPromise } from "zx";
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

/** Run the guard inside a namespace; never throws. */
export async function runGuard(
  cmd: string[],
  ns: string,
  args: string[],
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const r = await q`ip netns exec ${ns} ${cmd} ${args}`.timeout("60s");
  return { exitCode: r.exitCode ?? 1, stdout: r.stdout, stderr: r.stderr };
}
