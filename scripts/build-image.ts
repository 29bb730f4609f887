#!/usr/bin/env bun
// Usage: bun scripts/build-image.ts [busybox|debian12|all]... [options]
//
// Build the local Incus images anklume's tests and domains use, and import
// them into the `default` project, when no image server is reachable:
//
//   busybox   alias anklume-busybox: busybox-static, busybox init, DHCP on
//             eth0 through udhcpc with a working event script (~1 s).
//   debian12  alias anklume-debian12: debootstrap --variant=minbase bookworm
//             with python3, systemd and systemd-networkd (DHCP on eth0), built
//             from the host's configured Debian mirror (~1 min) and cached as
//             tarballs so a later import needs no download.
//   all       both (the default).
//
// An image is built only when its alias is missing, unless --rebuild.
//
// Options:
//   --rebuild          rebuild (and re-import) even when the alias exists,
//                      ignoring the cached Debian tarballs
//   --cache-dir DIR    where built tarballs are kept
//                      (default $ANKLUME_IMAGE_CACHE or /var/cache/anklume/images)
//   --mirror URI       Debian mirror for debootstrap (default: the first Debian
//                      entry of /etc/apt/sources.list.d/*.sources or
//                      /etc/apt/sources.list, else http://deb.debian.org/debian)
//   --dry-run          say what would be built or imported, change nothing
//   -h, --help         show this help
//
// Exit: 0 success, 1 failure, 2 usage error.
import { createHash } from "node:crypto";
import {
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { arch } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { $ } from "zx";
import { paint, parseCli, runMain, say, topComment, UsageError } from "../lib/core/cli.ts";
import { incusRaw, incusRun } from "../lib/incus/client.ts";
import { listAliases, listImages } from "../lib/incus/objects.ts";

const USAGE = topComment(import.meta.url);

/** The images this script knows, by name. */
export const IMAGES = {
  busybox: { alias: "anklume-busybox" },
  debian12: { alias: "anklume-debian12" },
} as const;
export type ImageName = keyof typeof IMAGES;

export const DEFAULT_MIRROR = "http://deb.debian.org/debian";
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

// ---------------------------------------------------------------- pure parts

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

/** Incus's architecture name for this machine. */
export function incusArch(nodeArch: string = arch()): string {
  const map: Record<string, string> = { x64: "x86_64", arm64: "aarch64", arm: "armv7l" };
  return map[nodeArch] ?? nodeArch;
}

/** metadata.yaml of an image: architecture, creation date, properties, templates. */
export function metadataYaml(p: {
  arch: string;
  created: Date;
  os: string;
  release: string;
  description: string;
}): string {
  const epoch = Math.floor(p.created.getTime() / 1000);
  const q = (s: string) => JSON.stringify(s);
  return [
    `architecture: ${q(p.arch)}`,
    `creation_date: ${epoch}`,
    "properties:",
    `  architecture: ${q(p.arch)}`,
    `  os: ${q(p.os)}`,
    `  release: ${q(p.release)}`,
    `  description: ${q(p.description)}`,
    `  serial: ${q(p.created.toISOString().slice(0, 16).replace(/[-:T]/g, ""))}`,
    "templates:",
    "  /etc/hostname:",
    "    when: [create, copy]",
    "    template: hostname.tpl",
    "  /etc/hosts:",
    "    when: [create, copy]",
    "    template: hosts.tpl",
    "",
  ].join("\n");
}

/** Incus templates (pongo2) referenced by metadataYaml. */
export const TEMPLATES: Record<string, string> = {
  "hostname.tpl": "{{ instance.name }}\n",
  "hosts.tpl":
    "127.0.0.1\tlocalhost\n127.0.1.1\t{{ instance.name }}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
};

/** Busybox init's table: boot script, a respawned DHCP client, clean shutdown. */
export const INITTAB = `# anklume busybox image: busybox init reads this.
::sysinit:/etc/init.d/rcS
::respawn:/etc/init.d/dhcp-eth0
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/sync
::restart:/sbin/init
`;

/** Boot script: directories, hostname, loopback up. */
export const RCS = `#!/bin/sh
# anklume busybox image: run once at boot by init (::sysinit).
mkdir -p /tmp /run /var/run /var/log /root
chmod 1777 /tmp
[ -e /proc/self ] || mount -t proc proc /proc
[ -s /etc/hostname ] && hostname -F /etc/hostname
ip link set lo up
exit 0
`;

/** DHCP client on eth0, kept alive by init; waits for eth0 when there is none yet. */
export const DHCP_ETH0 = `#!/bin/sh
# anklume busybox image: DHCP client for eth0, respawned by init.
# Incus serves a NIC's static ipv4.address through DHCP too, so this is enough.
while [ ! -e /sys/class/net/eth0 ]; do sleep 5; done
ip link set eth0 up
exec udhcpc -f -i eth0 -s /usr/share/udhcpc/default.script \\
  -t 10 -T 1 -A 3 -x "hostname:$(hostname)"
`;

/** udhcpc's event script: sets the address, default route and resolv.conf. */
export const UDHCPC_SCRIPT = `#!/bin/sh
# udhcpc event script (anklume busybox image). udhcpc passes the event as $1
# and the lease in the environment: interface, ip, mask or subnet, router, dns.
iface="\${interface:-eth0}"
addr="\${ip:-}"
case "$1" in
  deconfig)
    ip -4 addr flush dev "$iface"
    ip link set "$iface" up
    ;;
  bound|renew)
    prefix="\${mask:-}"
    if [ -z "$prefix" ] && [ -n "\${subnet:-}" ]; then
      prefix="$(ipcalc -p "$addr" "$subnet" | sed -n 's/^PREFIX=//p')"
    fi
    prefix="\${prefix:-24}"
    if ! ip -4 addr show dev "$iface" | grep -q "inet $addr/$prefix "; then
      ip -4 addr flush dev "$iface"
      if [ -n "\${broadcast:-}" ]; then
        ip -4 addr add "$addr/$prefix" broadcast "$broadcast" dev "$iface"
      else
        ip -4 addr add "$addr/$prefix" dev "$iface"
      fi
    fi
    if [ -n "\${router:-}" ]; then
      for gw in $router; do
        ip -4 route replace default via "$gw" dev "$iface"
        break
      done
    fi
    if [ -n "\${dns:-}" ]; then
      {
        if [ -n "\${domain:-}" ]; then echo "search $domain"; fi
        for ns in $dns; do echo "nameserver $ns"; done
      } > /etc/resolv.conf.udhcpc && mv /etc/resolv.conf.udhcpc /etc/resolv.conf
    fi
    ;;
  leasefail|nak)
    ;;
esac
exit 0
`;

/** systemd-networkd unit for the Debian image: DHCPv4 on eth0. */
export const NETWORKD_ETH0 = `# anklume debian12 image: DHCP on eth0 (Incus serves static addresses by DHCP too).
[Match]
Name=eth0

[Network]
DHCP=ipv4
LinkLocalAddressing=no
IPv6AcceptRA=no
`;

/** The busybox rootfs's own files, path (relative) to content and mode. */
export function busyboxFiles(): { path: string; content: string; mode: number }[] {
  return [
    { path: "etc/inittab", content: INITTAB, mode: 0o644 },
    { path: "etc/init.d/rcS", content: RCS, mode: 0o755 },
    { path: "etc/init.d/dhcp-eth0", content: DHCP_ETH0, mode: 0o755 },
    { path: "usr/share/udhcpc/default.script", content: UDHCPC_SCRIPT, mode: 0o755 },
    {
      path: "etc/passwd",
      content:
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
      mode: 0o644,
    },
    { path: "etc/group", content: "root:x:0:\nnogroup:x:65534:\n", mode: 0o644 },
    { path: "etc/shadow", content: "root:*:19000:0:99999:7:::\n", mode: 0o600 },
    { path: "etc/hostname", content: "busybox\n", mode: 0o644 },
    { path: "etc/hosts", content: "127.0.0.1\tlocalhost\n", mode: 0o644 },
    { path: "etc/resolv.conf", content: "", mode: 0o644 },
    {
      path: "etc/profile",
      content: 'export PATH=/bin:/sbin:/usr/bin:/usr/sbin\nexport PS1="\\h:\\w\\$ "\n',
      mode: 0o644,
    },
  ];
}

/**
 * The fingerprint Incus gives a split image: sha256 over the metadata tarball
 * followed by the rootfs tarball.
 */
export async function splitFingerprint(meta: string, rootfs: string): Promise<string> {
  const h = createHash("sha256");
  for (const f of [meta, rootfs]) {
    for await (const chunk of createReadStream(f)) h.update(chunk as Buffer);
  }
  return h.digest("hex");
}

// ---------------------------------------------------------------- Incus side

/** The fingerprint an alias points at in the default project, or undefined. */
export async function aliasTarget(alias: string): Promise<string | undefined> {
  const all = await listAliases("default");
  return all.find((a) => a.name === alias)?.target;
}

/** Import a split image into the default project and point `alias` at it. */
async function importImage(meta: string, rootfs: string, alias: string): Promise<string> {
  const fp = await splitFingerprint(meta, rootfs);
  const images = await listImages("default");
  if (!images.some((i) => i.fingerprint === fp)) {
    await incusRun(["image", "import", meta, rootfs, "--project", "default"], {
      timeout: "600s",
      input: "\n",
    });
  }
  const old = await aliasTarget(alias);
  if (old === fp) return fp;
  if (old === undefined) {
    await incusRun(["image", "alias", "create", alias, fp, "--project", "default"], {
      input: "\n",
    });
    return fp;
  }
  // Re-point the alias in one API call, so a concurrent launch never finds it missing.
  await incusRun([
    "query",
    "-X",
    "PATCH",
    `/1.0/images/aliases/${encodeURIComponent(alias)}?project=default`,
    "-d",
    JSON.stringify({ target: fp }),
  ]);
  const oldImage = images.find((i) => i.fingerprint === old);
  if (oldImage && (oldImage.aliases ?? []).every((a) => a.name === alias)) {
    await incusRaw(["image", "delete", old, "--project", "default"]);
  }
  return fp;
}

// ---------------------------------------------------------------- builders

async function tarInto(srcDir: string, out: string, entries: string[] = ["."]) {
  const tmp = `${out}.part`;
  await $({ quiet: true })`tar --numeric-owner -C ${srcDir} -czf ${tmp} ${entries}`;
  renameSync(tmp, out);
}

/** Write an image's metadata tarball; `what` is the description, dated here. */
async function writeMeta(dir: string, out: string, os: string, release: string, what: string) {
  const created = new Date();
  const meta = metadataYaml({
    arch: incusArch(),
    created,
    os,
    release,
    description: `${what} (${created.toISOString().slice(0, 10)})`,
  });
  const stage = join(dir, "meta");
  mkdirSync(join(stage, "templates"), { recursive: true });
  writeFileSync(join(stage, "metadata.yaml"), meta);
  for (const [name, text] of Object.entries(TEMPLATES)) {
    writeFileSync(join(stage, "templates", name), text);
  }
  await tarInto(stage, out, ["metadata.yaml", "templates"]);
}

async function removeTree(dir: string) {
  for (const sub of ["proc", "sys", "dev/pts", "dev"]) {
    await $({ quiet: true, nothrow: true })`umount -l ${join(dir, "rootfs", sub)}`;
  }
  const r = await $({ quiet: true, nothrow: true })`rm -rf --one-file-system ${dir}`;
  if (r.exitCode !== 0) say(`warning: could not remove ${dir}: ${r.stderr.trim()}`);
}

/** Remove build directories an interrupted run left behind (older than an hour). */
async function removeStaleBuilds(cacheDir: string) {
  if (!existsSync(cacheDir)) return;
  const hourAgo = Date.now() - 3_600_000;
  for (const name of readdirSync(cacheDir)) {
    const dir = join(cacheDir, name);
    if (name.startsWith("build-") && statSync(dir).mtimeMs < hourAgo) {
      say(`removing ${dir}, left by an interrupted build`);
      await removeTree(dir);
    }
  }
}

async function buildBusybox(work: string): Promise<{ meta: string; rootfs: string }> {
  const busybox = "/bin/busybox";
  const info = await $({ quiet: true, nothrow: true })`file -L ${busybox}`;
  if (!existsSync(busybox) || (info.exitCode === 0 && !info.stdout.includes("statically linked"))) {
    throw new Error(
      `Cannot build the busybox image: ${busybox} is missing or not static; install busybox-static (apt-get install busybox-static)`,
    );
  }
  const root = join(work, "rootfs");
  for (const d of ["bin", "sbin", "usr/bin", "usr/sbin", "etc/init.d", "usr/share/udhcpc"]) {
    mkdirSync(join(root, d), { recursive: true });
  }
  for (const d of ["proc", "sys", "dev", "tmp", "root", "run", "var/log", "mnt", "home"]) {
    mkdirSync(join(root, d), { recursive: true });
  }
  await $({ quiet: true })`cp ${busybox} ${join(root, "bin/busybox")}`;
  const list = (await $({ quiet: true })`${busybox} --list-full`).stdout
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.includes("/") && l !== "bin/busybox");
  for (const applet of list) {
    const target = join(root, applet);
    mkdirSync(dirname(target), { recursive: true });
    if (!existsSync(target)) symlinkSync("/bin/busybox", target);
  }
  if (!existsSync(join(root, "sbin/init"))) symlinkSync("/bin/busybox", join(root, "sbin/init"));
  for (const f of busyboxFiles()) {
    writeFileSync(join(root, f.path), f.content, { mode: f.mode });
  }
  await $({ quiet: true })`chmod 1777 ${join(root, "tmp")}`;
  await $({ quiet: true })`chmod 700 ${join(root, "root")}`;
  const version =
    /BusyBox v([\d.]+)/.exec((await $({ quiet: true, nothrow: true })`${busybox}`).stdout)?.[1] ??
    "unknown";
  const meta = join(work, "busybox-meta.tar.gz");
  const rootfs = join(work, "busybox-rootfs.tar.gz");
  await writeMeta(work, meta, "busybox", version, `anklume busybox ${version}`);
  await tarInto(root, rootfs);
  return { meta, rootfs };
}

async function buildDebian(work: string, cacheDir: string, mirror: string) {
  const deb = await $({ quiet: true, nothrow: true })`which debootstrap`;
  if (deb.exitCode !== 0) {
    throw new Error(
      "Cannot build the debian12 image: debootstrap is not installed; run: apt-get install debootstrap",
    );
  }
  const root = join(work, "rootfs");
  say(`  debootstrap bookworm from ${mirror} (about a minute)`);
  const r = await $({
    quiet: true,
    nothrow: true,
  })`debootstrap --variant=minbase --include=${DEBIAN_PACKAGES.join(",")} bookworm ${root} ${mirror}`.timeout(
    "1200s",
  );
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
  // Package caches and lists are useless offline and half the size.
  const prune: [string, (n: string) => boolean][] = [
    ["var/cache/apt/archives", (n) => n.endsWith(".deb")],
    ["var/cache/apt", (n) => n.endsWith(".bin")],
    ["var/lib/apt/lists", (n) => n !== "partial" && n !== "lock"],
  ];
  for (const [d, match] of prune) {
    const full = join(root, d);
    if (!existsSync(full)) continue;
    for (const name of readdirSync(full).filter(match)) rmSync(join(full, name), { force: true });
  }
  const meta = join(cacheDir, "debian12-meta.tar.gz");
  const rootfs = join(cacheDir, "debian12-rootfs.tar.gz");
  await writeMeta(
    work,
    meta,
    "debian",
    "bookworm",
    "anklume Debian 12 minbase + python3 + systemd",
  );
  say("  packing the rootfs");
  await tarInto(root, rootfs);
  return { meta, rootfs };
}

// ---------------------------------------------------------------- main

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(argv, {
    rebuild: { type: "boolean", default: false },
    "cache-dir": { type: "string" },
    mirror: { type: "string" },
    "dry-run": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const wanted = new Set<ImageName>();
  for (const p of positionals.length ? positionals : ["all"]) {
    if (p === "all") for (const k of Object.keys(IMAGES) as ImageName[]) wanted.add(k);
    else if (p in IMAGES) wanted.add(p as ImageName);
    else throw new UsageError(`unknown image "${p}": expected busybox, debian12 or all`);
  }
  const cacheDir =
    values["cache-dir"] ?? process.env.ANKLUME_IMAGE_CACHE ?? "/var/cache/anklume/images";
  const mirror = values.mirror ?? process.env.ANKLUME_DEBIAN_MIRROR ?? hostMirror();
  const dry = values["dry-run"];

  for (const name of wanted) {
    const { alias } = IMAGES[name];
    const started = Date.now();
    const current = await aliasTarget(alias);
    if (current && !values.rebuild) {
      say(`${paint("green", "ok")}   image ${alias} present (${current.slice(0, 12)})`);
      continue;
    }
    const cachedMeta = join(cacheDir, `${name}-meta.tar.gz`);
    const cachedRootfs = join(cacheDir, `${name}-rootfs.tar.gz`);
    const cached =
      name === "debian12" && !values.rebuild && existsSync(cachedMeta) && existsSync(cachedRootfs);
    const how = cached ? `import cached ${cachedRootfs}` : "build and import";
    if (dry) {
      say(`would ${how} as ${alias}`);
      continue;
    }
    say(`${paint("blue", "==>")}  image ${alias}: ${how}`);
    mkdirSync(cacheDir, { recursive: true });
    await removeStaleBuilds(cacheDir);
    const work = mkdtempSync(join(cacheDir, `build-${name}-`));
    try {
      let files: { meta: string; rootfs: string };
      if (cached) files = { meta: cachedMeta, rootfs: cachedRootfs };
      else if (name === "busybox") files = await buildBusybox(work);
      else files = await buildDebian(work, cacheDir, mirror);
      const fp = await importImage(files.meta, files.rootfs, alias);
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      say(`${paint("green", "done")} image ${alias} -> ${fp.slice(0, 12)} in ${secs} s`);
    } finally {
      await removeTree(work);
    }
  }
  return 0;
}

if (import.meta.main) await runMain(main, USAGE);
