/**
 * A throwaway network namespace for bench/guard.ts (no imports from tests/):
 * `ns` holds a veth uplink `up0` (host address + default route) whose gateway
 * `gw0` lives in a second namespace, so the guard runs under `ip netns exec`
 * without touching this machine's own interfaces, routes or nftables.
 */
import { $, type ProcessPromise } from "zx";

const q = $({ quiet: true, nothrow: true });

/** The guard script, by absolute path. */
export const GUARD_SCRIPT = new URL("../scripts/incus-guard.ts", import.meta.url).pathname;

async function must(p: ProcessPromise, what: string): Promise<void> {
  const r = await p;
  if (r.exitCode !== 0) throw new Error(`${what} failed: ${r.stderr}`);
}

/** Create the namespace pair; `uplink` is the host address with its prefix (`10.77.5.2/24`). */
export async function makeBenchNetns(
  uplink: string,
  gateway: string,
): Promise<{ ns: string; destroy(): Promise<void> }> {
  const tag = Math.random().toString(36).slice(2, 7);
  const ns = `agb-${tag}`;
  const gwNs = `agbg-${tag}`;
  const prefix = uplink.split("/")[1];
  const destroy = async () => {
    await q`ip netns delete ${ns}`;
    await q`ip netns delete ${gwNs}`;
  };
  try {
    await must(q`ip netns add ${ns}`, "ip netns add");
    await must(q`ip netns add ${gwNs}`, "ip netns add");
    const steps: string[][] = [
      ["link", "set", "lo", "up"],
      ["link", "add", "up0", "type", "veth", "peer", "name", "gw0", "netns", gwNs],
      ["addr", "add", uplink, "dev", "up0"],
      ["link", "set", "up0", "up"],
    ];
    for (const s of steps) await must(q`ip -n ${ns} ${s}`, `ip -n ${ns} ${s.join(" ")}`);
    await must(q`ip -n ${gwNs} addr add ${`${gateway}/${prefix}`} dev gw0`, "gateway address");
    await must(q`ip -n ${gwNs} link set gw0 up`, "gateway up");
    await must(q`ip -n ${gwNs} link set lo up`, "gateway lo");
    await must(q`ip -n ${ns} route add default via ${gateway} dev up0`, "default route");
  } catch (e) {
    await destroy();
    throw e;
  }
  return { ns, destroy };
}
