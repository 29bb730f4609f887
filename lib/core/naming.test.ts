import { expect, test } from "bun:test";
import fc from "fast-check";
import {
  bridgeName,
  DEFAULT_BASE_SUBNET,
  IFNAMSIZ,
  isAnklumeBridge,
  nestingPrefix,
  parseBaseSubnet,
  RESERVED_NAMES,
  reservedBaseSubnet,
} from "./naming.ts";

test("parseBaseSubnet accepts two octets in a string only", () => {
  expect(parseBaseSubnet("10.100")).toBe("10.100");
  expect(parseBaseSubnet("010.5")).toBe("10.5");
  expect(parseBaseSubnet(DEFAULT_BASE_SUBNET)).toBe(DEFAULT_BASE_SUBNET);
  for (const bad of [10.1, "10", "10.256", "10.1.2", "a.b", null, undefined]) {
    expect(parseBaseSubnet(bad)).toBeNull();
  }
});

test("nestingPrefix formats the level as v1 does", () => {
  expect(nestingPrefix(0)).toBe("000-");
  expect(nestingPrefix(1)).toBe("001-");
  expect(nestingPrefix(3)).toBe("003-");
  expect(nestingPrefix(1000)).toBe("1000-");
  expect(nestingPrefix(-1)).toBe("-01-");
});

test("bridgeName keeps v1's name when it fits Linux's 15 characters, else uses the subnet id", () => {
  expect(bridgeName("001-", "pro", 1)).toBe("001-net-pro");
  expect(bridgeName("001-", "sandbox", 3)).toBe("001-net-sandbox");
  expect(bridgeName("001-", "ai-tools", 4)).toBe("001-net4");
  expect(bridgeName("", "ai-tools", 4)).toBe("net-ai-tools");
  expect("001-net-sandbox").toHaveLength(IFNAMSIZ);
});

test("isAnklumeBridge recognises every bridge name bridgeName gives, and not the host's own (property)", () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.constant(""), fc.integer({ min: -99, max: 9999 }).map(nestingPrefix)),
      fc.string({ minLength: 1, maxLength: 20 }),
      fc.integer({ min: 0, max: 254 }),
      (prefix, domain, sid) => isAnklumeBridge(bridgeName(prefix, domain, sid)),
    ),
  );
  for (const n of ["net-pro", "001-net-pro", "000-net4", "1000-net-x"]) {
    expect(isAnklumeBridge(n)).toBe(true);
  }
  for (const n of ["eth0", "wlan0", "br-lan", "incusbr0", "lo", "network", "network0", "001-pro"]) {
    expect(isAnklumeBridge(n)).toBe(false);
  }
});

test("reservedBaseSubnet refuses 0/8, loopback, link-local, multicast and 240/4, not private ranges (D10)", () => {
  for (const [base, word] of [
    ["0.0", "0.0.0.0/8"],
    ["127.0", "loopback"],
    ["127.255", "loopback"],
    ["169.254", "link-local"],
    ["224.0", "multicast"],
    ["239.255", "multicast"],
    ["240.0", "reserved"],
    ["255.255", "reserved"],
  ] as const) {
    expect(reservedBaseSubnet(base)).toContain(word);
  }
  for (const ok of ["10.100", "10.200", "172.16", "192.168", "169.253", "1.0", "223.255"]) {
    expect(reservedBaseSubnet(ok)).toBeNull();
  }
});

test("RESERVED_NAMES holds Ansible's reserved groups and hosts and the policies' host (D3, D8)", () => {
  expect([...RESERVED_NAMES.keys()].sort()).toEqual(["all", "host", "localhost", "ungrouped"]);
});
