/**
 * The network safety net of make apply, in a network namespace the test
 * builds (never the host's routes): a fake playbook (ANSIBLE_PLAYBOOK) removes
 * a route during make apply-infra; the wrapper catches it, prints how to put
 * it back and stops make. Also: nothing changed passes, the skip switch
 * skips, the script's own exit codes.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { $ } from "zx";
import { makeWorkdir, removeWorkdir, write } from "./apply-helpers.ts";
import { netnsOrSkip, uniq } from "./helpers.ts";

const ok = await netnsOrSkip("tests/network-check.test.ts");
const ns = `anc${uniq()}`;
let dir = "";
const q = $({ quiet: true });
const ROUTE = "198.51.100.0/24 via 198.18.5.2 dev d0";

/** make apply-infra inside the namespace, with a fake playbook. */
async function applyIn(fake: string, env: Record<string, string> = {}) {
  const r = await $({
    cwd: dir,
    nothrow: true,
    quiet: true,
    env: {
      ...process.env,
      NO_COLOR: "1",
      ANKLUME_SKIP_NETWORK_CHECK: "",
      ANKLUME_NETWORK_BACKUP_DIR: join(dir, "bk"),
      ...env,
    },
  })`ip netns exec ${ns} make --no-print-directory apply-infra ANSIBLE_PLAYBOOK=${join(dir, fake)} SKIP_SNAPSHOT=1`;
  return { code: r.exitCode ?? 1, out: r.stdout + r.stderr };
}
const check = (args: string[]) =>
  $({
    cwd: dir,
    nothrow: true,
    quiet: true,
    env: { ...process.env, NO_COLOR: "1" },
  })`ip netns exec ${ns} bun scripts/network-check.ts ${args}`;

describe.skipIf(!ok)("the apply's network safety net, in a namespace of its own", () => {
  beforeAll(async () => {
    await q`ip netns add ${ns}`;
    await q`ip -n ${ns} link set lo up`;
    await q`ip -n ${ns} link add d0 type veth peer name d1`;
    await q`ip -n ${ns} link set d1 up`;
    await q`ip -n ${ns} link set d0 up`;
    await q`ip -n ${ns} addr add 198.18.5.10/24 dev d0`;
    await q`ip -n ${ns} route add default via 198.18.5.1`;
    await q`ip -n ${ns} route add 198.51.100.0/24 via 198.18.5.2`;
    dir = makeWorkdir("anklume-netcheck");
    mkdirSync(join(dir, "inventory"));
    write(join(dir, "inventory", "x.yml"), "x:\n  hosts: {}\n");
    write(join(dir, "breaks.sh"), "#!/bin/sh\nip route del 198.51.100.0/24\n");
    write(join(dir, "noop.sh"), "#!/bin/sh\nexit 0\n");
    chmodSync(join(dir, "breaks.sh"), 0o755);
    chmodSync(join(dir, "noop.sh"), 0o755);
  });

  afterAll(async () => {
    await $({ quiet: true, nothrow: true })`ip netns delete ${ns}`;
    if (dir) removeWorkdir(dir);
  });

  test("an apply that changes nothing passes the check", async () => {
    const r = await applyIn("noop.sh");
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain("Network state recorded in");
    expect(r.out).toContain("Host network unchanged");
    expect(r.out).toContain("apply-infra complete");
  });

  test("a route removed during the apply is caught: make stops and says how to put it back", async () => {
    // Matrix: AP-009
    const r = await applyIn("breaks.sh");
    expect(r.code, r.out).not.toBe(0);
    expect(r.out).toContain(`route gone:     ${ROUTE}`);
    expect(r.out).toContain(`ip route add ${ROUTE}`);
    expect(r.out).not.toContain("apply-infra complete");
    expect((await check(["verify"])).exitCode).toBe(1);
    // The printed command restores it; verify agrees.
    await q`ip -n ${ns} route add 198.51.100.0/24 via 198.18.5.2 dev d0`;
    const v = await check(["verify", "--dir", join(dir, "bk")]);
    expect(v.exitCode, v.stderr).toBe(0);
  });

  test("ANKLUME_SKIP_NETWORK_CHECK=1 skips it", async () => {
    const r = await applyIn("breaks.sh", { ANKLUME_SKIP_NETWORK_CHECK: "1" });
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain("Skipping the network safety net");
    expect(r.out).not.toContain("Network state recorded");
    await q`ip -n ${ns} route add 198.51.100.0/24 via 198.18.5.2 dev d0`;
  });

  test("the script: no backup is a failure (1), usage errors 2, --help 0, restore-info prints the backup", async () => {
    expect((await check(["verify", "--dir", join(dir, "none")])).exitCode).toBe(1);
    expect((await check([])).exitCode).toBe(2);
    expect((await check(["nope"])).exitCode).toBe(2);
    expect((await check(["backup", "--file", "x"])).exitCode).toBe(2);
    expect((await check(["--help"])).exitCode).toBe(0);
    const info = await check(["restore-info", "--dir", join(dir, "bk")]);
    expect(info.exitCode).toBe(0);
    expect(info.stdout).toContain(ROUTE);
    expect(info.stdout).toContain("198.18.5.10/24 dev d0");
  });
});
