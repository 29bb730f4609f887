import { describe, expect, test } from "bun:test";
import { parse } from "yaml";
import {
  chooseBackend,
  existingAncestor,
  mountDevice,
  parseFindmnt,
  renderPreseed,
} from "./storage-backend.ts";

const ext4 = { target: "/", source: "/dev/vda", fstype: "ext4" };

describe("filesystem detection", () => {
  test("parseFindmnt reads findmnt -J's first filesystem, null for anything else", () => {
    expect(
      parseFindmnt(
        '{"filesystems":[{"target":"/srv","source":"/dev/sda2[/@srv]","fstype":"btrfs"}]}',
      ),
    ).toEqual({ target: "/srv", source: "/dev/sda2[/@srv]", fstype: "btrfs" });
    expect(parseFindmnt("")).toBeNull();
    expect(parseFindmnt('{"filesystems":[]}')).toBeNull();
    expect(parseFindmnt('{"filesystems":[{"source":"x"}]}')).toBeNull();
  });

  test("existingAncestor climbs to the nearest path that exists, / at worst", () => {
    const there = new Set(["/", "/mnt", "/mnt/b"]);
    expect(existingAncestor("/mnt/b/pool/x", (p) => there.has(p))).toBe("/mnt/b");
    expect(existingAncestor("/mnt/b/", (p) => there.has(p))).toBe("/mnt/b");
    expect(existingAncestor("/nowhere/at/all", (p) => there.has(p))).toBe("/");
    expect(existingAncestor("/nowhere", () => false)).toBe("/");
  });

  test("mountDevice drops btrfs's [subvolume] suffix", () => {
    expect(mountDevice("/dev/sda2[/@]")).toBe("/dev/sda2");
    expect(mountDevice("/dev/mapper/vg-root")).toBe("/dev/mapper/vg-root");
  });

  test("chooseBackend: btrfs on btrfs, zfs on zfs, lvm on a logical volume, else dir", () => {
    const btrfs = chooseBackend(
      { target: "/", source: "/dev/sda2[/@]", fstype: "btrfs" },
      "/var/lib/incus/storage-pools",
      null,
    );
    expect(btrfs.driver).toBe("btrfs");
    expect(btrfs.source).toBeUndefined();
    expect(btrfs.reason).toBe(
      '"/var/lib/incus/storage-pools" is on btrfs (/dev/sda2[/@] mounted at /): btrfs subvolumes and snapshots',
    );
    expect(
      chooseBackend(
        { target: "/m", source: "/dev/loop0", fstype: "btrfs" },
        "/m/pool",
        null,
        "/m/pool",
      ),
    ).toMatchObject({
      driver: "btrfs",
      source: "/m/pool",
    });
    expect(
      chooseBackend(
        { target: "/var/lib", source: "rpool/var/lib", fstype: "zfs" },
        "/var/lib/incus",
        null,
      ),
    ).toMatchObject({
      driver: "zfs",
      source: "rpool/incus",
    });
    expect(
      chooseBackend({ target: "/", source: "tank", fstype: "zfs" }, "/", null, "tank/mine").source,
    ).toBe("tank/mine");
    const lvm = chooseBackend(
      { target: "/", source: "/dev/mapper/vg0-root", fstype: "ext4" },
      "/var/lib/incus",
      "vg0",
    );
    expect(lvm).toMatchObject({ driver: "lvm", source: "vg0" });
    expect(lvm.reason).toContain('volume group "vg0"');
    const dir = chooseBackend(ext4, "/var/lib/incus", null);
    expect(dir).toEqual({
      driver: "dir",
      reason:
        '"/var/lib/incus" is on ext4 (/dev/vda mounted at /): no copy-on-write backend, plain directories',
    });
    expect(chooseBackend(ext4, "/srv/p", null, "/srv/p").source).toBe("/srv/p");
  });
});

describe("preseed", () => {
  test("renderPreseed has the pool, its source, and the root disk only when asked", () => {
    const both = parse(
      renderPreseed({
        pool: { name: "default", backend: { driver: "btrfs", source: "/m/p", reason: "" } },
        root: "default",
      }),
    );
    expect(both).toEqual({
      storage_pools: [
        {
          name: "default",
          driver: "btrfs",
          description: "anklume (bootstrap.sh --prod)",
          config: { source: "/m/p" },
        },
      ],
      profiles: [
        { name: "default", devices: { root: { type: "disk", path: "/", pool: "default" } } },
      ],
    });
    const pool = parse(
      renderPreseed({ pool: { name: "p", backend: { driver: "dir", reason: "" } } }),
    );
    expect(pool.storage_pools[0].config).toBeUndefined();
    expect(pool.profiles).toBeUndefined();
    expect(parse(renderPreseed({ root: "p" })).storage_pools).toBeUndefined();
  });
});
