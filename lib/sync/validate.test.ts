import { expect, test } from "bun:test";
import { parseCidr } from "../core/cidr.ts";
import { validateInfra } from "./validate.ts";

const env = {
  context: { absoluteLevel: 1, vmNested: null, yolo: false },
  prefix: "001-",
  hostNetworks: null,
};

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
