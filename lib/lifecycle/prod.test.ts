import { describe, expect, test } from "bun:test";
import { adminDevices, type ProdObserved, type ProdWanted, planProd } from "./prod.ts";

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

  test("the host's tools become read-only disks of the admin instance", () => {
    const tools = {
      bun: { source: "/usr/lib/bun/bun", path: "/usr/local/bin/bun" },
      venv: { source: "/opt/anklume/venv", path: "/opt/anklume/venv" },
    };
    const devices = adminDevices({ ...wanted, tools });
    expect(devices["anklume-tool-bun"]).toEqual({
      type: "disk",
      source: "/usr/lib/bun/bun",
      path: "/usr/local/bin/bun",
      readonly: "true",
    });
    expect(devices["anklume-tool-venv"]).toEqual({
      type: "disk",
      source: "/opt/anklume/venv",
      path: "/opt/anklume/venv",
      readonly: "true",
    });
    const plan = planProd(empty, { ...wanted, tools });
    const added = plan.actions.filter((a) => a.args[2] === "add").map((a) => a.args[4]);
    expect(added).toEqual([
      "incus-socket",
      "anklume-repo",
      "anklume-context",
      "anklume-tool-bun",
      "anklume-tool-venv",
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
