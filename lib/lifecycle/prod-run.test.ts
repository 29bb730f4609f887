import { expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { $ } from "zx";
import { detectBackend, hostSocket, hostTools, incusDir, lvmGroup, mountOf } from "./prod-run.ts";

test("incusDir and hostSocket follow INCUS_DIR and INCUS_SOCKET, else /var/lib/incus", () => {
  expect(incusDir({})).toBe("/var/lib/incus");
  expect(hostSocket({})).toBe("/var/lib/incus/unix.socket");
  expect(hostSocket({ INCUS_DIR: "/srv/incus" })).toBe("/srv/incus/unix.socket");
  expect(hostSocket({ INCUS_DIR: "/srv/incus", INCUS_SOCKET: "/run/x.sock" })).toBe("/run/x.sock");
});

test("hostTools: Bun, incus and make from PATH (their real files), the venv with ansible-playbook; a missing one left out", () => {
  const dir = mkdtempSync(join(tmpdir(), "anklume-tools-"));
  try {
    for (const d of ["a", "b", "real", "venv/bin"]) mkdirSync(join(dir, d), { recursive: true });
    for (const f of ["real/incus", "b/make", "real/bun", "venv/bin/ansible-playbook"])
      writeFileSync(join(dir, f), "");
    symlinkSync(join(dir, "real/incus"), join(dir, "a/incus"));
    const env = { PATH: `${join(dir, "a")}:${join(dir, "b")}`, ANKLUME_VENV: join(dir, "venv") };
    expect(hostTools(env, join(dir, "real/bun"))).toEqual({
      bun: { source: join(dir, "real/bun"), path: "/usr/local/bin/bun" },
      incus: { source: join(dir, "real/incus"), path: "/usr/local/bin/incus" },
      make: { source: join(dir, "b/make"), path: "/usr/local/bin/make" },
      venv: { source: join(dir, "venv"), path: join(dir, "venv") },
    });
    expect(hostTools({ PATH: join(dir, "b"), ANKLUME_VENV: join(dir, "none") }, null)).toEqual({
      make: { source: join(dir, "b/make"), path: "/usr/local/bin/make" },
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("mountOf a path that does not exist yet is the mount of its nearest parent (real findmnt)", async () => {
  const want = JSON.parse(
    (await $({ quiet: true })`findmnt -J -T ${tmpdir()} -o TARGET,SOURCE,FSTYPE`).stdout,
  ).filesystems[0];
  const m = await mountOf(join(tmpdir(), "anklume-no-such-dir", "pool"));
  expect(m).toEqual({ target: want.target, source: want.source, fstype: want.fstype });
});

test("lvmGroup: null for what is not an LVM logical volume (a dataset name, this host's root device when it is not one)", async () => {
  expect(await lvmGroup("rpool/var")).toBeNull();
  const root = (await mountOf("/")).source.replace(/\[.*\]$/, "");
  const type = (await $({ quiet: true, nothrow: true })`lsblk -ndo TYPE ${root}`).stdout.trim();
  if (type !== "lvm") expect(await lvmGroup(root)).toBeNull();
  else expect(await lvmGroup(root)).toMatch(/\S/);
});

test("detectBackend reads the filesystem under the source it is given (real findmnt)", async () => {
  const m = await mountOf(tmpdir());
  const b = await detectBackend(join(tmpdir(), "anklume-pool-x"));
  expect(b.reason).toContain(`is on ${m.fstype} (`);
  expect(b.source).toBe(join(tmpdir(), "anklume-pool-x"));
  const vg = await lvmGroup(m.source.replace(/\[.*\]$/, ""));
  const want = m.fstype === "btrfs" || m.fstype === "zfs" ? m.fstype : vg ? "lvm" : "dir";
  expect(b.driver).toBe(want);
});
