/**
 * `self` for real: scripts/snap.ts runs inside a Debian container that sees
 * the host's Incus socket (a proxy device) and has bun, the incus client and
 * the repository mounted, as the anklume controller does. The container and
 * its project are deleted in afterAll.
 *
 * Each test stands on its own: beforeAll waits until the socket answers from
 * inside and takes the snapshot "base" from the host, so a failure of one test
 * (or `-t` picking one) does not change what another checks.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, realpathSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import * as v from "valibot";
import { incusJson, incusRaw, incusRun } from "../lib/incus/client.ts";
import { createProject, destroy, REPO, snapshotsOf } from "./fixtures/snap-fixture.ts";
import { incusOrSkip, uniq } from "./helpers.ts";

const SLOW = 120_000;
const live = await incusOrSkip("tests/snap-self.test.ts");
const u = uniq();
const P = `sns${u}`;
const C = `001-self${u}`;
const IMAGE = process.env.ANKLUME_TEST_DEBIAN_IMAGE ?? "anklume-debian12";
const SOCKET = "/run/incus.socket";

/** Run sh inside the container as the controller would, with stdin text. */
async function inside(script: string, input = "") {
  return incusRaw(
    [
      "exec",
      C,
      "--project",
      P,
      "--env",
      `INCUS_SOCKET=${SOCKET}`,
      "--cwd",
      "/repo",
      "--",
      "sh",
      "-c",
      script,
    ],
    { input: `${input}\n` },
  );
}

/** Run sh inside the container from the host; throws when it fails. */
const sh = async (script: string) =>
  (await incusRun(["exec", C, "--project", P, "--", "sh", "-c", script], { input: "\n" })).stdout;

/** The entries of /root, one a line; throws when the container does not answer. */
const files = () => sh("ls -a /root");

const StatusSchema = v.array(v.looseObject({ name: v.string(), status: v.string() }));
async function status(): Promise<string | undefined> {
  const [inst] = await incusJson(["list", `^${C}$`, "--project", P], StatusSchema);
  return inst?.status;
}

/** Poll `check` every 500 ms for up to `ms`; true as soon as it holds. */
async function until(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return true;
    await Bun.sleep(500);
  }
  return false;
}

/** /root as it was when "base" was taken. */
let baseFiles = "";

beforeAll(async () => {
  if (!live) return;
  await createProject(P);
  await incusRun(["init", IMAGE, C, "--project", P], { input: "\n", timeout: "120s" });
  const dev = (name: string, ...kv: string[]) =>
    incusRun(["config", "device", "add", C, name, ...kv, "--project", P], { input: "\n" });
  await dev(
    "incus",
    "proxy",
    "connect=unix:/var/lib/incus/unix.socket",
    `listen=unix:${SOCKET}`,
    "bind=container",
    "uid=0",
    "gid=0",
    "mode=0660",
  );
  await dev("bun", "disk", `source=${realpathSync(process.execPath)}`, "path=/usr/local/bin/bun");
  const incusBin = realpathSync(
    (process.env.PATH ?? "/usr/bin")
      .split(":")
      .map((d) => join(d, "incus"))
      .find((p) => existsSync(p)) ?? "/usr/bin/incus",
  );
  await dev("incusbin", "disk", `source=${incusBin}`, "path=/usr/local/bin/incus");
  await dev("repo", "disk", `source=${REPO}`, "path=/repo", "readonly=true");
  await incusRun(["start", C, "--project", P], { input: "\n", timeout: "60s" });
  // Every test needs the daemon from inside: say so once, with what was seen, if it never answers.
  const answers = await until(
    async () => (await inside("incus query /1.0 >/dev/null")).exitCode === 0,
    60_000,
  );
  if (!answers) {
    const seen = await inside(`ls -la ${SOCKET}; incus query /1.0`);
    const log = await incusRaw(["info", C, "--project", P, "--show-log"]);
    throw new Error(
      `the Incus socket does not answer inside ${C} after 60 s: ${seen.stdout}${seen.stderr}\n${log.stdout}`,
    );
  }
  await sh("echo base > /root/at-base");
  await incusRun(["snapshot", "create", C, "base", "--project", P], { timeout: "120s" });
  baseFiles = await files();
}, 300_000);

afterAll(async () => {
  if (live) await destroy([[C, P]], [P]);
}, 60_000);

describe.if(live)("self inside a real instance that sees the Incus socket", () => {
  // Matrix: SN-2-003
  test(
    "snap create self snapshots the instance it runs in, found by its hostname",
    async () => {
      expect((await sh("hostname")).trim()).toBe(C);
      // On a `dir` pool Incus freezes the container, this command included,
      // while it copies the root file system.
      const r = await inside("bun scripts/snap.ts create self fromself");
      expect(r.stderr).toContain(`Creating snapshot "fromself" of ${C} (project ${P})...`);
      expect(r.stderr).toContain(`Done: ${C}/fromself`);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(await snapshotsOf(C, P)).toEqual(["base", "fromself"]);
    },
    SLOW,
  );

  test(
    "restore self answered 'no' aborts with exit 1 and changes nothing",
    async () => {
      await sh("echo x > /root/after-no");
      const before = await snapshotsOf(C, P);
      const r = await inside("bun scripts/snap.ts restore self base", "no");
      expect(r.stderr).toContain(`WARNING: ${C} is the instance this command runs in.`);
      expect(r.stderr).toContain("Type 'yes' to confirm");
      expect(r.stderr).toContain("Aborted.");
      expect(r.stderr).not.toContain(`Restoring ${C}`);
      expect(r.exitCode).toBe(1);
      expect((await files()).split("\n")).toContain("after-no");
      expect(await snapshotsOf(C, P)).toEqual(before);
      expect(await status()).toBe("Running");
    },
    SLOW,
  );

  // Matrix: SN-3-001
  test(
    "restore self --force restores the instance, ending the session that asked",
    async () => {
      await sh("echo x > /root/after-force");
      expect((await files()).split("\n")).toContain("after-force");
      const before = await snapshotsOf(C, P);
      // The restore stops the container, this session included: its exit code
      // is whatever a killed session gets, so the output and the effect are checked.
      const r = await inside("bun scripts/snap.ts restore --force self base");
      expect(r.stderr).toContain(`Restoring ${C} (project ${P}) to snapshot "base"...`);
      expect(r.stderr).not.toContain("error:");
      expect(r.stderr).not.toContain("Type 'yes' to confirm");
      // Back and answering, with /root exactly as it was at "base".
      const back = await until(
        async () => (await status()) === "Running" && (await files()) === baseFiles,
        60_000,
      );
      expect(await status()).toBe("Running");
      expect(await files()).toBe(baseFiles);
      expect(back).toBe(true);
      expect(baseFiles.split("\n")).toContain("at-base");
      expect(await snapshotsOf(C, P)).toEqual(before);
    },
    SLOW,
  );
});
