import { describe, expect, test } from "bun:test";
import { parseInterfaces, routerRules } from "./router.ts";
import { type ResolvedPolicy, resolveSpec } from "./ruleset.ts";

const IFACES = [
  { name: "eth0", bridge: "001-net-anklume" },
  { name: "eth1", bridge: "001-net-perso" },
  { name: "eth2", bridge: "001-net-pro" },
];

function policy(p: Partial<ResolvedPolicy>): ResolvedPolicy {
  return {
    description: "p",
    from: { bridge: "001-net-pro" },
    to: { bridge: "001-net-perso" },
    ports: "all",
    protocol: "tcp",
    bidirectional: false,
    ...p,
  };
}

describe("routerRules", () => {
  test("a policy between two bridges becomes one accept from the first NIC to the second", () => {
    const r = routerRules([policy({ description: "web", ports: [80, 443] })], IFACES);
    expect(r.warnings).toEqual([]);
    expect(r.rules).toEqual([
      { description: "web", iif: "eth2", oif: "eth1", protocol: "tcp", ports: [80, 443] },
    ]);
  });

  test("ports all gives a rule without protocol (every protocol passes)", () => {
    const r = routerRules([policy({})], IFACES);
    expect(r.rules).toEqual([{ description: "p", iif: "eth2", oif: "eth1" }]);
  });

  test("a bidirectional policy gives the reverse rule too, with the addresses swapped", () => {
    const r = routerRules(
      [
        policy({
          from: { bridge: "001-net-pro", ip: "10.100.2.10" },
          to: { bridge: "001-net-perso", ip: "10.100.3.20" },
          ports: [53],
          protocol: "udp",
          bidirectional: true,
        }),
      ],
      IFACES,
    );
    expect(r.rules).toEqual([
      {
        description: "p",
        iif: "eth2",
        oif: "eth1",
        saddr: "10.100.2.10",
        daddr: "10.100.3.20",
        protocol: "udp",
        ports: [53],
      },
      {
        description: "p",
        iif: "eth1",
        oif: "eth2",
        saddr: "10.100.3.20",
        daddr: "10.100.2.10",
        protocol: "udp",
        ports: [53],
      },
    ]);
  });

  test("a policy towards a bridge the firewall has no NIC on is left out with a warning that names it", () => {
    const r = routerRules([policy({ to: { bridge: "001-net-ai" } })], IFACES);
    expect(r.rules).toEqual([]);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toContain('"001-net-ai"');
  });

  test("a policy inside one bridge never crosses the firewall: no rule, no warning", () => {
    const r = routerRules([policy({ to: { bridge: "001-net-pro", ip: "10.100.2.3" } })], IFACES);
    expect(r).toEqual({ rules: [], warnings: [] });
  });

  test("identical rules from two policies are kept once (the first description wins)", () => {
    const r = routerRules([policy({ description: "a" }), policy({ description: "b" })], IFACES);
    expect(r.rules.map((x) => x.description)).toEqual(["a"]);
  });

  test("policies resolved by resolveSpec (domains and machines) map onto the NICs", () => {
    const resolved = resolveSpec({
      domains: [
        { name: "anklume", bridge: "001-net-anklume" },
        { name: "pro", bridge: "001-net-pro" },
        { name: "perso", bridge: "001-net-perso" },
      ],
      machines: [{ name: "pro-dev", domain: "pro", ip: "10.100.2.10" }],
      policies: [
        { from: "perso", to: "pro-dev", ports: [22] },
        { from: "host", to: "pro" },
      ],
    });
    const r = routerRules(resolved.policies, IFACES);
    expect(r.rules).toEqual([
      {
        description: "policy 1",
        iif: "eth1",
        oif: "eth2",
        daddr: "10.100.2.10",
        protocol: "tcp",
        ports: [22],
      },
    ]);
  });
});

describe("parseInterfaces", () => {
  test("reads a JSON list, also JSON inside a JSON string (Ansible's to_json of a string)", () => {
    const text = JSON.stringify(IFACES);
    expect(parseInterfaces(text)).toEqual(IFACES);
    expect(parseInterfaces(JSON.stringify(text))).toEqual(IFACES);
  });

  test("refuses what is not a list of {name, bridge}, and names that are not interface names", () => {
    expect(() => parseInterfaces("{")).toThrow("Cannot parse the interfaces");
    expect(() => parseInterfaces('{"a":1}')).toThrow("expected a list");
    expect(() => parseInterfaces('[{"name":"eth0"}]')).toThrow("needs a name and a bridge");
    expect(() => parseInterfaces('[{"name":"eth0\\" accept","bridge":"b"}]')).toThrow(
      "Cannot use interface name",
    );
  });
});
