import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { type Cidr, formatCidr, parseCidr } from "../core/cidr.ts";
import {
  findBridgeConflicts,
  findIncusConflicts,
  type IncusNetwork,
  type IpAddrLink,
  logLine,
  neighbourVerdict,
  parseMonitorLine,
  pickDefaultRoute,
  renderDropIn,
} from "./guard.ts";

/** The fixed default seed replays CI's cases; FC_SEED=<n> explores others (test audit 6.5). */
const SEED = Number(process.env.FC_SEED ?? 20261125);

const cidr = (t: string): Cidr => {
  const c = parseCidr(t);
  if (!c) throw new Error(t);
  return c;
};

function link(ifname: string, kind: string | undefined, ...addrs: string[]): IpAddrLink {
  return {
    ifindex: 1,
    ifname,
    linkinfo: kind ? { info_kind: kind } : undefined,
    addr_info: addrs.map((a) => {
      const [local, len] = a.split("/");
      return { family: "inet", local, prefixlen: Number(len) };
    }),
  };
}

describe("findBridgeConflicts", () => {
  const host = [cidr("192.168.1.0/24")];

  test("finds a bridge in the host's /24 and ignores the uplink, other kinds and neighbours", () => {
    const links = [
      link("eth0", undefined, "192.168.1.10/24"),
      link("br-same", "bridge", "192.168.1.254/24"),
      link("br-next", "bridge", "192.168.10.1/24"), // text prefix "192.168.1" matches, range does not
      link("veth0", "veth", "192.168.1.77/24"),
      link("br-empty", "bridge"),
    ];
    expect(findBridgeConflicts(links, "eth0", host)).toEqual([
      { ifname: "br-same", network: "192.168.1.0/24", host: "192.168.1.0/24" },
    ]);
  });

  test("compares ranges across prefix lengths: /16 around a /24, /24 inside a /16", () => {
    expect(findBridgeConflicts([link("b", "bridge", "192.168.0.1/16")], "eth0", host)).toHaveLength(
      1,
    );
    expect(
      findBridgeConflicts([link("b", "bridge", "10.20.30.1/24")], "eth0", [cidr("10.20.0.0/16")]),
    ).toEqual([{ ifname: "b", network: "10.20.30.0/24", host: "10.20.0.0/16" }]);
    expect(
      findBridgeConflicts([link("b", "bridge", "10.21.30.1/24")], "eth0", [cidr("10.20.0.0/16")]),
    ).toEqual([]);
  });

  test("a bridge that is the uplink itself is never a conflict", () => {
    expect(findBridgeConflicts([link("br0", "bridge", "192.168.1.5/24")], "br0", host)).toEqual([]);
  });

  test("agrees with an interval comparison on random networks (fast-check)", () => {
    const net = fc
      .tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 8, max: 32 }))
      .map(([ip, p]) =>
        cidr(`${[ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join(".")}/${p}`),
      );
    fc.assert(
      fc.property(net, net, (h, b) => {
        const size = (c: Cidr) => 2 ** (32 - c.prefix);
        const intersect = h.base < b.base + size(b) && b.base < h.base + size(h);
        const addr = formatCidr(b).split("/")[0] ?? "";
        const found = findBridgeConflicts([link("b", "bridge", `${addr}/${b.prefix}`)], "up", [h]);
        return found.length === (intersect ? 1 : 0);
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });
});

describe("parseMonitorLine", () => {
  // Lines captured from `ip -oneline -details monitor link address` (iproute2 6.1).
  const bridgeNew =
    "2: brx: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN group default \\    link/ether 3e:c6:34:5f:96:a7 brd ff:ff:ff:ff:ff:ff promiscuity 0  allmulti 0 minmtu 68 maxmtu 65535 \\    bridge forward_delay 1500 hello_time 200";
  const vethNew =
    "3: vb@NONE: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN group default \\    link/ether be:8a:4d:8c:00:b1 brd ff:ff:ff:ff:ff:ff promiscuity 0  allmulti 0 minmtu 68 maxmtu 65535 \\    veth numtxqueues 2";
  const port =
    "4: va@vb: <BROADCAST,MULTICAST,M-DOWN> mtu 1500 qdisc noop master brx state DOWN group default \\    link/ether c2:d7:4c:bc:74:ca brd ff:ff:ff:ff:ff:ff promiscuity 1  allmulti 1 minmtu 68 maxmtu 65535 \\    veth \\    bridge_slave state disabled priority 32";
  const portEvent =
    "Deleted 4: va@vb: <BROADCAST,MULTICAST,M-DOWN> mtu 1500 master brx state DOWN \\    link/ether c2:d7:4c:bc:74:ca";

  test("reads a new bridge, a veth, a bridge port and a bridge-port event", () => {
    expect(parseMonitorLine(bridgeNew)).toEqual({
      kind: "link",
      deleted: false,
      ifindex: 2,
      ifname: "brx",
      bridge: true,
    });
    expect(parseMonitorLine(vethNew)).toMatchObject({ ifname: "vb", bridge: false });
    expect(parseMonitorLine(port)).toMatchObject({ ifname: "va", bridge: false });
    expect(parseMonitorLine(portEvent)).toMatchObject({ deleted: true, ifindex: 4, bridge: null });
  });

  test("reads IPv4 addresses, ignores IPv6", () => {
    expect(
      parseMonitorLine(
        "2: brx    inet 10.9.0.1/24 scope global brx\\       valid_lft forever preferred_lft forever",
      ),
    ).toEqual({
      kind: "addr",
      deleted: false,
      ifindex: 2,
      ifname: "brx",
      cidr: cidr("10.9.0.0/24"),
    });
    expect(parseMonitorLine("Deleted 2: brx    inet 10.9.0.1/24 scope global brx")).toMatchObject({
      kind: "addr",
      deleted: true,
    });
    expect(
      parseMonitorLine("3: vb    inet 10.9.1.1 peer 10.9.1.2/32 scope global vb"),
    ).toMatchObject({
      cidr: cidr("10.9.1.1/32"),
    });
    expect(
      parseMonitorLine("Deleted 2: brx    inet6 fe80::7cf4:5fff:fe54:c422/64 scope link"),
    ).toEqual({
      kind: "other",
    });
    expect(parseMonitorLine("")).toEqual({ kind: "other" });
  });
});

describe("pickDefaultRoute", () => {
  test("takes the lowest metric, and null without a default route", () => {
    expect(
      pickDefaultRoute([
        { dst: "default", gateway: "10.0.0.1", dev: "wlan0", metric: 600 },
        { dst: "default", gateway: "192.168.1.1", dev: "eth0", metric: 100 },
        { dst: "10.0.0.0/24", dev: "wlan0" },
      ]),
    ).toEqual({ dev: "eth0", gateway: "192.168.1.1" });
    expect(pickDefaultRoute([{ dst: "default", dev: "ppp0" }])).toEqual({
      dev: "ppp0",
      gateway: null,
    });
    expect(pickDefaultRoute([{ dst: "10.0.0.0/8", dev: "eth0" }])).toBeNull();
  });
});

describe("findIncusConflicts", () => {
  test("keeps managed bridges whose ipv4.address overlaps, with their project", () => {
    const nets: IncusNetwork[] = [
      {
        name: "net-lab",
        type: "bridge",
        managed: true,
        project: "lab",
        config: { "ipv4.address": "192.168.1.254/24" },
      },
      {
        name: "eth0",
        type: "physical",
        managed: false,
        project: "default",
        config: {} as Record<string, string>,
      },
      {
        name: "none4",
        type: "bridge",
        managed: true,
        project: "default",
        config: { "ipv4.address": "none" },
      },
      {
        name: "ok",
        type: "bridge",
        managed: true,
        project: "default",
        config: { "ipv4.address": "10.100.1.254/24" },
      },
    ];
    expect(findIncusConflicts(nets, [cidr("192.168.0.0/16")])).toEqual([
      { name: "net-lab", project: "lab", network: "192.168.1.0/24", host: "192.168.0.0/16" },
    ]);
  });
});

describe("small pieces", () => {
  test("renderDropIn runs post-start after every start, never blocking Incus", () => {
    const text = renderDropIn("/opt/anklume/incus-guard");
    expect(text).toContain("\n[Service]\nExecStartPost=-/opt/anklume/incus-guard post-start\n");
  });

  test("neighbourVerdict reads the kernel's neighbour states", () => {
    expect(neighbourVerdict(["REACHABLE"])).toBe("answered");
    expect(neighbourVerdict(["FAILED"])).toBe("failed");
    expect(neighbourVerdict(["NOARP"])).toBe("unknown");
    expect(neighbourVerdict(["STALE"])).toBe("pending");
    expect(neighbourVerdict([])).toBe("pending");
  });

  test("logLine starts with an ISO-8601 timestamp", () => {
    expect(logLine("post-start", "OK", new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6)))).toBe(
      "2026-01-02T03:04:05.006Z incus-guard[post-start]: OK\n",
    );
  });
});
