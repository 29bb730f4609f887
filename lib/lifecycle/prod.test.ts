import { describe, expect, test } from "bun:test";
import { parse } from "yaml";
import {
  adminDevices,
  chooseBackend,
  existingAncestor,
  mountDevice,
  type ProdObserved,
  type ProdWanted,
  parseFindmnt,
  planProd,
  renderPreseed,
} from "./prod.ts";

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

const wanted: ProdWanted = {
  pool: "default",
  backend: { driver: "btrfs", reason: "on btrfs" },
  instance: "anklume-instance",
  image: "anklume-debian12",
  repo: "/root/anklume-src",
  contextDir: "/etc/anklume",
  hostSocket: "/var/lib/incus/unix.socket",
};
const empty: ProdObserved = {
  pools: [],
  profileDevices: {},
  instance: null,
  aliases: ["anklume-debian12"],
};

describe("planProd", () => {
  test("on an empty daemon: preseed (pool and root disk), instance, socket directory, three devices, start", () => {
    const plan = planProd(empty, wanted);
    expect(plan.errors).toEqual([]);
    expect(plan.ok).toEqual([]);
    expect(plan.actions.map((a) => a.args.slice(0, 4).join(" "))).toEqual([
      "admin init --preseed",
      "init anklume-debian12 anklume-instance --project",
      "file create -p --type=directory",
      "config device add anklume-instance",
      "config device add anklume-instance",
      "config device add anklume-instance",
      "start anklume-instance --project default",
    ]);
    expect(plan.actions[0]?.input).toBe(plan.preseed as string);
    expect(plan.preseed).toContain("driver: btrfs");
    expect(plan.preseed).toContain("profiles:");
    expect(plan.actions[1]?.args).toEqual([
      "init",
      "anklume-debian12",
      "anklume-instance",
      "--project",
      "default",
      "--storage",
      "default",
    ]);
    expect(plan.actions[2]?.args[4]).toBe("anklume-instance/var/lib/incus/");
    expect(plan.actions[3]?.args).toEqual([
      "config",
      "device",
      "add",
      "anklume-instance",
      "incus-socket",
      "proxy",
      "connect=unix:/var/lib/incus/unix.socket",
      "listen=unix:/var/lib/incus/unix.socket",
      "bind=container",
      "uid=0",
      "gid=0",
      "mode=0660",
      "security.uid=0",
      "security.gid=0",
      "--project",
      "default",
    ]);
    expect(plan.actions[4]?.args).toContain("source=/root/anklume-src");
    expect(plan.actions[4]?.args).toContain("shift=true");
    expect(plan.actions[5]?.args).toContain("readonly=true");
    expect(plan.actions[0]?.done).toBe(
      'preseed applied: storage pool "default" (driver btrfs; on btrfs) and root disk on pool "default" in the default profile',
    );
  });

  test("everything in place: nothing to do, every part said ok", () => {
    const observed: ProdObserved = {
      pools: [{ name: "default", driver: "btrfs", config: { source: "/m/p" } }],
      profileDevices: { root: { type: "disk", path: "/", pool: "default" } },
      instance: {
        status: "Running",
        devices: adminDevices(wanted),
        expandedDevices: { root: { type: "disk", path: "/", pool: "default" } },
      },
      aliases: [],
    };
    const plan = planProd(observed, wanted);
    expect(plan.actions).toEqual([]);
    expect(plan.preseed).toBeNull();
    expect(plan.errors).toEqual([]);
    expect(plan.ok).toEqual([
      'storage pool "default" present (driver btrfs, source /m/p)',
      "default profile has a root disk (pool=default): kept",
      'admin instance "anklume-instance" present (pool default, Running)',
      "admin instance: device incus-socket (unix:/var/lib/incus/unix.socket -> unix:/var/lib/incus/unix.socket)",
      "admin instance: device anklume-repo (/root/anklume-src -> /root/anklume)",
      "admin instance: device anklume-context (/etc/anklume -> /etc/anklume, read-only)",
      'admin instance "anklume-instance" running',
    ]);
  });

  test("an existing pool of another driver is kept and said so; a missing root disk alone is preseeded", () => {
    const plan = planProd(
      { ...empty, pools: [{ name: "default", driver: "dir", config: {} }] },
      wanted,
    );
    expect(plan.ok[0]).toBe(
      'storage pool "default" present (driver dir) (kept; the filesystem would suggest btrfs: an existing pool is never recreated)',
    );
    expect(plan.preseed).not.toContain("storage_pools");
    expect(plan.preseed).toContain("pool: default");
  });

  test("a device that differs gets only its differing keys set; a stopped instance is started", () => {
    const devices = adminDevices(wanted);
    const plan = planProd(
      {
        ...empty,
        pools: [{ name: "default", driver: "btrfs", config: {} }],
        profileDevices: { root: { type: "disk", path: "/", pool: "default" } },
        instance: {
          status: "Stopped",
          devices: {
            ...devices,
            "anklume-repo": { ...devices["anklume-repo"], source: "/old", shift: "false" },
          },
          expandedDevices: {},
        },
      },
      wanted,
    );
    expect(plan.actions.map((a) => a.args)).toEqual([
      [
        "config",
        "device",
        "set",
        "anklume-instance",
        "anklume-repo",
        "source=/root/anklume-src",
        "shift=true",
        "--project",
        "default",
      ],
      ["start", "anklume-instance", "--project", "default"],
    ]);
  });

  test("a device of another type and a missing image are errors with their fix", () => {
    const devices = adminDevices(wanted);
    const wrong = planProd(
      {
        ...empty,
        instance: {
          status: "Running",
          devices: { ...devices, "incus-socket": { type: "disk", path: "/x" } },
          expandedDevices: {},
        },
      },
      wanted,
    );
    expect(wrong.errors).toEqual([
      'Cannot set up device "incus-socket" of "anklume-instance": it exists as a disk device, anklume needs a proxy device; remove it (incus config device remove anklume-instance incus-socket) and rerun',
    ]);
    const noImage = planProd({ ...empty, aliases: [] }, wanted);
    expect(noImage.errors[0]).toContain(
      'image "anklume-debian12" is not in the default project; build it with: bun scripts/build-image.ts debian12',
    );
    expect(noImage.actions.map((a) => a.args[0])).toEqual(["admin"]);
  });
});
