import { expect, test } from "bun:test";
import { shapeIssues } from "./schema.ts";

const ok = { project_name: "x", global: null, domains: { a: { subnet_id: 1 } } };

test("a minimal infra has the right shape", () => {
  expect(shapeIssues(ok)).toEqual([]);
});

test("unknown keys name the closest known key, at the key", () => {
  const issues = shapeIssues({ ...ok, domains: { a: { subnet_id: 1, machnes: {} } } });
  expect(issues).toEqual([
    expect.objectContaining({
      path: ["domains", "a", "machnes"],
      atKey: true,
      fix: 'did you mean "machines"?',
    }),
  ]);
});

test("a boolean is never a number and a quoted number says to drop the quotes", () => {
  expect(shapeIssues({ ...ok, domains: { a: { subnet_id: true } } })[0]?.message).toContain(
    "boolean true",
  );
  expect(shapeIssues({ ...ok, domains: { a: { subnet_id: "4" } } })[0]?.fix).toContain(
    "remove the quotes",
  );
});

test("resource_policy: true or a mapping, its fields checked with their full path", () => {
  expect(shapeIssues({ ...ok, global: { resource_policy: true } })).toEqual([]);
  expect(shapeIssues({ ...ok, global: { resource_policy: false } })[0]?.path).toEqual([
    "global",
    "resource_policy",
  ]);
  expect(shapeIssues({ ...ok, global: { resource_policy: { mode: "x" } } })[0]?.path).toEqual([
    "global",
    "resource_policy",
    "mode",
  ]);
});

const own = (k: string, x: unknown) =>
  Object.defineProperty({}, k, { value: x, enumerable: true, writable: true, configurable: true });

test("every key is checked whatever its name: prototype, constructor, __proto__ (D1)", () => {
  for (const name of ["prototype", "constructor", "__proto__"]) {
    const issues = shapeIssues({ ...ok, domains: own(name, { subnet_id: "5; touch pwned" }) });
    expect(issues.map((i) => i.path)).toEqual([["domains", name, "subnet_id"]]);
    const machine = { subnet_id: 1, machines: own(name, { type: "banana", roles: "x" }) };
    expect(shapeIssues({ ...ok, domains: { a: machine } }).map((i) => i.path)).toEqual([
      ["domains", "a", "machines", name, "type"],
      ["domains", "a", "machines", name, "roles"],
    ]);
  }
});

test("a list is not a mapping: domains, machines, profiles, config, devices (D2)", () => {
  const at = (domains: unknown) => shapeIssues({ ...ok, domains }).map((i) => i.message);
  expect(at([{ subnet_id: 1 }])).toEqual([
    "expected a mapping of domain names to their settings, got a list",
  ]);
  expect(at({ a: { subnet_id: 1, machines: [] } })).toEqual([
    "expected a mapping of machine names to their settings, got a list",
  ]);
  expect(at({ a: { subnet_id: 1, profiles: [] } })).toEqual([
    "expected a mapping of profile names to their settings, got a list",
  ]);
  expect(
    at({ a: { subnet_id: 1, machines: { m: { config: ["x=1"], devices: { g: [] } } } } }),
  ).toEqual([
    "expected a mapping of Incus config keys to values, got a list",
    "expected the device's Incus settings, a mapping (type…), got a list",
  ]);
});

test("messages: the expected type in a missing key's placeholder, the role of a map's value (D17)", () => {
  const missing = shapeIssues({ global: null, domains: {} });
  expect(missing[0]?.fix).toBe("add project_name: <the project's name, a string such as my-lab>");
  const policy = shapeIssues({ ...ok, network_policies: [{ to: "a" }] });
  expect(policy[0]?.fix).toBe("add from: <a domain name, a machine name or host>");
  // A domain file with settings at its top level: the 9 is a domain's value, not a subnet_id.
  const flat = shapeIssues({ ...ok, domains: { subnet_id: 9 } });
  expect(flat[0]?.message).toBe(
    "expected the domain's settings, a mapping (subnet_id, machines…), got the number 9",
  );
  const empty = shapeIssues(null);
  expect(empty).toHaveLength(1);
  expect(empty[0]?.message).toContain("the file must be a mapping with project_name");
  expect(empty[0]?.fix).not.toContain("set  to");
  const date = shapeIssues({ ...ok, domains: { a: { subnet_id: 1, description: new Date(0) } } });
  expect(date[0]?.message).toBe("expected a string, got the date 1970-01-01 (an unquoted date)");
  expect(date[0]?.fix).toContain('quote it: description: "1970-01-01"');
  const port = shapeIssues({ ...ok, network_policies: [{ from: "a", to: "a", ports: [70000] }] });
  expect(port[0]?.message).toContain("ports[0] must be a port number from 1 to 65535");
});

test("a service entry is strict and suggests the closest key (D9)", () => {
  const svc = { name: "clip", tool: "clipboard_get", consumerz: [], anything: { nested: [1] } };
  const issues = shapeIssues({
    ...ok,
    domains: { a: { subnet_id: 1, machines: { m: { services: [svc] } } } },
  });
  expect(issues[0]).toEqual(
    expect.objectContaining({
      path: ["domains", "a", "machines", "m", "services", 0, "consumerz"],
      fix: 'did you mean "consumers"?',
    }),
  );
});
