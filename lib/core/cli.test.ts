import { afterEach, expect, test } from "bun:test";
import process from "node:process";
import { parseCli, topComment, UsageError, useColour } from "./cli.ts";

const saved = { NO_COLOR: process.env.NO_COLOR, TERM: process.env.TERM };
afterEach(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

test("parseCli parses flags and turns unknown ones into a UsageError (exit 2)", () => {
  const opts = { json: { type: "boolean" }, "base-dir": { type: "string" } } as const;
  const r = parseCli(["a.yml", "--json", "--base-dir", "out"], opts);
  expect(r.positionals).toEqual(["a.yml"]);
  expect(r.values).toEqual({ json: true, "base-dir": "out" });
  expect(() => parseCli(["--nope"], opts)).toThrow(UsageError);
  expect(() => parseCli(["--base-dir"], opts)).toThrow(UsageError);
});

test("useColour is off for NO_COLOR, TERM=dumb and anything that is not a terminal", () => {
  const tty = { isTTY: true } as NodeJS.WriteStream;
  delete process.env.NO_COLOR;
  process.env.TERM = "xterm";
  expect(useColour(tty)).toBe(true);
  expect(useColour({ isTTY: false } as NodeJS.WriteStream)).toBe(false);
  process.env.NO_COLOR = "1";
  expect(useColour(tty)).toBe(false);
  delete process.env.NO_COLOR;
  process.env.TERM = "dumb";
  expect(useColour(tty)).toBe(false);
});

test("topComment reads a script's help from its top comment, in both comment styles", () => {
  expect(topComment(new URL("../../scripts/generate.ts", import.meta.url).href)).toStartWith(
    "Usage: generate.ts [options] <infra_file>",
  );
  expect(topComment(new URL("../../scripts/nftables.ts", import.meta.url).href)).toStartWith(
    "Usage:",
  );
});

test("D18: a negative number after an option that takes a value is its value, for the script's range check", () => {
  const opts = {
    keep: { type: "string" },
    jobs: { type: "string", short: "j" },
    json: { type: "boolean" },
  } as const;
  expect(parseCli(["cleanup", "--keep", "-1"], opts).values.keep).toBe("-1");
  expect(parseCli(["-j", "-3", "x"], opts)).toMatchObject({
    values: { jobs: "-3" },
    positionals: ["x"],
  });
  expect(parseCli(["--keep", "-0.5"], opts).values.keep).toBe("-0.5");
  // Not after a boolean, and not a word: those stay errors.
  expect(() => parseCli(["--json", "-1"], opts)).toThrow(UsageError);
  expect(() => parseCli(["--keep", "-x"], opts)).toThrow(UsageError);
  // After "--" everything is positional, as before.
  expect(parseCli(["--", "--keep", "-1"], opts).positionals).toEqual(["--keep", "-1"]);
});

test("D18: the advice for an argument that starts with '-' holds under Bun (no '--')", () => {
  const opts = { json: { type: "boolean" } } as const;
  let message = "";
  try {
    parseCli(["-x.yml"], opts);
  } catch (e) {
    message = (e as Error).message;
  }
  expect(message).toContain("Unknown option 'x'");
  expect(message).toContain("write it as './-name'");
  expect(message).not.toContain("after '--'");
});

test("D18: the scripts give their own range message for negative and huge numbers (exit 2)", () => {
  const root = new URL("../../", import.meta.url).pathname;
  for (const [script, args, message] of [
    ["snapshot-apply.ts", ["cleanup", "--keep", "-1"], "--keep must be a whole number >= 0"],
    ["snapshot-apply.ts", ["list", "--jobs", "-3"], "--jobs must be a whole number"],
    ["snapshot-apply.ts", ["list", "--jobs", "99999999999"], "--jobs must be a whole number"],
    ["incus-guard.ts", ["start", "--settle", "-1"], '--settle "-1"'],
  ] as const) {
    const r = Bun.spawnSync(["bun", `${root}scripts/${script}`, ...args], {
      env: { ...process.env, NO_COLOR: "1", ANKLUME_INCUS: "/nonexistent/incus" },
      timeout: 20_000,
    });
    const stderr = r.stderr.toString();
    expect(r.exitCode, `${script} ${args.join(" ")}`).toBe(2);
    expect(stderr).toContain(message);
    expect(stderr).not.toContain("ambiguous");
  }
});
