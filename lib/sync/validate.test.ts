import { expect, test } from "bun:test";
import { parseCidr } from "../core/cidr.ts";
import { isAnklumeBridge, parseBaseSubnet, validateInfra } from "./validate.ts";

const env = {
  context: { absoluteLevel: 1, vmNested: null, yolo: false },
  prefix: "001-",
  hostNetworks: null,
  ownBridges: new Set<string>(),
};

test("parseBaseSubnet accepts two octets in a string only", () => {
  expect(parseBaseSubnet("10.100")).toBe("10.100");
  expect(parseBaseSubnet("010.5")).toBe("10.5");
  for (const bad of [10.1, "10.256", "10", "10.1.2", "a.b"])
    expect(parseBaseSubnet(bad)).toBeNull();
});

test("isAnklumeBridge recognises v1 and prefixed bridge names", () => {
  for (const n of ["net-pro", "001-net-pro", "000-net4", "1000-net-x"])
    expect(isAnklumeBridge(n)).toBe(true);
  for (const n of ["eth0", "wlan0", "incusbr0", "network", "001-pro"])
    expect(isAnklumeBridge(n)).toBe(false);
});

test("validateInfra is defensive: wrong types produce no crash and no duplicate complaint", () => {
  for (const data of [
    null,
    [],
    3,
    "x",
    { domains: 5 },
    { domains: { a: null } },
    { domains: { a: { machines: [] } } },
  ]) {
    expect(() => validateInfra(data, env)).not.toThrow();
  }
});

test("the host check compares real ranges and skips anklume's own bridges", () => {
  const data = { domains: { a: { subnet_id: 3 } } };
  const nets = (ifname: string, cidr: string) => [
    { ifname, cidr: parseCidr(cidr) as NonNullable<ReturnType<typeof parseCidr>> },
  ];
  expect(
    validateInfra(data, { ...env, hostNetworks: nets("wlan0", "10.100.0.0/16") }),
  ).toHaveLength(1);
  expect(
    validateInfra(data, { ...env, hostNetworks: nets("wlan0", "10.100.4.0/24") }),
  ).toHaveLength(0);
  expect(
    validateInfra(data, { ...env, hostNetworks: nets("001-net-a", "10.100.3.0/24") }),
  ).toHaveLength(0);
  expect(validateInfra(data, { ...env, hostNetworks: nets("br-lan", "10.0.0.0/8") })).toHaveLength(
    1,
  );
});
