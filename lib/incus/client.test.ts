import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import * as v from "valibot";
import { incusOrSkip, uniq } from "../../tests/helpers.ts";
import {
  chooseReadVia,
  IncusError,
  incusGet,
  incusJson,
  incusRaw,
  incusRun,
  isLinkRace,
  readVia,
} from "./client.ts";

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
  const logDir = mkdtempSync(join(tmpdir(), "incus-log-"));
  const log = join(logDir, "calls");
  const prev = process.env.ANKLUME_INCUS_LOG;
  process.env.ANKLUME_INCUS_LOG = log;
  try {
    const r = await incusRaw(["network", "delete", `anklume-no-such-net-${uniq()}`]);
    expect(r.exitCode).not.toBe(0);
    expect(readFileSync(log, "utf8").trim().split("\n")).toHaveLength(1);
  } finally {
    if (prev === undefined) delete process.env.ANKLUME_INCUS_LOG;
    else process.env.ANKLUME_INCUS_LOG = prev;
    rmSync(logDir, { recursive: true, force: true });
  }
});

test("an input the command exits without reading is no uncaught EPIPE (a fake incus: `true`)", async () => {
  const prev = process.env.ANKLUME_INCUS;
  process.env.ANKLUME_INCUS = "true";
  try {
    // One in four of these broke the pipe before the fix (bun test counted
    // each as an error between tests); the exit code is all that matters.
    for (let i = 0; i < 200; i++) {
      expect((await incusRaw(["launch", "x"], { input: "\n" })).exitCode).toBe(0);
    }
  } finally {
    if (prev === undefined) delete process.env.ANKLUME_INCUS;
    else process.env.ANKLUME_INCUS = prev;
  }
});

describe("chooseReadVia: reads go through the socket only where the incus CLI would go", () => {
  const dir = mkdtempSync(join(tmpdir(), "incus-via-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const socket = join(dir, "unix.socket");
  writeFileSync(socket, ""); // stands for the daemon's socket: only its presence is checked
  const conf = (remote: string | null) => {
    const d = mkdtempSync(join(dir, "conf-"));
    if (remote !== null)
      writeFileSync(join(d, "config.yml"), `default-remote: ${remote}\nremotes: {}\n`);
    return d;
  };

  test("the local daemon's socket when nothing says otherwise", () => {
    expect(chooseReadVia({ INCUS_SOCKET: socket, INCUS_CONF: conf(null) })).toEqual({ socket });
    expect(chooseReadVia({ INCUS_SOCKET: socket, INCUS_CONF: conf("local") })).toEqual({ socket });
    expect(chooseReadVia({ INCUS_DIR: dir, INCUS_CONF: conf('"local"') })).toEqual({ socket });
    for (const INCUS_REMOTE of ["", "local"])
      expect(chooseReadVia({ INCUS_SOCKET: socket, INCUS_CONF: conf(null), INCUS_REMOTE })).toEqual(
        {
          socket,
        },
      );
  });

  test("the CLI for a remote default, a fake binary, ANKLUME_INCUS_READS=cli or no socket", () => {
    const cli = { cli: true } as const;
    expect(chooseReadVia({ INCUS_SOCKET: socket, INCUS_CONF: conf("prod") })).toEqual(cli);
    expect(
      chooseReadVia({ INCUS_SOCKET: socket, INCUS_CONF: conf(null), INCUS_REMOTE: "lab" }),
    ).toEqual(cli);
    expect(chooseReadVia({ INCUS_SOCKET: socket, ANKLUME_INCUS: "false" })).toEqual(cli);
    expect(chooseReadVia({ INCUS_SOCKET: socket, ANKLUME_INCUS_READS: "cli" })).toEqual(cli);
    expect(chooseReadVia({ INCUS_SOCKET: join(dir, "none"), INCUS_CONF: conf(null) })).toEqual(cli);
  });
});

test.skipIf(!live)(
  "incusGet reads the same through the socket and the CLI, and names the path of a daemon error",
  async () => {
    const schema = v.array(v.looseObject({ name: v.string(), config: v.unknown() }));
    const how = readVia();
    expect("socket" in how, "this host reads through the socket").toBe(true);
    const path = "/1.0/projects?recursion=1";
    const [bySocket, byCli] = await Promise.all([
      incusGet(path, schema, how),
      incusGet(path, schema, { cli: true }),
    ]);
    expect(bySocket).toEqual(byCli);
    expect(bySocket.map((p) => p.name)).toContain("default");
    for (const via of [how, { cli: true } as const]) {
      const err = await incusGet(`/1.0/projects/${missing}`, v.unknown(), via).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(IncusError);
      expect((err as IncusError).message).toContain(`incus query /1.0/projects/${missing} failed`);
      expect((err as IncusError).message).toContain("not found");
    }
  },
);

describe("isLinkRace: Incus's bridge-ports race, retried", () => {
  test("a vanished veth, or any other vanished link, is the race", () => {
    const line = (name: string) =>
      `Error: Failed to delete bridge children interfaces: Failed to run: ip -d -j link show ${name}: exit status 1 (Device "${name}" does not exist.)`;
    expect(isLinkRace(line("veth3f2a9c1b"))).toBe(true);
    expect(isLinkRace(line("tap0"))).toBe(true);
    expect(isLinkRace(line("anktest-v1"))).toBe(true);
  });
  test("another failure of ip, or of Incus, is not", () => {
    expect(isLinkRace("Error: Failed to run: ip link add br0 type bridge: exit status 2")).toBe(
      false,
    );
    expect(isLinkRace("Error: Network is in use")).toBe(false);
    expect(isLinkRace("")).toBe(false);
  });
});
