import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileEnv } from "../../../tests/helpers.ts";
import { freshStamp, writeStamp } from "./stamp.ts";

const dir = mkdtempSync(join(tmpdir(), "anklume-stamp-"));
fileEnv({ ANKLUME_CACHE_DIR: join(dir, "cache") }); // put back in afterAll: no leak to later files
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const inputs = { files: [["infra.yml", "a: 1\n"]] as [string, string][], context: "ctx" };
const out = join(dir, "out.yml");

test("a stamp is fresh only while inputs, context and outputs are unchanged", () => {
  writeFileSync(out, "generated\n");
  writeStamp(dir, inputs, {
    paths: [out],
    domains: ["d"],
    machines: ["m"],
    warnings: [],
    info: ["i"],
  });
  expect(freshStamp(dir, inputs)?.domains).toEqual(["d"]);
  expect(freshStamp(dir, { ...inputs, context: "other" })).toBeUndefined();
  expect(freshStamp(dir, { ...inputs, files: [["infra.yml", "a: 2\n"]] })).toBeUndefined();
  utimesSync(out, new Date(), new Date(Date.now() + 5000));
  expect(freshStamp(dir, inputs)).toBeUndefined();
});

test("ANKLUME_NO_CACHE=1 turns stamps off", () => {
  writeStamp(dir, inputs, { paths: [out], domains: [], machines: [], warnings: [], info: [] });
  process.env.ANKLUME_NO_CACHE = "1";
  try {
    expect(freshStamp(dir, inputs)).toBeUndefined();
  } finally {
    delete process.env.ANKLUME_NO_CACHE;
  }
  expect(freshStamp(dir, inputs)).toBeDefined();
});
