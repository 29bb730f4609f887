/**
 * `self` for real: scripts/snap.ts runs inside a Debian container that sees
 * the host's Incus socket (a proxy device) and has bun, the incus client and
 * the repository mounted, as the anklume controller does. The container and
 * its project are deleted in afterAll.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, realpathSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { incusRaw, incusRun } from "../lib/incus/client.ts";
import { createProject, destroy, REPO, snapshotsOf } from "./fixtures/snap-fixture.ts";
import { incusOrSkip, uniq } from "./helpers.ts";

setDefaultTimeout(120_000);
const live = await incusOrSkip("tests/snap-self.test.ts");
const u = uniq();
const P = `sns${u}`;
const C = `001-self${u}`;
const IMAGE = process.env.ANKLUME_TEST_DEBIAN_IMAGE ?? "anklume-debian12";

/** Run sh inside the container as the controller would, with stdin text. */
async function inside(script: string, input = "") {
  return incusRaw(
    [
      "exec",
      C,
      "--project",
      P,
      "--env",
      "INCUS_SOCKET=/run/incus.socket",
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

const files = async () =>
  (await incusRun(["exec", C, "--project", P, "--", "ls", "/root"], { input: "\n" })).stdout;

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
    "listen=unix:/run/incus.socket",
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
}, 180_000);

afterAll(async () => {
  if (live) await destroy([[C, P]], [P]);
}, 60_000);

describe.if(live)("self inside a real instance that sees the Incus socket", () => {
  test("snap create self snapshots the instance it runs in, found by its hostname", async () => {
    const r = await inside("bun scripts/snap.ts create self base");
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain(`Done: ${C}/base`);
    expect(await snapshotsOf(C, P)).toEqual(["base"]);
  });

  test("restore self answered 'no' aborts with exit 1 and changes nothing", async () => {
    await incusRun(["exec", C, "--project", P, "--", "sh", "-c", "echo x > /root/after"], {
      input: "\n",
    });
    const r = await inside("bun scripts/snap.ts restore self base", "no");
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("Type 'yes' to confirm");
    expect(r.stderr).toContain("Aborted.");
    expect(await files()).toContain("after");
  });

  test("restore self --force restores the instance, ending the session that asked", async () => {
    await inside("bun scripts/snap.ts restore --force self base");
    // The restore stops the container, session included; wait until it runs again.
    let out = "";
    for (let i = 0; i < 60; i++) {
      const r = await incusRaw(["exec", C, "--project", P, "--", "ls", "/root"], { input: "\n" });
      if (r.exitCode === 0) {
        out = r.stdout;
        break;
      }
      await Bun.sleep(500);
    }
    expect(out).not.toContain("after");
  });
});
