import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import {
  formatScores,
  MUTATION_MODULES,
  scoreOf,
  selectModules,
  strykerConfig,
} from "./mutation.ts";

describe("MUTATION_MODULES", () => {
  test("every module and its tests exist, the first test file beside its module", () => {
    for (const m of MUTATION_MODULES) {
      expect(existsSync(m.file), m.file).toBe(true);
      expect(m.tests[0]).toBe(m.file.replace(/\.ts$/, ".test.ts"));
      for (const t of m.tests) expect(existsSync(t), t).toBe(true);
    }
    expect(new Set(MUTATION_MODULES.map((m) => m.name)).size).toBe(MUTATION_MODULES.length);
  });
});

describe("selectModules", () => {
  test("an empty list selects every module; a list selects those, in its order", () => {
    expect(selectModules(undefined)).toEqual(MUTATION_MODULES);
    expect(selectModules(" ")).toEqual(MUTATION_MODULES);
    expect(selectModules("naming, cidr").map((m) => m.name)).toEqual(["naming", "cidr"]);
  });
  test("an unknown name throws, naming it and the known ones", () => {
    expect(() => selectModules("cidr,nope")).toThrow(
      /Cannot mutate module "nope": unknown; pick from cidr, naming/,
    );
  });
});

describe("strykerConfig", () => {
  test("mutates the module only, runs only its tests, one worker, incremental in the report dir", () => {
    const m = { name: "cidr", file: "lib/core/cidr.ts", tests: ["lib/core/cidr.test.ts"] };
    const c = strykerConfig(m, "reports/mutation", "/tmp/s");
    expect(c.mutate).toEqual(["lib/core/cidr.ts"]);
    expect(c.testRunner).toBe("command");
    expect(c.commandRunner).toEqual({ command: "bun test --bail lib/core/cidr.test.ts" });
    expect(c.concurrency).toBe(1);
    expect(c.incremental).toBe(true);
    expect(c.incrementalFile).toBe("reports/mutation/cidr.incremental.json");
    expect(c.jsonReporter).toEqual({ fileName: "reports/mutation/cidr.json" });
    expect(c.tempDirName).toBe("/tmp/s");
  });
});

describe("scoreOf", () => {
  const report = {
    files: {
      "lib/core/cidr.ts": {
        mutants: [
          { status: "Killed" },
          { status: "Killed" },
          { status: "Timeout" },
          { status: "Survived" },
          { status: "NoCoverage" },
          { status: "CompileError" },
        ],
      },
      "lib/other.ts": { mutants: [{ status: "Survived" }] },
    },
  };
  test("counts each status of the file's mutants; errors do not count in the score", () => {
    expect(scoreOf(report, "lib/core/cidr.ts")).toEqual({
      mutants: 6,
      killed: 2,
      timeout: 1,
      survived: 1,
      noCoverage: 1,
      errors: 1,
      score: 60,
    });
  });
  test("finds the file by an absolute path's suffix; a file without mutants scores 0", () => {
    const abs = { files: { "/w/lib/core/cidr.ts": report.files["lib/core/cidr.ts"] } };
    expect(scoreOf(abs, "lib/core/cidr.ts").killed).toBe(2);
    expect(scoreOf(report, "lib/none.ts")).toMatchObject({ mutants: 0, score: 0 });
  });
  test("rounds the score to one decimal", () => {
    const r = {
      files: {
        f: { mutants: [{ status: "Killed" }, { status: "Killed" }, { status: "Survived" }] },
      },
    };
    expect(scoreOf(r, "f").score).toBe(66.7);
  });
});

describe("formatScores", () => {
  test("one aligned row per module with the score and the minutes ('-' when not run)", () => {
    const s = {
      mutants: 69,
      killed: 65,
      timeout: 0,
      survived: 4,
      noCoverage: 0,
      errors: 0,
      score: 94.2,
    };
    const text = formatScores([
      { name: "cidr", score: s, minutes: 0.35 },
      { name: "naming", score: { ...s, score: 100 } },
    ]);
    const lines = text.trimEnd().split("\n");
    expect(lines[0]).toMatch(
      /^module\s+mutants\s+killed\s+timeout\s+survived\s+no cover\s+errors\s+score\s+minutes$/,
    );
    expect(lines[1]).toMatch(
      /^cidr\s+69\s+65\s+0\s+4\s+0\s+0\s+94\.2%\s+0\.3$|^cidr\s+69\s+65\s+0\s+4\s+0\s+0\s+94\.2%\s+0\.4$/,
    );
    expect(lines[2]).toMatch(/^naming\s+69\s+65\s+0\s+4\s+0\s+0\s+100\.0%\s+-$/);
    expect(new Set(lines.map((l) => l.length)).size).toBe(1);
  });
});
