/**
 * The anklume-busybox image: the host's static busybox, one symlink per
 * applet, busybox init running a boot script and a respawned DHCP client on
 * eth0 whose event script really configures the lease (busybox's udhcpc
 * configures nothing by itself).
 */
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { $ } from "zx";
import { tarInto, writeMeta } from "./metadata.ts";

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

/** The host's busybox, which must be statically linked (package busybox-static). */
export const HOST_BUSYBOX = "/bin/busybox";

/** The applet paths of `busybox --list-full` that the rootfs links to busybox (not busybox itself). */
export function appletPaths(listFull: string): string[] {
  return listFull
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.includes("/") && l !== "bin/busybox");
}

/**
 * Build the busybox rootfs in `work/rootfs` and pack the split image into
 * `work/busybox-{meta,rootfs}.tar.gz`; throws with the fix when `busybox` is
 * missing or not static.
 */
export async function buildBusybox(
  work: string,
  busybox: string = HOST_BUSYBOX,
): Promise<{ meta: string; rootfs: string }> {
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
  for (const applet of appletPaths((await $({ quiet: true })`${busybox} --list-full`).stdout)) {
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
  await writeMeta(work, meta, {
    os: "busybox",
    release: version,
    what: `anklume busybox ${version}`,
  });
  await tarInto(root, rootfs);
  return { meta, rootfs };
}
