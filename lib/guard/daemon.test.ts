/**
 * lib/guard/daemon.ts. The default start is only exercised where Incus
 * already answers, so the test never starts a daemon of its own on this
 * machine; a given start command is any shell command.
 */
import { expect, test } from "bun:test";
import { incusOrSkip } from "../../tests/helpers.ts";
import { hasSystemd, incusdGroup, startIncus } from "./daemon.ts";
import type { GuardLog } from "./log.ts";

function memoryLog() {
  const lines: [string, string][] = [];
  const log: GuardLog = {
    line: (m, level = "info") => lines.push([level, m]),
    note: (m) => lines.push(["note", m]),
  };
  return { lines, log };
}

test("incusdGroup: incus-admin when /etc/group has that group, else root", () => {
  expect(incusdGroup("root:x:0:\nincus-admin:x:994:alice\n")).toBe("incus-admin");
  expect(incusdGroup("root:x:0:\nincus:x:995:\nmy-incus-admin:x:9:\n")).toBe("root");
});

test("startIncus runs a given command through sh: true when it exits 0, else false with its exit code and stderr", async () => {
  const ok = memoryLog();
  expect(await startIncus(ok.log, "test 1 -eq 1 && exit 0")).toBe(true);
  expect(ok.lines).toEqual([["info", "starting Incus with: test 1 -eq 1 && exit 0"]]);
  const bad = memoryLog();
  expect(await startIncus(bad.log, "echo 'no incusd here' >&2; exit 3")).toBe(false);
  expect(bad.lines).toEqual([
    ["info", "starting Incus with: echo 'no incusd here' >&2; exit 3"],
    ["error", "the start command failed (exit 3): no incusd here"],
  ]);
});

const live = await incusOrSkip("lib/guard/daemon.test.ts");

test.skipIf(!live)(
  "startIncus without a command leaves a running Incus alone and says so (skipped only without an Incus daemon; required under CI)",
  async () => {
    const { lines, log } = memoryLog();
    expect(await startIncus(log)).toBe(true);
    expect(lines).toEqual([
      [
        "info",
        hasSystemd()
          ? "Incus is already active: checking only"
          : "Incus is already running: checking only",
      ],
    ]);
  },
);
