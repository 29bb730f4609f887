/**
 * incus-guard's kernel side: every call to `ip` (read links, routes and
 * neighbours as JSON, delete a bridge, restore the default route) and the
 * event-driven bridge watcher fed by `ip monitor` (netlink), which reacts
 * within milliseconds and sleeps on a pipe when nothing happens.
 */
import { AsyncResource } from "node:async_hooks";
import { createSocket } from "node:dgram";
import { createInterface } from "node:readline";
import * as v from "valibot";
import { $, type ProcessPromise } from "zx";
import type { Cidr } from "../core/cidr.ts";
import { formatCidr } from "../core/cidr.ts";
import {
  type BridgeConflict,
  findBridgeConflicts,
  type IpAddrLink,
  IpAddrLinkSchema,
  IpAddrSchema,
  IpNeighSchema,
  IpRouteSchema,
  neighbourVerdict,
  overlapping,
  parseMonitorLine,
  pickDefaultRoute,
  type Uplink,
} from "./guard.ts";

const ipq = $({ quiet: true, nothrow: true });

/** Run `ip` with arguments; never throws (check the result). */
export async function ip(args: string[]): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  const r = await ipq`ip ${args}`.timeout("10s");
  return { ok: r.exitCode === 0, stdout: r.stdout, stderr: r.stderr.trim() };
}

/** Run `ip -json ...` and parse it through a schema; throws with the command on failure. */
export async function ipJson<S extends v.GenericSchema>(
  args: string[],
  schema: S,
): Promise<v.InferOutput<S>> {
  const r = await ip(["-json", ...args]);
  if (!r.ok) throw new Error(`ip -json ${args.join(" ")} failed: ${r.stderr}`);
  const parsed = v.safeParse(schema, JSON.parse(r.stdout || "[]"));
  if (!parsed.success)
    throw new Error(`ip -json ${args.join(" ")}: unexpected JSON: ${parsed.issues[0].message}`);
  return parsed.output;
}

/** Every link with its addresses and kind (`ip -json -details addr show`). */
export function readLinks(): Promise<IpAddrLink[]> {
  return ipJson(["-details", "addr", "show"], IpAddrSchema);
}

/** The default IPv4 route's device and gateway, or null when there is no default route. */
export async function readDefaultRoute(): Promise<Uplink | null> {
  return pickDefaultRoute(await ipJson(["-4", "route", "show", "default"], IpRouteSchema));
}

/** Delete a link; returns the error text, or null on success. */
export async function deleteLink(ifname: string): Promise<string | null> {
  const r = await ip(["link", "delete", "dev", ifname]);
  return r.ok ? null : r.stderr;
}

/** Put the default route back (`ip route replace`, idempotent); returns the error text or null. */
export async function restoreDefaultRoute(
  up: Uplink & { gateway: string },
): Promise<string | null> {
  const r = await ip(["-4", "route", "replace", "default", "via", up.gateway, "dev", up.dev]);
  return r.ok ? null : r.stderr;
}

function sendProbe(gateway: string): Promise<void> {
  return new Promise((resolve) => {
    const sock = createSocket("udp4");
    sock.on("error", () => {
      sock.close();
      resolve();
    });
    // Port 9 is "discard": the datagram only makes the kernel resolve the gateway's address.
    sock.send(Buffer.from("incus-guard"), 9, gateway, () => {
      sock.close();
      resolve();
    });
  });
}

/**
 * Does the gateway answer? Checked at the link layer: drop its neighbour
 * entry, send one datagram, and wait for the kernel to mark it REACHABLE
 * (works where ICMP is filtered and needs no `ping`). On links without ARP
 * the answer is "unknown".
 */
export async function gatewayAnswers(
  up: Uplink & { gateway: string },
  timeoutMs = 3000,
): Promise<"answered" | "failed" | "unknown"> {
  // `nud all`: by default `ip neigh show` hides NOARP and PERMANENT entries,
  // the very states that mean "a link without ARP".
  const query = ["neigh", "show", "to", up.gateway, "dev", up.dev, "nud", "all"];
  const before = await ipJson(query, IpNeighSchema).catch(() => []);
  if (neighbourVerdict(before[0]?.state ?? []) === "answered") return "answered";
  if (neighbourVerdict(before[0]?.state ?? []) === "unknown") return "unknown";
  await ip(["neigh", "delete", up.gateway, "dev", up.dev]);
  const deadline = Date.now() + timeoutMs;
  let nextProbe = 0;
  while (Date.now() < deadline) {
    if (Date.now() >= nextProbe) {
      await sendProbe(up.gateway);
      nextProbe = Date.now() + 1000;
    }
    await new Promise((r) => setTimeout(r, 20));
    const now = await ipJson(query, IpNeighSchema).catch(() => []);
    const verdict = neighbourVerdict(now[0]?.state ?? []);
    if (verdict === "answered" || verdict === "unknown") return verdict;
  }
  return "failed";
}

/** An array that keeps nothing: zx's output store for a stream read as it comes. */
class Discard<T> extends Array<T> {
  override push(..._items: T[]): number {
    return 0;
  }
}

/** What the watcher needs: which device is the uplink, which networks are the host's, what to do on a conflict. */
export interface WatchOptions {
  uplinkDev: string;
  /** The uplink's networks; the watcher adds addresses the uplink gains while it runs. */
  hostNets: Cidr[];
  onConflict: (c: BridgeConflict) => Promise<void>;
  onError?: (message: string) => void;
}

/**
 * Watches links and addresses through `ip monitor` and calls `onConflict`
 * once for every bridge that gets an address overlapping a host network,
 * including those present before it started.
 */
export class BridgeWatcher {
  private proc: ProcessPromise | null = null;
  /** ifindex -> is it a bridge (undefined: not known yet). */
  private readonly kinds = new Map<number, boolean>();
  private readonly handled = new Set<string>();
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly opts: WatchOptions) {}

  /** Subscribe to netlink events, then scan what exists; resolves when the watcher is armed. */
  async start(): Promise<void> {
    // The lines are read from the stream; zx must not also keep them all in
    // memory for the whole life of a long-running `watch`.
    const store = {
      stdout: new Discard<string | Buffer>(),
      stderr: [],
      stdall: new Discard<string | Buffer>(),
    };
    this.proc = $({ quiet: true, nothrow: true, store })`ip -oneline -details monitor link address`;
    const lines = createInterface({ input: this.proc.stdout });
    // zx keeps a command's options in an AsyncLocalStorage context, and stream
    // events run in the monitor's context: unbound, every `ip` call made from
    // the handler would inherit the discarding store above and read nothing.
    lines.on(
      "line",
      AsyncResource.bind((line: string) => this.track(this.onLine(line))),
    );
    // A bridge created between spawning the monitor and its subscription is
    // caught by one of the two scans; after that the events carry everything.
    await this.scan();
    await new Promise((r) => setTimeout(r, 100));
    await this.scan();
  }

  /** Stop watching; waits for deletions in progress. */
  async stop(): Promise<void> {
    if (this.proc) {
      this.proc.kill();
      await this.proc.catch(() => undefined);
      this.proc = null;
    }
    await this.settled();
  }

  /** Wait until every reaction started so far has finished. */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  /** Read every link once and react to the conflicts found. */
  async scan(): Promise<void> {
    let links: IpAddrLink[];
    try {
      links = await readLinks();
    } catch (e) {
      this.opts.onError?.((e as Error).message);
      return;
    }
    for (const l of links) this.kinds.set(l.ifindex, l.linkinfo?.info_kind === "bridge");
    for (const c of findBridgeConflicts(links, this.opts.uplinkDev, this.opts.hostNets))
      this.react(c);
  }

  private track(p: Promise<void>): void {
    this.pending.add(p);
    p.finally(() => this.pending.delete(p));
  }

  private react(c: BridgeConflict): void {
    const key = `${c.ifname}/${c.network}`;
    if (this.handled.has(key)) return;
    this.handled.add(key);
    this.track(
      this.opts
        .onConflict(c)
        .catch((e) => this.opts.onError?.((e as Error).message))
        .finally(() => {
          this.handled.delete(key);
        }),
    );
  }

  private async isBridge(ifindex: number, ifname: string): Promise<boolean> {
    const known = this.kinds.get(ifindex);
    if (known !== undefined) return known;
    const r = await ip(["-json", "-details", "link", "show", "dev", ifname]);
    if (!r.ok) return false;
    const parsed = v.safeParse(IpAddrSchema, JSON.parse(r.stdout || "[]"));
    const link = parsed.success ? parsed.output[0] : undefined;
    const bridge =
      link !== undefined && v.is(IpAddrLinkSchema, link) && link.linkinfo?.info_kind === "bridge";
    this.kinds.set(ifindex, bridge);
    return bridge;
  }

  private async onLine(line: string): Promise<void> {
    const ev = parseMonitorLine(line);
    if (ev.kind === "link") {
      if (ev.bridge === null) return; // a bridge-port event: says nothing about the link itself
      if (ev.deleted) this.kinds.delete(ev.ifindex);
      else this.kinds.set(ev.ifindex, ev.bridge);
      return;
    }
    if (ev.kind !== "addr" || ev.deleted) return;
    if (ev.ifname === this.opts.uplinkDev) {
      // A new address on the uplink widens what must be protected.
      const known = this.opts.hostNets.some(
        (h) => h.base === ev.cidr.base && h.prefix === ev.cidr.prefix,
      );
      if (!known) {
        this.opts.hostNets.push(ev.cidr);
        await this.scan();
      }
      return;
    }
    const host = overlapping(ev.cidr, this.opts.hostNets);
    if (!host) return;
    if (!(await this.isBridge(ev.ifindex, ev.ifname))) return;
    this.react({ ifname: ev.ifname, network: formatCidr(ev.cidr), host: formatCidr(host) });
  }
}
