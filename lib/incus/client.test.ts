import { expect, test } from "bun:test";
import process from "node:process";
import { incusOrSkip } from "../../tests/helpers.ts";
import { incusRaw } from "./client.ts";
import { listInstances } from "./objects.ts";

const live = await incusOrSkip("lib/incus.test.ts");

test("incusRaw reports a failing command through exitCode, not an exception", async () => {
  process.env.ANKLUME_INCUS = "false";
  try {
    const r = await incusRaw(["anything"]);
    expect(r.exitCode).toBe(1);
  } finally {
    delete process.env.ANKLUME_INCUS;
  }
});

test("listInstances parses the daemon's answer", async () => {
  if (!live) return;
  const all = await listInstances();
  expect(Array.isArray(all)).toBe(true);
  for (const i of all) expect(typeof i.project).toBe("string");
});
