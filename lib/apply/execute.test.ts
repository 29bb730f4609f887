import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { incusOrSkip, uniq } from "../../tests/helpers.ts";
import { incusRaw, incusRun } from "../incus/client.ts";
import {
  describeFailure,
  execute,
  incusRunner,
  limiter,
  type StepRunner,
  waitAgent,
} from "./execute.ts";
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

test("execute(): plans that share a limit run at most that many instances together, however many plans; a failure frees its slot", async () => {
  let running = 0;
  let most = 0;
  const run: StepRunner = async (s) => {
    running++;
    most = Math.max(most, running);
    await new Promise((r) => setTimeout(r, 3));
    running--;
    if (s.desc === "p/b: start") throw new Error("boom");
    return undefined;
  };
  const limit = limiter(2);
  const outs = await Promise.all(
    [1, 2, 3].map(() => execute(threeInstances(), run, { parallel: 4, limit })),
  );
  expect(most).toBe(2);
  expect(outs.map((o) => o.failures.length)).toEqual([1, 1, 1]);
  // Alone, the same plans overlap up to `parallel` each.
  most = 0;
  await Promise.all([1, 2].map(() => execute(threeInstances(), run, { parallel: 3 })));
  expect(most).toBeGreaterThan(2);
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

// ---------------------------------------------------------------- the VM agent wait, on the real daemon

const live = await incusOrSkip("execute (waitAgent)");

describe.skipIf(!live)(
  "waitAgent / incusRunner VM agent wait (fake: VMs cannot start here, a container stands in)",
  () => {
    const u = uniq();
    const stopped = `ankwa-s-${u}`;
    const running = `ankwa-r-${u}`;
    let tmp = "";
    let log = "";

    beforeAll(async () => {
      tmp = mkdtempSync(join(tmpdir(), "anklume-waitagent-"));
      log = join(tmp, "calls");
      // A wrapper around the real incus that records each call, to count the tries.
      const wrapper = join(tmp, "incus");
      writeFileSync(wrapper, `#!/bin/sh\necho "$*" >> ${log}\nexec incus "$@"\n`, { mode: 0o755 });
      await incusRun(["create", "--empty", stopped]);
      await incusRun(["launch", "anklume-busybox", running]);
      process.env.ANKLUME_INCUS = wrapper;
    }, 120_000);

    afterAll(async () => {
      delete process.env.ANKLUME_INCUS;
      for (const n of [stopped, running]) await incusRaw(["delete", n, "--force"]);
      expect((await incusRaw(["info", stopped])).exitCode).not.toBe(0);
      expect((await incusRaw(["info", running])).exitCode).not.toBe(0);
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    }, 120_000);

    const tries = () =>
      readFileSync(log, "utf8")
        .split("\n")
        .filter((l) => l.startsWith("exec ")).length;

    test("an instance whose agent never answers (stopped) fails after exactly vm_agent_retries tries, naming it", async () => {
      writeFileSync(log, "");
      const run = incusRunner({ vm_agent_retries: 3, vm_agent_delay: 0 });
      const step: Step = {
        desc: `default/${stopped}: wait for the agent`,
        waitAgent: { name: stopped, project: "default" },
      };
      await expect(run(step)).rejects.toThrow(
        `Cannot reach the agent of VM "default/${stopped}" after 3 tries; check \`incus info ${stopped} --project default\``,
      );
      expect(tries()).toBe(3);
    }, 60_000);

    test("an instance whose agent answers returns at the first try", async () => {
      writeFileSync(log, "");
      await waitAgent(running, "default", 5, 0);
      expect(tries()).toBe(1);
      expect(readFileSync(log, "utf8")).toContain(`exec ${running} --project default -- true`);
    }, 60_000);
  },
);

// Test audit 7.1: the image-download message, on a real failing incus call.
describe.skipIf(!live)("incusRunner's messages for real failing incus calls", () => {
  test("an image copy from a remote that cannot be reached says to use a local image", async () => {
    const run = incusRunner();
    const step: Step = {
      desc: "p: copy image",
      args: ["image", "copy", "nosuchremote:debian/13", "local:", "--target-project", "default"],
    };
    await expect(run(step)).rejects.toThrow('Cannot download image "nosuchremote:debian/13": ');
    await expect(run(step)).rejects.toThrow(
      "No image server is reachable? Use a local image: make apply-infra OS_IMAGE=anklume-busybox (or set os_image in infra.yml)",
    );
  });
  test("a failing local image copy keeps incus's own error", async () => {
    const run = incusRunner();
    const err = await run({
      desc: "p: copy image",
      args: ["image", "copy", "no-such-alias-here", "local:", "--target-project", "default"],
    }).then(
      () => "",
      (e: Error) => e.message,
    );
    expect(err).not.toBe("");
    expect(err).not.toContain("No image server is reachable");
  });
});
