import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { resolveInstance, runPool, type SnapInstance } from "./ops.ts";

/** The fixed default seed replays CI's cases; FC_SEED=<n> explores others (test audit 6.5). */
const SEED = Number(process.env.FC_SEED ?? 20261125);

const inst = (name: string, project: string): SnapInstance => ({
  name,
  project,
  status: "Running",
  type: "container",
  snapshots: null,
});

describe("resolveInstance", () => {
  const all = [
    inst("001-pro-dev", "001-pro"),
    inst("001-lab-a", "001-lab"),
    inst("002-lab-a", "002-lab"),
    inst("lab-a", "default"),
    inst("plain", "default"),
  ];

  test("an exact Incus name wins over a short name", () => {
    expect(resolveInstance(all, "lab-a").project).toBe("default");
    expect(resolveInstance(all, "001-lab-a").project).toBe("001-lab");
  });

  test("a short name from infra.yml finds the one NNN-prefixed instance", () => {
    expect(resolveInstance(all, "pro-dev")).toEqual(inst("001-pro-dev", "001-pro"));
  });

  test("several prefixed matches are an error that lists them; --project narrows", () => {
    const without = all.filter((i) => i.name !== "lab-a");
    expect(() => resolveInstance(without, "lab-a")).toThrow(
      /001-lab-a \(project 001-lab\), 002-lab-a \(project 002-lab\)/,
    );
    expect(resolveInstance(without, "lab-a", "002-lab").name).toBe("002-lab-a");
  });

  test("an unknown name is an error that says where to look", () => {
    expect(() => resolveInstance(all, "nope")).toThrow(/Cannot find instance "nope".*snap-list/);
    expect(() => resolveInstance(all, "pro-dev", "default")).toThrow(/in project "default"/);
  });
});

describe("runPool", () => {
  test("never runs more than `jobs` at once, runs every item once, keeps results in order", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 3 })), { maxLength: 30 }),
        fc.integer({ min: 1, max: 8 }),
        async (cases, jobs) => {
          // The delays come from the generator, so a failing seed replays exactly.
          const fails = cases.map(([f]) => f);
          let running = 0;
          let peak = 0;
          const seen: number[] = [];
          const items = cases.map(([f, ms], i) => ({ i, f, ms }));
          const results = await runPool(items, jobs, async (x) => {
            running++;
            peak = Math.max(peak, running);
            await new Promise((r) => setTimeout(r, x.ms));
            seen.push(x.i);
            running--;
            if (x.f) throw new Error(`item ${x.i}`);
          });
          expect(peak).toBeLessThanOrEqual(jobs);
          expect(seen.sort((a, b) => a - b)).toEqual(items.map((x) => x.i));
          expect(results.map((r) => r.item.i)).toEqual(items.map((x) => x.i));
          expect(results.map((r) => !r.ok)).toEqual(fails);
          for (const r of results) if (!r.ok) expect(r.error).toBe(`item ${r.item.i}`);
        },
      ),
      { seed: SEED, numRuns: 60 },
    );
  });
});
