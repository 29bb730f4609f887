import { expect, test } from "bun:test";
import { describeFailure, execute, type StepRunner } from "./execute.ts";
import { emptyPlan, type Plan, type Step } from "./reconcile.ts";

const st = (desc: string): Step => ({ desc, args: [desc] });
/** Three instances, each init, device, start, context: the shape planInstances gives. */
function threeInstances(): Plan {
  return {
    ...emptyPlan(),
    perInstance: ["a", "b", "c"].map((n) => ({
      key: `p/${n}`,
      steps: ["init", "device", "start", "context"].map((s) => st(`p/${n}: ${s}`)),
    })),
  };
}

/** A runner that records what ran, and fails the steps named in `failing`. */
function fakeRunner(failing: Record<string, string> = {}) {
  const ran: string[] = [];
  const run: StepRunner = async (s) => {
    await new Promise((r) => setTimeout(r, 1));
    ran.push(s.desc);
    if (s.desc in failing) throw new Error(failing[s.desc]);
    return undefined;
  };
  return { ran, run };
}

test("execute(): a failing init of `a` stops `a` only; `b` and `c` run all their steps; the failure names `a` and why", async () => {
  const { ran, run } = fakeRunner({ "p/a: init": 'Image "nope" not found' });
  const out = await execute(threeInstances(), run, { parallel: 4 });
  expect(ran.filter((d) => d.startsWith("p/a"))).toEqual(["p/a: init"]);
  for (const n of ["b", "c"]) {
    expect(ran.filter((d) => d.startsWith(`p/${n}`))).toEqual(
      ["init", "device", "start", "context"].map((s) => `p/${n}: ${s}`),
    );
  }
  expect(out.failures).toEqual([
    { machine: "p/a", step: "p/a: init", error: 'Image "nope" not found' },
  ]);
  expect(out.failures.map(describeFailure)).toEqual([
    'p/a: init failed (its later steps were skipped): Image "nope" not found',
  ]);
});

test("execute(): every failing instance is reported, and `after` still runs", async () => {
  const plan = { ...threeInstances(), after: [st("delete orphan")] };
  const { ran, run } = fakeRunner({ "p/a: start": "boom a", "p/c: device": "boom c" });
  const out = await execute(plan, run, { parallel: 2 });
  expect(out.failures.map((f) => `${f.machine} ${f.error}`).sort()).toEqual([
    "p/a boom a",
    "p/c boom c",
  ]);
  expect(ran.filter((d) => d.startsWith("p/b"))).toHaveLength(4);
  expect(ran.at(-1)).toBe("delete orphan");
});

test("execute(): instances run side by side, at most `parallel` at once, each in its own order", async () => {
  let now = 0;
  let peak = 0;
  const order: string[] = [];
  const run: StepRunner = async (s) => {
    now++;
    peak = Math.max(peak, now);
    await new Promise((r) => setTimeout(r, 5));
    order.push(s.desc);
    now--;
    return undefined;
  };
  const plan = {
    ...emptyPlan(),
    perInstance: ["a", "b", "c", "d", "e"].map((n) => ({
      key: n,
      steps: [st(`${n}: 1`), st(`${n}: 2`)],
    })),
  };
  await execute(plan, run, { parallel: 3 });
  expect(peak).toBe(3);
  for (const n of ["a", "b", "c", "d", "e"]) {
    expect(order.indexOf(`${n}: 1`)).toBeLessThan(order.indexOf(`${n}: 2`));
  }
  peak = 0;
  await execute(plan, run, { parallel: 1 });
  expect(peak).toBe(1);
});

test("execute(): a failure in `before` stops everything after it; tolerated failures become warnings", async () => {
  const plan = {
    ...threeInstances(),
    before: [st("project create"), st("bridge create"), st("profile")],
    after: [st("delete orphan")],
  };
  const { ran, run } = fakeRunner({ "bridge create": "no" });
  const out = await execute(plan, run);
  expect(ran).toEqual(["project create", "bridge create"]);
  expect(out.failures.map(describeFailure)).toEqual(['Step "bridge create" failed: no']);

  const warn: StepRunner = async (s) => (s.desc === "p/b: init" ? "already exists" : undefined);
  const ok = await execute(threeInstances(), warn);
  expect(ok).toEqual({ failures: [], warnings: ["already exists"] });
});

test("execute() of an empty plan runs nothing", async () => {
  const { ran, run } = fakeRunner();
  expect(await execute(emptyPlan(), run)).toEqual({ failures: [], warnings: [] });
  expect(ran).toEqual([]);
});
