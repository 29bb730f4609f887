/**
 * The storage part of `bootstrap.sh --prod` (SPEC-operations §12): the
 * backend of a new pool chosen from the filesystem that holds its data
 * (btrfs, zfs, an LVM logical volume, else dir), and the preseed that
 * creates what is missing. Pure: `prod-run.ts` reads `findmnt`, `lsblk` and
 * `lvs`, and applies the preseed.
 */
import { stringify } from "yaml";

/** Incus storage drivers anklume's bootstrap picks from. */
export type Driver = "btrfs" | "zfs" | "lvm" | "dir";

/** One `findmnt -J` entry: the mount holding a path. */
export interface MountInfo {
  target: string;
  source: string;
  fstype: string;
}

/** The backend of a new pool: driver, optional `source`, and why it was chosen. */
export interface Backend {
  driver: Driver;
  source?: string;
  reason: string;
}

/**
 * The mount that holds a path, from `findmnt -J -T <path> -o TARGET,SOURCE,FSTYPE`.
 * @example parseFindmnt('{"filesystems":[{"target":"/","source":"/dev/vda","fstype":"ext4"}]}')
 */
export function parseFindmnt(text: string): MountInfo | null {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return null;
  }
  const fs = (json as { filesystems?: unknown[] })?.filesystems?.[0] as
    | Partial<MountInfo>
    | undefined;
  if (!fs || typeof fs.target !== "string" || typeof fs.fstype !== "string") return null;
  return { target: fs.target, source: String(fs.source ?? ""), fstype: fs.fstype };
}

/** The first of `path` and its parents that exists (a pool's source does not exist yet). */
export function existingAncestor(path: string, exists: (p: string) => boolean): string {
  let p = path.replace(/\/+$/, "") || "/";
  while (!exists(p)) {
    const up = p.slice(0, p.lastIndexOf("/")) || "/";
    if (up === p) break;
    p = up;
  }
  return p;
}

/** A btrfs mount's source names its subvolume in brackets (`/dev/sda2[/@]`): the device alone. */
export function mountDevice(source: string): string {
  return source.replace(/\[.*\]$/, "");
}

/**
 * The storage backend for a new pool whose data goes under `path`: btrfs on
 * btrfs, zfs on zfs, lvm when the filesystem sits on an LVM logical volume
 * (`lvmVg` is its volume group), else dir. `explicitSource` (the operator's
 * `--storage-source`) is used as the pool's source; without it btrfs and dir
 * let Incus place the pool under its own directory, zfs gets a dataset
 * `<zpool>/incus`, lvm the volume group.
 */
export function chooseBackend(
  mount: MountInfo,
  path: string,
  lvmVg: string | null,
  explicitSource?: string,
): Backend {
  const where = `"${path}" is on ${mount.fstype} (${mount.source} mounted at ${mount.target})`;
  const src = explicitSource ? { source: explicitSource } : {};
  if (mount.fstype === "btrfs") {
    return { driver: "btrfs", ...src, reason: `${where}: btrfs subvolumes and snapshots` };
  }
  if (mount.fstype === "zfs") {
    const zpool = mount.source.split("/")[0] || mount.source;
    return {
      driver: "zfs",
      source: explicitSource ?? `${zpool}/incus`,
      reason: `${where}: zfs datasets and snapshots`,
    };
  }
  if (lvmVg) {
    return {
      driver: "lvm",
      source: explicitSource ?? lvmVg,
      reason: `${where}, a logical volume of volume group "${lvmVg}": an LVM thin pool there`,
    };
  }
  return { driver: "dir", ...src, reason: `${where}: no copy-on-write backend, plain directories` };
}

/**
 * The preseed (`incus admin init --preseed`) creating the pool and the
 * default profile's root disk, each only when given.
 */
export function renderPreseed(opts: {
  pool?: { name: string; backend: Backend };
  root?: string;
}): string {
  const doc: Record<string, unknown> = {};
  if (opts.pool) {
    const { name, backend } = opts.pool;
    doc.storage_pools = [
      {
        name,
        driver: backend.driver,
        description: "anklume (bootstrap.sh --prod)",
        ...(backend.source ? { config: { source: backend.source } } : {}),
      },
    ];
  }
  if (opts.root) {
    doc.profiles = [
      { name: "default", devices: { root: { type: "disk", path: "/", pool: opts.root } } },
    ];
  }
  return stringify(doc);
}
