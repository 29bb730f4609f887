import { afterAll, describe, expect, test } from "bun:test";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { quiet, recordArgs, recordedArgs, recordFile, speculate } from "./speculate.ts";

// A cache of its own (bun runs every test file in one process: put it back after).
const saved = { dir: process.env.ANKLUME_CACHE_DIR, off: process.env.ANKLUME_NO_CACHE };
const root = mkdtempSync(join(tmpdir(), "speculate-"));
process.env.ANKLUME_CACHE_DIR = join(root, "cache");
delete process.env.ANKLUME_NO_CACHE;
afterAll(() => {
  for (const [k, x] of [
    ["ANKLUME_CACHE_DIR", saved.dir],
    ["ANKLUME_NO_CACHE", saved.off],
  ] as const) {
    if (x === undefined) delete process.env[k];
    else process.env[k] = x;
  }
  rmSync(root, { recursive: true, force: true });
});

const ARGS = ["apply", "--ansible", "--base-dir", "/srv/infra", "--knobs", '{"a": null}'];

describe("recordArgs / recordedArgs", () => {
  test("keep the last run's arguments per tree; rewrite only on a change", () => {
    expect(recordedArgs("/srv/infra")).toBeUndefined();
    recordArgs("/srv/infra", ARGS);
    expect(recordedArgs("/srv/infra")).toEqual(ARGS);
    expect(recordedArgs("/srv/other")).toBeUndefined();
    const file = recordFile("/srv/infra");
    utimesSync(file, new Date(0), new Date(0));
    recordArgs("/srv/infra", ARGS);
    expect(existsSync(file) && readFileSync(file, "utf8")).toBe(JSON.stringify({ args: ARGS }));
    expect(statSync(file).mtimeMs).toBe(0);
    recordArgs("/srv/infra", [...ARGS, "--limited"]);
    expect(recordedArgs("/srv/infra")).toEqual([...ARGS, "--limited"]);
  });

  test("an unreadable record is none; ANKLUME_NO_CACHE=1 neither reads nor writes", () => {
    writeFileSync(recordFile("/srv/bad"), "{not json");
    expect(recordedArgs("/srv/bad")).toBeUndefined();
    writeFileSync(recordFile("/srv/bad"), JSON.stringify({ args: ["apply", 3] }));
    expect(recordedArgs("/srv/bad")).toBeUndefined();
    process.env.ANKLUME_NO_CACHE = "1";
    try {
      expect(recordedArgs("/srv/infra")).toBeUndefined();
      recordArgs("/srv/none", ARGS);
    } finally {
      delete process.env.ANKLUME_NO_CACHE;
    }
    expect(existsSync(recordFile("/srv/none"))).toBe(false);
  });
});

describe("quiet", () => {
  test.each([
    ['{"changed":false,"failed":false,"report":{}}', true],
    ['{"changed":true,"failed":false,"report":{}}', false],
    ['{"changed":false,"failed":true,"report":{},"errors":["x"]}', false],
    ['{"changed":false,"failed":false,"report":{"knobs":{"warnings":["w"]}}}', false],
    ['{"changed":false,"failed":false}', false],
    ["not json", false],
  ])("%s: %p", (line, want) => {
    expect(quiet(line)).toBe(want);
  });
});

describe("speculate", () => {
  // The Makefile makes the run's directory before it starts the speculation.
  const path = (name: string) => join(root, "tmp", `anklume-speculation.${name}`);
  const out = (name: string) => {
    mkdirSync(path(name), { recursive: true });
    return path(name);
  };

  test("a run that changes nothing leaves argv (one per line), the line and quiet, then done", async () => {
    recordArgs("/srv/infra", ARGS);
    const seen: string[][] = [];
    await speculate("/srv/infra", out("1"), async (args) => {
      seen.push(args);
      return '{"changed":false,"failed":false,"report":{}}';
    });
    expect(seen).toEqual([ARGS]);
    expect(readFileSync(join(out("1"), "argv"), "utf8")).toBe(`${ARGS.join("\n")}\n`);
    expect(readFileSync(join(out("1"), "result"), "utf8")).toBe(
      '{"changed":false,"failed":false,"report":{}}\n',
    );
    expect(readdirSync(out("1")).sort()).toEqual(["argv", "done", "quiet", "result"]);
  });

  test("a line with something to show (an orphan) is left without quiet: the task prints it", async () => {
    recordArgs("/srv/infra", ARGS);
    const line = '{"changed":false,"failed":false,"report":{"profiles":{"orphans":["p"]}}}';
    await speculate("/srv/infra", out("7"), async () => line);
    expect(readFileSync(join(out("7"), "result"), "utf8")).toBe(`${line}\n`);
    expect(readdirSync(out("7")).sort()).toEqual(["argv", "done", "result"]);
  });

  test("no line, a failing run, no record, or an argument with a newline: done alone", async () => {
    recordArgs("/srv/infra", ARGS);
    await speculate("/srv/infra", out("2"), async () => undefined);
    await speculate("/srv/infra", out("3"), async () => {
      throw new Error("daemon gone");
    });
    await speculate("/srv/unrecorded", out("4"), async () => "{}");
    recordArgs("/srv/nl", ["apply", "--knobs", "{\n}"]);
    await speculate("/srv/nl", out("5"), async () => "{}");
    for (const n of ["2", "3", "4", "5"]) expect(readdirSync(out(n))).toEqual(["done"]);
  });

  test("a directory already removed (the apply ended first) is not made again", async () => {
    recordArgs("/srv/infra", ARGS);
    const gone = path("8");
    let ran = false;
    await speculate("/srv/infra", gone, async () => {
      ran = true;
      return '{"changed":false,"failed":false,"report":{}}';
    });
    expect(ran).toBe(false);
    expect(existsSync(gone)).toBe(false);
  });

  test("directories of earlier runs older than an hour are removed; recent ones and others stay", async () => {
    const parent = join(root, "tmp");
    for (const n of ["old", "new"]) out(n);
    mkdirSync(join(parent, "unrelated"), { recursive: true });
    const hourAgo = new Date(Date.now() - 3_700_000);
    utimesSync(path("old"), hourAgo, hourAgo);
    utimesSync(join(parent, "unrelated"), hourAgo, hourAgo);
    await speculate("/srv/unrecorded", out("6"), async () => undefined);
    expect(existsSync(path("old"))).toBe(false);
    expect(existsSync(path("new"))).toBe(true);
    expect(existsSync(join(parent, "unrelated"))).toBe(true);
  });
});
