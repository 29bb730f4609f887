/**
 * lib/guard/kernel.ts against the real kernel. Calls that only read or fail
 * run here; everything that reads or changes links, routes and neighbours runs
 * in a child `bun` inside a network namespace of the test (tests/guard-netns.ts:
 * a veth uplink `up0` whose gateway lives in a second namespace), so this
 * machine's own interfaces and routes are never touched. Each test builds and
 * deletes its own namespaces.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { realpathSync } from "node:fs";
import process from "node:process";
import * as v from "valibot";
import { destroyLeftNetns, inNetns, withNetns } from "../../tests/guard-netns.ts";
import { netnsOrSkip } from "../../tests/helpers.ts";
import type { BridgeConflict, IpAddrLink, Uplink } from "./guard.ts";
import { ip, ipJson } from "./kernel.ts";

const KERNEL = realpathSync(new URL("./kernel.ts", import.meta.url).pathname);
const CIDR = realpathSync(new URL("../core/cidr.ts", import.meta.url).pathname);

/** Run `body` with `k` (the kernel module) in a child bun inside namespace `ns`. */
const inNs = <T>(ns: string, body: string) => inNetns<T>(ns, { k: KERNEL }, body);

afterAll(destroyLeftNetns);

/** Poll `check` every 50 ms until it is true or `ms` have passed; returns the last answer. */
async function until(check: () => Promise<boolean> | boolean, ms = 15_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await Bun.sleep(50);
  }
  return check();
}

describe("ip() and ipJson(), no namespace needed", () => {
  test("ip() reports success with stdout, failure with ok=false and the trimmed stderr", async () => {
    const good = await ip(["link", "show", "dev", "lo"]);
    expect(good.ok).toBe(true);
    expect(good.stdout).toMatch(/^1: lo: <LOOPBACK/);
    expect(good.stderr).toBe("");
    const bad = await ip(["link", "show", "dev", "nope0"]);
    expect(bad).toEqual({ ok: false, stdout: "", stderr: 'Device "nope0" does not exist.' });
  });

  test("ipJson() parses through the schema, and names the command when ip fails or the JSON is not the expected shape", async () => {
    const lo = await ipJson(
      ["link", "show", "dev", "lo"],
      v.array(v.object({ ifname: v.string(), ifindex: v.number() })),
    );
    expect(lo).toEqual([{ ifname: "lo", ifindex: 1 }]);
    await expect(ipJson(["link", "show", "dev", "nope0"], v.array(v.unknown()))).rejects.toThrow(
      'ip -json link show dev nope0 failed: Device "nope0" does not exist.',
    );
    await expect(
      ipJson(["link", "show", "dev", "lo"], v.array(v.object({ ifname: v.number() }))),
    ).rejects.toThrow("ip -json link show dev lo: unexpected JSON: Invalid type");
  });
});

const canNetns = await netnsOrSkip("lib/guard/kernel.test.ts");

/** Each child bun starts in ~0.3 s and a test runs up to a dozen of them. */
const SLOW = 60_000;

describe.skipIf(!canNetns)(
  "links, routes and neighbours in a namespace (skipped only without root; required under CI)",
  () => {
    test(
      "readLinks() sees every link with its kind and IPv4 addresses",
      () =>
        withNetns(async (n) => {
          await n.bridge("br0", "10.50.0.1/24");
          const links = await inNs<IpAddrLink[]>(n.ns, "return k.readLinks();");
          const by = new Map(links.map((l) => [l.ifname, l]));
          expect([...by.keys()].sort()).toEqual(["br0", "lo", "up0"]);
          expect(by.get("br0")?.linkinfo?.info_kind).toBe("bridge");
          expect(by.get("up0")?.linkinfo?.info_kind).toBe("veth");
          expect(by.get("lo")?.linkinfo).toBeUndefined();
          const v4 = (name: string) =>
            by
              .get(name)
              ?.addr_info.filter((a) => a.family === "inet")
              .map((a) => `${a.local}/${a.prefixlen}`);
          expect(v4("br0")).toEqual(["10.50.0.1/24"]);
          expect(v4("up0")).toEqual(["10.77.5.2/24"]);
          expect(v4("lo")).toEqual(["127.0.0.1/8"]);
        }),
      SLOW,
    );

    test(
      "readDefaultRoute() gives the lowest-metric default route, null when there is none",
      () =>
        withNetns(async (n) => {
          const read = () => inNs<Uplink | null>(n.ns, "return k.readDefaultRoute();");
          expect(await read()).toEqual({ dev: "up0", gateway: "10.77.5.1" });
          // A second way out with a lower metric wins; the one with a higher metric loses.
          await n.ip(["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
          await n.ip(["addr", "add", "10.66.0.2/24", "dev", "v0"]);
          await n.ip(["link", "set", "v0", "up"]);
          await n.ip(["route", "del", "default"]);
          await n.ip([
            "route",
            "add",
            "default",
            "via",
            "10.77.5.1",
            "dev",
            "up0",
            "metric",
            "100",
          ]);
          await n.ip(["route", "add", "default", "via", "10.66.0.1", "dev", "v0", "metric", "5"]);
          expect(await read()).toEqual({ dev: "v0", gateway: "10.66.0.1" });
          await n.ip(["route", "del", "default", "dev", "v0"]);
          expect(await read()).toEqual({ dev: "up0", gateway: "10.77.5.1" });
          // A default route straight on a link, without a gateway.
          await n.ip(["route", "del", "default"]);
          await n.ip(["route", "add", "default", "dev", "up0"]);
          expect(await read()).toEqual({ dev: "up0", gateway: null });
          await n.ip(["route", "del", "default"]);
          expect(await read()).toBeNull();
        }),
      SLOW,
    );

    test(
      "readDefaultRoute() is null in a namespace with nothing but loopback",
      () =>
        withNetns(
          async (n) => {
            expect(await inNs(n.ns, "return k.readDefaultRoute();")).toBeNull();
            expect(await n.links()).toEqual(["lo"]);
          },
          "10.77.5.2/24",
          "10.77.5.1",
          false,
        ),
      SLOW,
    );

    test(
      "deleteLink() deletes a bridge and returns null; a missing link gives ip's error",
      () =>
        withNetns(async (n) => {
          await n.bridge("brx", "10.50.0.1/24");
          expect(await inNs(n.ns, 'return k.deleteLink("brx");')).toBeNull();
          expect(await n.links()).toEqual(["lo", "up0"]);
          expect(await inNs(n.ns, 'return k.deleteLink("brx");')).toBe('Cannot find device "brx"');
        }),
      SLOW,
    );

    test(
      "restoreDefaultRoute() puts a lost default route back, idempotently; a bad device gives ip's error",
      () =>
        withNetns(async (n) => {
          await n.ip(["route", "del", "default"]);
          expect(await inNs(n.ns, "return k.readDefaultRoute();")).toBeNull();
          const restore = 'return k.restoreDefaultRoute({ dev: "up0", gateway: "10.77.5.1" });';
          expect(await inNs(n.ns, restore)).toBeNull();
          expect(await inNs(n.ns, restore)).toBeNull();
          const routes = await n.ipJson(["-4", "route", "show", "default"]);
          expect(routes).toEqual([
            expect.objectContaining({ dst: "default", gateway: "10.77.5.1", dev: "up0" }),
          ]);
          expect(
            await inNs(
              n.ns,
              'return k.restoreDefaultRoute({ dev: "nope0", gateway: "10.77.5.1" });',
            ),
          ).toBe('Cannot find device "nope0"');
          expect(await n.ipJson(["-4", "route", "show", "default"])).toEqual(routes);
        }),
      SLOW,
    );

    test(
      "gatewayAnswers(): a live gateway answers, an absent one fails, a link without ARP is unknown",
      () =>
        withNetns(async (n) => {
          const ask = (dev: string, gateway: string, ms = 3000) =>
            inNs<string>(
              n.ns,
              `return k.gatewayAnswers(${JSON.stringify({ dev, gateway })}, ${ms});`,
            );
          expect(await ask("up0", "10.77.5.1")).toBe("answered");
          // Nobody holds 10.77.5.99 on the uplink: ARP gets no reply.
          expect(await ask("up0", "10.77.5.99", 1500)).toBe("failed");
          // `arp off` gives the link NOARP: its neighbours are never probed.
          await n.ip(["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
          await n.ip(["link", "set", "v0", "arp", "off"]);
          await n.ip(["addr", "add", "10.66.0.2/24", "dev", "v0"]);
          await n.ip(["link", "set", "v0", "up"]);
          await n.ip(["link", "set", "v1", "up"]);
          expect(await ask("v0", "10.66.0.1")).toBe("unknown");
          // A permanent entry is not probed either.
          await n.ip(["neigh", "add", "10.77.5.50", "lladdr", "02:00:00:00:00:50", "dev", "up0"]);
          expect(await ask("up0", "10.77.5.50")).toBe("unknown");
        }),
      SLOW,
    );
  },
);

/** What the watcher child prints, one JSON object a line. */
type WatchEvent =
  | { armed: true }
  | { conflict: BridgeConflict; deleteError: string | null }
  | { error: string }
  | { stopped: true };

/**
 * A BridgeWatcher in a child bun inside `ns`, with `up0` as uplink and
 * 10.77.5.0/24 as host network. Every conflict is deleted (as incus-guard
 * does) and reported; "stop" on stdin stops it, and the child must then exit
 * by itself (nothing left running, `ip monitor` included).
 */
function spawnWatcher(ns: string) {
  const code = `import { BridgeWatcher, deleteLink } from ${JSON.stringify(KERNEL)};
import { parseCidr } from ${JSON.stringify(CIDR)};
const say = (o) => process.stdout.write(JSON.stringify(o) + "\\n");
const w = new BridgeWatcher({
  uplinkDev: "up0",
  hostNets: [parseCidr("10.77.5.0/24")],
  onConflict: async (conflict) => say({ conflict, deleteError: await deleteLink(conflict.ifname) }),
  onError: (error) => say({ error }),
});
await w.start();
say({ armed: true });
for await (const line of console) if (line.trim() === "stop") break;
await w.stop();
say({ stopped: true });`;
  const child = Bun.spawn(["ip", "netns", "exec", ns, process.execPath, "-e", code], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  const events: WatchEvent[] = [];
  const reading = (async () => {
    let buf = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl = buf.indexOf("\n");
      while (nl >= 0) {
        events.push(JSON.parse(buf.slice(0, nl)) as WatchEvent);
        buf = buf.slice(nl + 1);
        nl = buf.indexOf("\n");
      }
    }
  })();
  const stderr = new Response(child.stderr).text();
  return {
    events,
    conflicts: () =>
      events
        .flatMap((e) => ("conflict" in e ? [e] : []))
        .sort((a, b) => a.conflict.ifname.localeCompare(b.conflict.ifname)),
    async stop(): Promise<{ exitCode: number | null; stderr: string }> {
      child.stdin.write("stop\n");
      await child.stdin.end();
      const exited = await Promise.race([child.exited, Bun.sleep(15_000).then(() => null)]);
      if (exited === null) child.kill();
      await reading;
      return { exitCode: exited, stderr: await stderr };
    },
    kill: () => child.kill(),
  };
}

describe.skipIf(!canNetns)(
  "BridgeWatcher on real netlink events in a namespace (skipped only without root; required under CI)",
  () => {
    test(
      "deletes overlapping bridges present at start and created later, follows new uplink addresses, leaves the rest, and stops cleanly",
      () =>
        withNetns(async (n) => {
          // Before the watcher: one conflicting bridge, one harmless, one that
          // conflicts only once the uplink gains 10.88.0.2/24, and a veth (not a
          // bridge) inside the host network.
          await n.bridge("brold", "10.77.5.100/24");
          await n.bridge("brok", "10.99.0.1/24");
          await n.bridge("brlater", "10.88.0.1/24");
          await n.ip(["link", "add", "ve0", "type", "veth", "peer", "name", "ve1"]);
          await n.ip(["addr", "add", "10.77.5.200/24", "dev", "ve0"]);
          const w = spawnWatcher(n.ns);
          try {
            expect(await until(() => w.events.some((e) => "armed" in e))).toBe(true);
            expect(await until(async () => !(await n.links()).includes("brold"))).toBe(true);
            // After start: netlink events only. A /25 inside the host network, a
            // /16 around it, a veth in it, and a harmless bridge.
            await n.bridge("brnew", "10.77.5.129/25");
            await n.bridge("brwide", "10.77.0.1/16");
            await n.ip(["addr", "add", "10.77.5.201/24", "dev", "ve1"]);
            await n.bridge("brok2", "10.98.0.1/24");
            expect(
              await until(async () => {
                const l = await n.links();
                return !l.includes("brnew") && !l.includes("brwide");
              }),
            ).toBe(true);
            // The uplink gains a network: the bridge already in it now conflicts.
            await n.ip(["addr", "add", "10.88.0.2/24", "dev", "up0"]);
            expect(await until(async () => !(await n.links()).includes("brlater"))).toBe(true);
          } finally {
            const end = await w.stop();
            expect(end.stderr).toBe("");
            expect(end.exitCode).toBe(0);
          }
          expect(w.events.at(-1)).toEqual({ stopped: true });
          expect(w.events.filter((e) => "error" in e)).toEqual([]);
          expect(w.conflicts()).toEqual([
            {
              conflict: { ifname: "brlater", network: "10.88.0.0/24", host: "10.88.0.0/24" },
              deleteError: null,
            },
            {
              conflict: { ifname: "brnew", network: "10.77.5.128/25", host: "10.77.5.0/24" },
              deleteError: null,
            },
            {
              conflict: { ifname: "brold", network: "10.77.5.0/24", host: "10.77.5.0/24" },
              deleteError: null,
            },
            {
              conflict: { ifname: "brwide", network: "10.77.0.0/16", host: "10.77.5.0/24" },
              deleteError: null,
            },
          ]);
          expect(await n.links()).toEqual(["brok", "brok2", "lo", "up0", "ve0", "ve1"]);
        }),
      60_000,
    );
  },
);
