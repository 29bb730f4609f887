/**
 * lib/guard/incus.ts against the real Incus daemon: bridges this file creates
 * (unique names, a /24 that overlaps no route of this machine, no NAT, no
 * IPv6) and deletes. The "host networks" handed to incusConflicts are plain
 * arguments, so nothing of this machine's own network is involved.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import process from "node:process";
import { incusOrSkip, uniq } from "../../tests/helpers.ts";
import { type Cidr, formatIpv4, overlaps, parseCidr } from "../core/cidr.ts";
import { incusRaw, incusRun } from "../incus/client.ts";
import { hostNetworks } from "../sync/host.ts";
import { deleteIncusNetwork, incusConflicts } from "./incus.ts";

const cidr = (text: string): Cidr => {
  const c = parseCidr(text);
  if (!c) throw new Error(`bad CIDR in the test: ${text}`);
  return c;
};

test("Incus not answering: incusConflicts is null, deleteIncusNetwork explains how to fix it by hand", async () => {
  const saved = process.env.ANKLUME_INCUS;
  process.env.ANKLUME_INCUS = "false"; // every incus call exits 1 and prints nothing
  try {
    expect(await incusConflicts([cidr("10.0.0.0/8")])).toBeNull();
    expect(
      await deleteIncusNetwork({
        name: "br9",
        project: "p9",
        network: "10.9.9.0/24",
        host: "10.9.0.0/16",
      }),
    ).toBe(
      "exit 1; detach it from its profiles and instances, or give it another subnet: " +
        "incus network set br9 ipv4.address=<free range> --project p9",
    );
  } finally {
    if (saved === undefined) delete process.env.ANKLUME_INCUS;
    else process.env.ANKLUME_INCUS = saved;
  }
});

/** A /24 in 10.253.0.0/16 that overlaps no route of this machine (Incus bridges included). */
function freeSubnet(): string {
  const taken = (hostNetworks() ?? []).map((n) => n.cidr);
  for (let i = 0; i < 256; i++) {
    const third = (Math.floor(Math.random() * 200) + 20 + i) % 256;
    const c: Cidr = { base: ((10 << 24) | (253 << 16) | (third << 8)) >>> 0, prefix: 24 };
    if (!taken.some((t) => overlaps(t, c))) return formatIpv4(c.base).replace(/\.0$/, "");
  }
  throw new Error("no free /24 in 10.253.0.0/16 for the test bridge");
}

const live = await incusOrSkip("lib/guard/incus.test.ts");

describe.skipIf(!live)(
  "against the real daemon (skipped only without an Incus daemon; required under CI)",
  () => {
    const id = uniq();
    const net = `agi${id}`;
    const noAddr = `agn${id}`;
    const profile = `agi-${id}`;
    const s = freeSubnet(); // e.g. 10.253.42
    // incus reads YAML from a stdin that is not a terminal: give it a newline.
    const incus = (args: string[]) => incusRun(args, { input: "\n" });
    const ours = async (hostNets: Cidr[]) =>
      ((await incusConflicts(hostNets)) ?? []).filter((c) => c.name === net || c.name === noAddr);

    beforeAll(async () => {
      await incus([
        "network",
        "create",
        net,
        `ipv4.address=${s}.1/24`,
        "ipv4.nat=false",
        "ipv6.address=none",
      ]);
      await incus(["network", "create", noAddr, "ipv4.address=none", "ipv6.address=none"]);
    }, 60_000);

    afterAll(async () => {
      await incusRaw(["profile", "delete", profile]);
      for (const n of [net, noAddr]) {
        for (let i = 0; i < 3; i++) {
          if ((await incusRaw(["network", "show", n])).exitCode !== 0) break;
          await incusRaw(["network", "delete", n]);
        }
        expect((await incusRaw(["network", "show", n])).exitCode).not.toBe(0);
      }
    }, 60_000);

    test("incusConflicts reports a managed bridge whose ipv4.address overlaps a host network, whichever is wider", async () => {
      const conflict = (host: string) => [
        { name: net, project: "default", network: `${s}.0/24`, host },
      ];
      expect(await ours([cidr(`${s}.0/24`)])).toEqual(conflict(`${s}.0/24`));
      expect(await ours([cidr(`${s}.128/25`)])).toEqual(conflict(`${s}.128/25`));
      expect(await ours([cidr("10.0.0.0/8")])).toEqual(conflict("10.0.0.0/8"));
      // The first host network that overlaps is the one named.
      expect(await ours([cidr("192.0.2.0/24"), cidr("10.253.0.0/16")])).toEqual(
        conflict("10.253.0.0/16"),
      );
    }, 30_000);

    test("incusConflicts leaves out a bridge outside every host network and one without an IPv4 address", async () => {
      expect(await ours([cidr("192.0.2.0/24")])).toEqual([]);
      const next = s.replace(/\d+$/, (t) => String((Number(t) + 1) % 256));
      expect(await ours([cidr(`${next}.0/24`)])).toEqual([]);
      // Everything overlaps 0.0.0.0/0, except a bridge with ipv4.address=none.
      expect((await ours([cidr("0.0.0.0/0")])).map((c) => c.name)).toEqual([net]);
    }, 30_000);

    test("deleteIncusNetwork: a network in use stays and the error says how to fix it; once free it is deleted", async () => {
      await incus(["profile", "create", profile]);
      await incus(["profile", "device", "add", profile, "eth0", "nic", `network=${net}`]);
      const c = { name: net, project: "default", network: `${s}.0/24`, host: `${s}.0/24` };
      const err = await deleteIncusNetwork(c);
      expect(err).toMatch(/in use/i);
      expect(err).toEndWith(
        "; detach it from its profiles and instances, or give it another subnet: " +
          `incus network set ${net} ipv4.address=<free range> --project default`,
      );
      expect((await incusRaw(["network", "show", net])).exitCode).toBe(0);
      await incus(["profile", "delete", profile]);
      // (Incus's veth race while other instances stop is retried by lib/incus/client.ts.)
      const freed = await deleteIncusNetwork(c);
      expect(freed).toBeNull();
      expect((await incusRaw(["network", "show", net])).exitCode).not.toBe(0);
      expect(await ours([cidr(`${s}.0/24`)])).toEqual([]);
      // Deleting it again is an error from Incus, not a crash.
      expect(await deleteIncusNetwork(c)).toMatch(/not found/i);
    }, 60_000);
  },
);
