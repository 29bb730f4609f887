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
    { domains: { a: { subnet_id: 1, machines: [] } } },
    { global: { addressing: 5 }, domains: { a: { machines: 5 } } },
    { global: { addressing: {} }, domains: { a: null, b: { machines: { m: null } } } },
  ]) {
    expect(() => validateInfra(data, env)).not.toThrow();
    // Wrong types are the shape check's to report: validateInfra adds nothing,
    // so the same defect is never complained about twice.
    expect(validateInfra(data, env)).toEqual([]);
  }
  // A document with several real defects: each is reported once.
  const issues = validateInfra(
    {
      project_name: "p",
      global: { base_subnet: "10.100" },
      domains: {
        all: { subnet_id: 1, machines: { host: {}, "a-b": {} } },
        b: { subnet_id: 1, machines: { "a-b": {} } },
      },
    },
    env,
  );
  expect(issues.length).toBeGreaterThan(1);
  const keys = issues.map((i) => `${i.severity}|${i.path.join(".")}|${i.message}`);
  expect(new Set(keys).size).toBe(keys.length);
});

test("the host check compares real ranges and skips anklume's own bridges", () => {
  const data = { domains: { a: { subnet_id: 3 } } };
  const nets = (ifname: string, cidr: string) => [
    { ifname, cidr: parseCidr(cidr) as NonNullable<ReturnType<typeof parseCidr>> },
  ];
  // Test audit 1.13: the message names the domain, both CIDRs and the interface.
  expect(validateInfra(data, { ...env, hostNetworks: nets("wlan0", "10.100.0.0/16") })).toEqual([
    {
      severity: "error",
      path: ["domains", "a", "subnet_id"],
      message:
        'SUBNET CONFLICT: domain "a" uses 10.100.3.0/24, which overlaps host interface "wlan0" (10.100.0.0/16). Incus would create a bridge on the same subnet and cut the host off its network',
      fix: 'change global.base_subnet to "10.200" or use another subnet_id for this domain (ANKLUME_SKIP_HOST_SUBNET_CHECK=1 skips this check)',
      atKey: false,
    },
  ]);
  expect(
    validateInfra(data, { ...env, hostNetworks: nets("wlan0", "10.100.4.0/24") }),
  ).toHaveLength(0);
  expect(
    validateInfra(data, { ...env, hostNetworks: nets("001-net-a", "10.100.3.0/24") }),
  ).toHaveLength(0);
  const wide = validateInfra(data, { ...env, hostNetworks: nets("br-lan", "10.0.0.0/8") });
  expect(wide.map((i) => i.message)).toEqual([
    'SUBNET CONFLICT: domain "a" uses 10.100.3.0/24, which overlaps host interface "br-lan" (10.0.0.0/8). Incus would create a bridge on the same subnet and cut the host off its network',
  ]);
});

const infra = (domains: unknown, global: unknown = { base_subnet: "10.100" }) => ({
  project_name: "p",
  global,
  domains,
});
const errors = (data: unknown) => validateInfra(data, env).filter((i) => i.severity === "error");

test("a file that is not a mapping is left to the shape check: reported once (D17)", () => {
  for (const data of [null, [], 3, "x"]) expect(validateInfra(data, env)).toEqual([]);
});

test("Ansible's reserved names and host are refused as domain and machine names (D3, D8)", () => {
  for (const name of ["all", "ungrouped", "localhost", "host"]) {
    expect(errors(infra({ [name]: { subnet_id: 1 } }))).toEqual([
      expect.objectContaining({
        path: ["domains", name],
        message: expect.stringContaining(`"${name}" cannot be a domain name: it is reserved`),
        atKey: true,
      }),
    ]);
    expect(errors(infra({ pro: { subnet_id: 1, machines: { [name]: {} } } }))).toEqual([
      expect.objectContaining({
        path: ["domains", "pro", "machines", name],
        message: expect.stringContaining(`"${name}" cannot be a machine name`),
      }),
    ]);
  }
  expect(errors(infra({ hosts: { subnet_id: 1, machines: { "all-box": {} } } }))).toEqual([]);
});

test("a managed-block marker is refused in any key or string value, at its path (D6)", () => {
  const end = "# === END MANAGED ===";
  const begin = "# === MANAGED BY infra.yml ===";
  const data = {
    project_name: `demo ${begin}`,
    global: { base_subnet: "10.100" },
    domains: {
      pro: {
        subnet_id: 1,
        description: `x ${end}`,
        machines: {
          m: { config: { [`k ${end}`]: "v", "user.x": begin }, roles: ["a", `b${end}`] },
        },
      },
    },
    network_policies: [{ from: "pro", to: "pro", description: end }],
  };
  expect(errors(data).map((i) => i.path)).toEqual([
    ["project_name"],
    ["domains", "pro", "description"],
    ["domains", "pro", "machines", "m", "config", `k ${end}`],
    ["domains", "pro", "machines", "m", "config", "user.x"],
    ["domains", "pro", "machines", "m", "roles", 1],
    ["network_policies", 0, "description"],
  ]);
  expect(errors(infra({ pro: { subnet_id: 1, description: "# === not a marker" } }))).toEqual([]);
});

test("reserved ranges are refused as base_subnet, and IPs are still checked against it (D10)", () => {
  const data = infra(
    { pro: { subnet_id: 1, machines: { m: { ip: "127.0.1.10" } } } },
    {
      base_subnet: "127.0",
    },
  );
  expect(errors(data)).toEqual([
    expect.objectContaining({
      path: ["global", "base_subnet"],
      message: '"127.0" cannot hold anklume\'s networks: 127.0.0.0/8 is the loopback range',
    }),
  ]);
});

test("names of Object.prototype are own keys only: a profile named constructor is not found by accident (D1)", () => {
  const data = infra({
    pro: {
      subnet_id: 1,
      profiles: { toString: { devices: { gpu: { type: "gpu" } } } },
      machines: {
        a: { profiles: ["constructor"] },
        b: { profiles: ["toString"] },
        c: { gpu: true },
      },
    },
  });
  const issues = errors(data);
  expect(issues.map((i) => i.path)).toEqual([
    ["domains", "pro", "machines", "a", "profiles", 0],
    ["domains", "pro", "machines", "c"],
  ]);
  expect(issues[1]?.message).toContain("2 instances have GPU access: b, c");
});

test("the marker check survives a structure that contains itself (a YAML alias in its own anchor)", () => {
  const roles: unknown[] = ["a", "# === END MANAGED ==="];
  roles.push(roles);
  const data = infra({ pro: { subnet_id: 1, machines: { m: { roles } } } });
  expect(errors(data).map((i) => i.path)).toEqual([
    ["domains", "pro", "machines", "m", "roles", 1],
  ]);
});

test("global.package_cache takes auto, true, false or an http(s) proxy URL, and names the key otherwise", () => {
  const doc = (package_cache: unknown) => ({ global: { package_cache }, domains: {} });
  for (const ok of [
    undefined,
    null,
    true,
    false,
    "auto",
    "http://10.0.0.5:3142",
    "https://proxy.lan/",
  ]) {
    expect(validateInfra(doc(ok), env)).toEqual([]);
  }
  for (const bad of [
    "yes",
    "10.0.0.5:3142",
    "http://a b",
    3142,
    ["http://x"],
    { url: "http://x" },
  ]) {
    const issues = validateInfra(doc(bad), env);
    expect(issues).toHaveLength(1);
    expect(issues[0]?.path).toEqual(["global", "package_cache"]);
    expect(issues[0]?.severity).toBe("error");
    expect(issues[0]?.fix).toContain("package_cache:");
  }
});

test("a duplicate subnet_id names the first owner and the lowest free id, or says all are taken", () => {
  const issues = validateInfra(
    {
      project_name: "p",
      domains: { a: { subnet_id: 0 }, b: { subnet_id: 1 }, c: { subnet_id: 0 } },
    },
    env,
  );
  expect(issues).toEqual([
    {
      severity: "error",
      path: ["domains", "c", "subnet_id"],
      message: 'subnet_id 0 is already used by domain "a"',
      fix: "give each domain its own subnet_id (0-254); 2 is free",
      atKey: false,
    },
  ]);
  const all: Record<string, unknown> = {};
  for (let i = 0; i <= 254; i++) all[`d${i}`] = { subnet_id: i };
  all.dup = { subnet_id: 7 };
  expect(validateInfra({ project_name: "p", domains: all }, env).map((i) => i.fix)).toEqual([
    "give each domain its own subnet_id (0-254); all 255 are taken",
  ]);
});

test("GPU access: gpu: true or a listed domain profile with a gpu device; other profiles and devices do not count", () => {
  const gpu = { devices: { g: { type: "gpu" } } };
  const two = validateInfra(
    {
      project_name: "p",
      domains: {
        a: {
          subnet_id: 1,
          profiles: { gpu },
          machines: { m1: { gpu: true }, m2: { profiles: ["default", "gpu"] } },
        },
      },
    },
    env,
  );
  expect(two.map((i) => [i.path.join("."), i.message])).toEqual([
    ["domains.a.machines.m2", "GPU policy is 'exclusive' but 2 instances have GPU access: m1, m2"],
  ]);
  const one = validateInfra(
    {
      project_name: "p",
      domains: {
        a: {
          subnet_id: 1,
          profiles: { gpu, nic: { devices: { n: { type: "nic" } } } },
          machines: { m1: { gpu: true }, m2: { profiles: ["nic"] }, m3: { gpu: false } },
        },
      },
    },
    env,
  );
  expect(one).toEqual([]);
});

test("host_reserve: percentages 1-99 and whole, positive numbers, memory sizes; each wrong value with its fix", () => {
  const r = (cpu: unknown, memory: unknown) =>
    validateInfra(
      {
        project_name: "p",
        global: { resource_policy: { host_reserve: { cpu, memory } } },
        domains: { a: { subnet_id: 1 } },
      },
      env,
    ).map((i) => `${i.path.join(".")}: ${i.message} | ${i.fix}`);
  const at = "global.resource_policy.host_reserve";
  expect(r("1%", "99%")).toEqual([]);
  expect(r(2, 0.5)).toEqual([]);
  expect(r(null, undefined)).toEqual([]);
  expect(r(1, "4GiB")).toEqual([]);
  expect(r("0%", "100%")).toEqual([
    `${at}.cpu: percentage must be 1-99, got 0 | write e.g. "20%"`,
    `${at}.memory: percentage must be 1-99, got 100 | write e.g. "20%"`,
  ]);
  expect(r("1.5%", "x%")).toEqual([
    `${at}.cpu: "1.5%" is not a whole percentage | write e.g. "20%"`,
    `${at}.memory: "x%" is not a whole percentage | write e.g. "20%"`,
  ]);
  expect(r(0, -1)).toEqual([
    `${at}.cpu: must be positive, got 0 | write a positive number or a percentage`,
    `${at}.memory: must be positive, got -1 | write a positive number or a percentage`,
  ]);
  expect(r("2", "0GiB")).toEqual([
    `${at}.cpu: must be 'N%' or a positive number, got "2" | write a core count (2) or a percentage ("20%")`,
    `${at}.memory: "0GiB" is not a memory size | write e.g. "4GiB", "512MiB" or "20%"`,
  ]);
  expect(r(true, false)).toEqual([
    `${at}.cpu: must be 'N%' or a positive number, got true | write a core count (2) or a percentage ("20%")`,
    `${at}.memory: must be 'N%' or a positive number, got false | write e.g. "4GiB" or "20%"`,
  ]);
});

test("a static IP's host part: .0, .254 and .255 are errors naming why; .100 and .249 warn (DHCP range); .1, .99, .250, .253 pass", () => {
  const r = (h: number) =>
    validateInfra(
      {
        project_name: "p",
        global: { base_subnet: "10.100" },
        domains: { a: { subnet_id: 1, machines: { m: { ip: `10.100.1.${h}` } } } },
      },
      env,
    ).map((i) => `${i.severity}: ${i.message} | ${i.fix}`);
  const use = "use an address from 10.100.1.1 to 10.100.1.253";
  expect(r(0)).toEqual([`error: "10.100.1.0" is the network address | ${use}`]);
  expect(r(254)).toEqual([`error: "10.100.1.254" is the domain's gateway | ${use}`]);
  expect(r(255)).toEqual([`error: "10.100.1.255" is the broadcast address | ${use}`]);
  for (const h of [100, 249]) {
    expect(r(h)).toEqual([
      `warning: "10.100.1.${h}" is inside the bridge's DHCP range (.100-.249): a DHCP client could be given the same address | prefer an address from .1 to .99 or .250 to .253`,
    ]);
  }
  for (const h of [1, 99, 250, 253]) expect(r(h)).toEqual([]);
});
