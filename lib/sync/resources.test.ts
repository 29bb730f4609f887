import { describe, expect, test } from "bun:test";
import { type AllocMachine, allocate, formatSize, parseSize } from "./resources.ts";

const GIB = 1024 ** 3;
const ms = (weights: number[]): AllocMachine[] =>
  weights.map((w, i) => ({ name: `m${i}`, config: {}, weight: w }));

describe("allocate (generator-contract §8 worked numbers)", () => {
  test("16 CPU / 64 GiB, weights 3/1/2/1 give allowances 34/11/22/11%", () => {
    const m = ms([3, 1, 2, 1]);
    expect(allocate({}, { cpu: 16, memory: 64 * GIB }, m).error).toBeUndefined();
    expect(m.map((x) => x.config["limits.cpu.allowance"])).toEqual(["34%", "11%", "22%", "11%"]);
  });
  test("memory weights 3/1/1/2/1 give 19660/6553/6553/13107/6553 MiB, soft enforce", () => {
    const m = ms([3, 1, 1, 2, 1]);
    allocate({}, { cpu: 16, memory: 64 * GIB }, m);
    expect(m.map((x) => x.config["limits.memory"])).toEqual([
      "19660MiB",
      "6553MiB",
      "6553MiB",
      "13107MiB",
      "6553MiB",
    ]);
    expect(m.every((x) => x.config["limits.memory.enforce"] === "soft")).toBe(true);
  });
  test("3 CPU / 3 GiB and 5 machines give 16% and 491MiB each", () => {
    const m = ms([1, 1, 1, 1, 1]);
    allocate({}, { cpu: 3, memory: 3 * GIB }, m);
    expect(m[0]?.config).toEqual({
      "limits.cpu.allowance": "16%",
      "limits.memory": "491MiB",
      "limits.memory.enforce": "soft",
    });
  });
  test("an explicit memory limit next to auto shares overcommits and fails unless allowed", () => {
    const m = ms([1, 1]);
    (m[0] as AllocMachine).config["limits.memory"] = "8GiB";
    const r = allocate({}, { cpu: 4, memory: 16 * GIB }, m);
    expect(r.error).toContain("Memory:");
    const m2 = ms([1, 1]);
    (m2[0] as AllocMachine).config["limits.memory"] = "8GiB";
    const r2 = allocate({ overcommit: true }, { cpu: 4, memory: 16 * GIB }, m2);
    expect(r2.error).toBeUndefined();
    expect(r2.warnings[0]).toContain("Resource overcommit");
  });
  test("count mode writes whole cores", () => {
    const m = ms([1, 1]);
    allocate({ cpu_mode: "count", mode: "equal" }, { cpu: 8, memory: 8 * GIB }, m);
    expect(m[0]?.config["limits.cpu"]).toBe("3");
  });
  test("no host figures: a warning, no keys", () => {
    const m = ms([1]);
    expect(allocate({}, null, m).warnings[0]).toContain("Could not detect");
    expect(m[0]?.config).toEqual({});
  });
});

test("parseSize and formatSize", () => {
  expect(parseSize("4GiB")).toBe(4 * GIB);
  expect(parseSize("1GB")).toBe(1e9);
  expect(parseSize("512")).toBe(512);
  expect(parseSize("lots")).toBeNull();
  expect(formatSize(2 * GIB)).toBe("2GiB");
  expect(formatSize(1.5 * GIB)).toBe("1536MiB");
});

test("the overcommit message does not round both sides to the same number (D17)", () => {
  // 2 cores, 20% reserved: 1.6 available; toFixed(0) printed "2 cores > 2 available".
  const m: AllocMachine[] = [{ name: "a", config: { "limits.cpu": "2" }, weight: 1 }];
  expect(allocate({}, { cpu: 2, memory: 8 * GIB }, m).error).toBe(
    "Resource overcommit: CPU: 2 cores > 1.6 available",
  );
});
