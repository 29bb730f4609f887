import { expect, test } from "bun:test";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { $ } from "zx";
import { detectBackend, hostSocket, incusDir, lvmGroup, mountOf } from "./prod-run.ts";

test("incusDir and hostSocket follow INCUS_DIR and INCUS_SOCKET, else /var/lib/incus", () => {
  expect(incusDir({})).toBe("/var/lib/incus");
  expect(hostSocket({})).toBe("/var/lib/incus/unix.socket");
  expect(hostSocket({ INCUS_DIR: "/srv/incus" })).toBe("/srv/incus/unix.socket");
  expect(hostSocket({ INCUS_DIR: "/srv/incus", INCUS_SOCKET: "/run/x.sock" })).toBe("/run/x.sock");
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
