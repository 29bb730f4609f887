import { expect, test } from "bun:test";
import * as v from "valibot";
import { runDifferential } from "../../../bench/differential.ts";
import { InfraSchema, ResourcePolicySchema, shapeIssues } from "../schema.ts";
import { compileCheck } from "./schema-check.ts";

const infraCheck = compileCheck(InfraSchema);

/** Both answers on one document: the compiled check, and valibot through shapeIssues. */
const answers = (x: unknown) => [infraCheck(x), shapeIssues(x).length === 0];

const own = (k: string, x: unknown) =>
  Object.defineProperty({}, k, { value: x, enumerable: true, writable: true, configurable: true });
const doc = (domains: unknown) => ({ project_name: "p", global: null, domains });

test("the compiled check agrees with valibot on schema-built documents, valid and mutated (property, seed 20261129)", async () => {
  // bench/differential.ts: the same property with more runs (make bench-differential).
  // The shape is derived in-process: nothing is written to the user's cache.
  const saved = process.env.ANKLUME_NO_CACHE;
  process.env.ANKLUME_NO_CACHE = "1";
  const r = await runDifferential(400, 20261129).finally(() => {
    if (saved === undefined) delete process.env.ANKLUME_NO_CACHE;
    else process.env.ANKLUME_NO_CACHE = saved;
  });
  expect(r.failure).toBeUndefined();
  // Not vacuous: a healthy share of the documents is valid, and so is the rest invalid.
  expect(r.valid).toBeGreaterThan(400 * 0.3);
  expect(r.valid).toBeLessThan(400 * 0.8);
});

test("a key valibot's record skips (prototype, constructor, __proto__) is checked on both sides (D1)", () => {
  for (const name of ["prototype", "constructor", "__proto__", "toString", "hasOwnProperty"]) {
    const bad = doc(own(name, { subnet_id: "5; touch pwned" }));
    expect(answers(bad)).toEqual([false, false]);
    const machine = doc({ a: { subnet_id: 1, machines: own(name, { type: "banana" }) } });
    expect(answers(machine)).toEqual([false, false]);
    const config = doc({ a: { subnet_id: 1, machines: { m: { config: own(name, { x: 1 }) } } } });
    expect(answers(config)).toEqual([false, false]);
    expect(answers(doc(own(name, { subnet_id: 5 })))).toEqual([true, true]);
  }
  const issues = shapeIssues(doc({ prototype: { subnet_id: "5; touch pwned" } }));
  expect(issues.map((i) => i.path)).toEqual([["domains", "prototype", "subnet_id"]]);
});

test("a list, a date or binary data is never a mapping, on both sides (D2)", () => {
  const lists = [
    doc([{ subnet_id: 1 }]),
    doc({ a: { subnet_id: 1, machines: [{ ip: "10.100.1.10" }] } }),
    doc({ a: { subnet_id: 1, profiles: [] } }),
    doc({ a: { subnet_id: 1, machines: { m: [] } } }),
    doc({ a: { subnet_id: 1, machines: { m: { config: ["security.privileged=true"] } } } }),
    doc({ a: { subnet_id: 1, machines: { m: { devices: { gpu: [1] } } } } }),
    { project_name: "p", global: [], domains: {} },
    { project_name: "p", global: new Date(0), domains: {} },
    doc({ a: { subnet_id: 1, machines: { m: new Uint8Array(2) } } }),
  ];
  for (const x of lists) expect(answers(x)).toEqual([false, false]);
  expect(v.safeParse(InfraSchema, lists[0]).success).toBe(false);
});

test("services entries are strict: an unknown key is refused on both sides (D9)", () => {
  const x = doc({
    a: {
      subnet_id: 1,
      machines: { m: { services: [{ name: "c", tool: "clipboard_get", consumerz: ["b"] }] } },
    },
  });
  expect(answers(x)).toEqual([false, false]);
  expect(shapeIssues(x)[0]?.fix).toBe('did you mean "consumers"?');
});

test("the resource policy check compiles like the rest", () => {
  const rp = compileCheck(ResourcePolicySchema);
  expect(rp({ host_reserve: { cpu: "20%" }, mode: "equal" })).toBe(true);
  expect(rp({ mode: "fair" })).toBe(false);
  expect(rp([])).toBe(false);
});
