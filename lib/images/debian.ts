/**
 * The anklume-debian12 image: `debootstrap --variant=minbase bookworm` from
 * the host's own Debian mirror, with python3 (and python3-apt) for Ansible,
 * systemd and systemd-networkd doing DHCP on eth0, caches and package lists
 * removed.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { $ } from "zx";
import { tarInto, writeMeta } from "./metadata.ts";

/** The mirror when the host's apt sources name no Debian one. */
export const DEFAULT_MIRROR = "http://deb.debian.org/debian";
/** What debootstrap installs on top of minbase. */
export const DEBIAN_PACKAGES = [
  "python3",
  "python3-apt",
  "systemd-sysv",
  "iproute2",
  "ca-certificates",
  // networkd waits for udev to initialise a link whenever /sys is writable
  // (privileged or nested containers): without udevd eth0 never gets DHCP.
  "udev",
];

/**
 * The Debian mirror URI from apt source files (deb822 `.sources` or one-line
 * `.list`): the first `deb` entry whose suites include a plain release suite
 * (no `-security`, `-updates`, `-backports`). Undefined when there is none.
 */
export function mirrorFromSources(files: { name: string; text: string }[]): string | undefined {
  const plainSuite = (s: string) =>
    /^[a-z]+$/.test(s) && s !== "nodistro" && s !== "stable-security";
  const isDebian = (uri: string) => !/security|ubuntu|nodesource|google|docker/.test(uri);
  for (const f of files) {
    if (f.name.endsWith(".sources")) {
      for (const stanza of f.text.split(/\n\s*\n/)) {
        const field = (k: string) =>
          stanza
            .split("\n")
            .find((l) => l.toLowerCase().startsWith(`${k.toLowerCase()}:`))
            ?.slice(k.length + 1)
            .trim()
            .split(/\s+/) ?? [];
        if (!field("Types").includes("deb")) continue;
        if (field("Enabled")[0]?.toLowerCase() === "no") continue;
        const uri = field("URIs")[0];
        if (uri && isDebian(uri) && field("Suites").some(plainSuite)) return uri;
      }
    } else if (f.name.endsWith(".list")) {
      for (const raw of f.text.split("\n")) {
        const line = raw.replace(/#.*/, "").trim();
        const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
        if (m?.[1] && m[2] && isDebian(m[1]) && plainSuite(m[2])) return m[1];
      }
    }
  }
  return undefined;
}

/** Read the host's apt sources and return its Debian mirror, or the default. */
export function hostMirror(root = "/etc/apt"): string {
  const files: { name: string; text: string }[] = [];
  const dir = join(root, "sources.list.d");
  if (existsSync(dir)) {
    for (const name of readdirSync(dir).sort()) {
      if (name.endsWith(".sources") || name.endsWith(".list")) {
        files.push({ name, text: readFileSync(join(dir, name), "utf8") });
      }
    }
  }
  const list = join(root, "sources.list");
  if (existsSync(list)) files.push({ name: "sources.list", text: readFileSync(list, "utf8") });
  return mirrorFromSources(files) ?? DEFAULT_MIRROR;
}

/** systemd-networkd unit for the Debian image: DHCPv4 on eth0. */
export const NETWORKD_ETH0 = `# anklume debian12 image: DHCP on eth0 (Incus serves static addresses by DHCP too).
[Match]
Name=eth0

[Network]
DHCP=ipv4
LinkLocalAddressing=no
IPv6AcceptRA=no
`;

/** debootstrap's arguments for a minbase bookworm with the image's packages into `root`. */
export function debootstrapArgs(root: string, mirror: string): string[] {
  return ["--variant=minbase", `--include=${DEBIAN_PACKAGES.join(",")}`, "bookworm", root, mirror];
}

/** What is pruned from the rootfs: directory, and which of its entries go (useless offline). */
export const PRUNE: [string, (name: string) => boolean][] = [
  ["var/cache/apt/archives", (n) => n.endsWith(".deb")],
  ["var/cache/apt", (n) => n.endsWith(".bin")],
  ["var/lib/apt/lists", (n) => n !== "partial" && n !== "lock"],
];

/**
 * Apply PRUNE to a rootfs, then date its package lists from the epoch. An
 * emptied `var/lib/apt/lists` otherwise carries the build's time, and
 * Ansible's `apt` with `cache_valid_time` (base_system and the other roles)
 * took it for an index refreshed at the build: for an hour after a fresh
 * build, no `apt-get update` ran and every install failed with "No package
 * matching" (seen on a fresh machine, where bootstrap.sh builds the image
 * just before the tests).
 */
export function pruneRootfs(root: string): void {
  for (const [d, match] of PRUNE) {
    const full = join(root, d);
    if (!existsSync(full)) continue;
    for (const name of readdirSync(full).filter(match)) rmSync(join(full, name), { force: true });
  }
  const lists = join(root, "var/lib/apt/lists");
  if (existsSync(lists)) utimesSync(lists, 0, 0);
}

/**
 * debootstrap bookworm into `work/rootfs`, configure it, and pack the split
 * image into `cacheDir/debian12-{meta,rootfs}.tar.gz` (the cache a later
 * import reuses). `progress` gets the long steps. Throws with the fix when
 * debootstrap is missing or fails.
 */
export async function buildDebian(
  work: string,
  cacheDir: string,
  mirror: string,
  progress: (line: string) => void,
): Promise<{ meta: string; rootfs: string }> {
  const deb = await $({ quiet: true, nothrow: true })`which debootstrap`;
  if (deb.exitCode !== 0) {
    throw new Error(
      "Cannot build the debian12 image: debootstrap is not installed; run: apt-get install debootstrap",
    );
  }
  const root = join(work, "rootfs");
  progress(`  debootstrap bookworm from ${mirror} (about a minute)`);
  const r = await $({
    quiet: true,
    nothrow: true,
  })`debootstrap ${debootstrapArgs(root, mirror)}`.timeout("1200s");
  if (r.exitCode !== 0) {
    const tail = `${r.stdout}\n${r.stderr}`.trim().split("\n").slice(-8).join("\n");
    throw new Error(
      `Cannot debootstrap bookworm from "${mirror}" (exit ${r.exitCode}); check the mirror or pass --mirror URI:\n${tail}`,
    );
  }
  mkdirSync(join(root, "etc/systemd/network"), { recursive: true });
  writeFileSync(join(root, "etc/systemd/network/eth0.network"), NETWORKD_ETH0);
  // The image's own systemctl: the host may have no systemd at all.
  await $({ quiet: true })`chroot ${root} systemctl enable systemd-networkd.service`;
  writeFileSync(join(root, "etc/machine-id"), "");
  writeFileSync(join(root, "etc/hostname"), "debian\n");
  writeFileSync(join(root, "etc/resolv.conf"), "");
  pruneRootfs(root);
  const meta = join(cacheDir, "debian12-meta.tar.gz");
  const rootfs = join(cacheDir, "debian12-rootfs.tar.gz");
  await writeMeta(work, meta, {
    os: "debian",
    release: "bookworm",
    what: "anklume Debian 12 minbase + python3 + systemd",
  });
  progress("  packing the rootfs");
  await tarInto(root, rootfs);
  return { meta, rootfs };
}
