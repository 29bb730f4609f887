import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileLog } from "./log.ts";

const dir = mkdtempSync(join(tmpdir(), "anklume-guard-log-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const STAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /;

test("FileLog shows each line tagged with the command and appends it timestamped, WARN:/ERROR: in the file", () => {
  const shown: string[] = [];
  const file = join(dir, "sub/guard.log"); // the directory is created
  const log = new FileLog("post-start", file, (l) => shown.push(l));
  log.line("deleted bridge br0");
  log.line("Incus does not answer", "warn");
  log.line("the gateway does not answer", "error");
  log.note("would write /x");
  expect(shown).toEqual([
    "incus-guard post-start: deleted bridge br0",
    "incus-guard post-start: warn: Incus does not answer",
    "incus-guard post-start: error: the gateway does not answer",
    "would write /x",
  ]);
  const lines = readFileSync(file, "utf8").trimEnd().split("\n");
  expect(lines.every((l) => STAMP.test(l))).toBe(true);
  expect(lines.map((l) => l.replace(STAMP, ""))).toEqual([
    "incus-guard[post-start]: deleted bridge br0",
    "incus-guard[post-start]: WARN: Incus does not answer",
    "incus-guard[post-start]: ERROR: the gateway does not answer",
  ]);
});

test("FileLog reports a log it cannot write once, with the fix, and keeps showing lines", () => {
  const shown: string[] = [];
  const notADir = join(dir, "plain-file");
  writeFileSync(notADir, "");
  const log = new FileLog("start", join(notADir, "guard.log"), (l) => shown.push(l));
  log.line("one");
  log.line("two", "error");
  expect(shown[0]).toBe("incus-guard start: one");
  expect(shown[1]).toStartWith(`incus-guard: cannot write the log ${join(notADir, "guard.log")} (`);
  expect(shown[1]).toEndWith("); set --log or ANKLUME_GUARD_LOG");
  expect(shown.slice(2)).toEqual(["incus-guard start: error: two"]);
});
