import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import * as v from "valibot";
import { incusOrSkip, uniq } from "../../tests/helpers.ts";
import { IncusError, incusJson, incusRaw, incusRun } from "./client.ts";

const live = await incusOrSkip("lib/incus/client.test.ts");
const missing = `anklume-no-such-project-${uniq()}`;

test.skipIf(!live)(
  "incusRaw reports a failing incus command through exitCode and stderr, not an exception",
  async () => {
    const r = await incusRaw(["project", "show", missing]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain("not found");
  },
);

test.skipIf(!live)(
  "incusRun throws an IncusError that names the command and holds incus's stderr",
  async () => {
    const err = await incusRun(["project", "show", missing]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IncusError);
    expect((err as IncusError).message).toContain(`incus project show ${missing} failed`);
    expect((err as IncusError).result.stderr).toContain("not found");
  },
);

test.skipIf(!live)(
  "incusJson parses through the schema and names the path of an unexpected answer",
  async () => {
    const projects = await incusJson(
      ["project", "list"],
      v.array(v.looseObject({ name: v.string() })),
    );
    expect(projects.map((p) => p.name)).toContain("default");
    await expect(
      incusJson(["project", "list"], v.array(v.looseObject({ name: v.number() }))),
    ).rejects.toThrow(/incus project list --format json: unexpected JSON at 0\.name/);
  },
);

test("a failure that is not Incus's veth race is returned at once, not retried", async () => {
  const log = join(mkdtempSync(join(tmpdir(), "incus-log-")), "calls");
  const prev = process.env.ANKLUME_INCUS_LOG;
  process.env.ANKLUME_INCUS_LOG = log;
  try {
    const r = await incusRaw(["network", "delete", `anklume-no-such-net-${uniq()}`]);
    expect(r.exitCode).not.toBe(0);
    expect(readFileSync(log, "utf8").trim().split("\n")).toHaveLength(1);
  } finally {
    if (prev === undefined) delete process.env.ANKLUME_INCUS_LOG;
    else process.env.ANKLUME_INCUS_LOG = prev;
  }
});
