/**
 * A second, real Incus daemon for the remote tests (docs/remote.md): its own
 * state directory, started inside a network namespace of its own (so that
 * its bridges, dnsmasq and nftables rules never touch this host's network or
 * the development daemon's), listening for HTTPS on its end of a veth pair,
 * and added as a remote in a client configuration of the test's own
 * (INCUS_CONF), never in root's ~/.config/incus.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { $ } from "zx";

const q = $({ quiet: true, nothrow: true });

export interface RemoteDaemon {
  /** The remote's name in `conf`. */
  name: string;
  /** INCUS_CONF for the test's processes: `local` is this host's daemon, `name` the second one. */
  conf: string;
  /** The second daemon's INCUS_DIR. */
  dir: string;
  /** Its HTTPS address, host:port. */
  address: string;
  /** Stop the daemon and remove its namespace, veth and directories. */
  stop(): Promise<void>;
}

async function must(
  p: Promise<{ exitCode: number | null; stderr: string; stdout: string }>,
  what: string,
) {
  const r = await p;
  if (process.env.ANKLUME_TEST_DEBUG) console.error(`remote daemon: ${what}: exit ${r.exitCode}`);
  if (r.exitCode !== 0) throw new Error(`${what}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/**
 * Start the daemon (`id` names the namespace, veth, remote and directories;
 * `octet` picks the veth's 10.<octet>.<third>.0/30), with a `dir` storage
 * pool `default`, a root disk in the default profile, and `images` copied
 * from this host's daemon under the same aliases.
 */
export async function startRemoteDaemon(
  id: string,
  third: number,
  images: string[],
): Promise<RemoteDaemon> {
  const root = mkdtempSync(join(tmpdir(), `anklume-remote-${id}-`));
  // A container's root (a mapped uid) must be able to walk down to its rootfs.
  chmodSync(root, 0o711);
  const dir = join(root, "var");
  const conf = join(root, "conf");
  mkdirSync(dir, { recursive: true });
  mkdirSync(conf, { recursive: true });
  const ns = `ankr-${id}`;
  const hostIf = `ankrh${id}`.slice(0, 15);
  const nsIf = `ankrn${id}`.slice(0, 15);
  const hostIp = `10.253.${third}.1`;
  const nsIp = `10.253.${third}.2`;
  const address = `${nsIp}:8443`;
  const name = `r${id}`;
  const env = { ...process.env, INCUS_DIR: dir };
  // incus reads YAML from a stdin that is not a terminal on create: give it a line.
  const inNs = $({ quiet: true, nothrow: true, env, input: "\n" });

  const stop = async () => {
    await inNs`incus admin shutdown --timeout 30`;
    const pid = (() => {
      try {
        return readFileSync(join(root, "pid"), "utf8").trim();
      } catch {
        return "";
      }
    })();
    if (pid) await q`kill ${pid}`;
    // What the daemon mounted under its directory goes before the directory.
    const mounts = readFileSync("/proc/mounts", "utf8")
      .split("\n")
      .map((l) => l.split(" ")[1] ?? "")
      .filter((m) => m.startsWith(root))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) await q`umount -l ${m}`;
    await q`ip link delete ${hostIf}`;
    await q`ip netns delete ${ns}`;
    rmSync(root, { recursive: true, force: true });
  };

  try {
    await must(q`ip netns add ${ns}`, "ip netns add");
    await must(q`ip link add ${hostIf} type veth peer name ${nsIf} netns ${ns}`, "veth");
    await must(q`ip addr add ${hostIp}/30 dev ${hostIf}`, "host address");
    await must(q`ip link set ${hostIf} up`, "host link");
    await must(q`ip -n ${ns} addr add ${nsIp}/30 dev ${nsIf}`, "namespace address");
    await must(q`ip -n ${ns} link set ${nsIf} up`, "namespace link");
    await must(q`ip -n ${ns} link set lo up`, "namespace loopback");
    // Detached, in the namespace's network and a mount namespace of its own
    // whose /sys is the namespace's (its bridges) with this host's cgroups
    // on top (`ip netns exec` mounts a /sys without them, and LXC then
    // cannot freeze a container to snapshot it). Its pid is kept for stop().
    const save = join(root, "cgroup");
    mkdirSync(save);
    const inside = [
      `mount --rbind /sys/fs/cgroup ${save}`,
      "mount -t sysfs sysfs /sys",
      `mount --rbind ${save} /sys/fs/cgroup`,
      `exec /usr/libexec/incus/incusd --group root --logfile ${join(root, "incusd.log")}`,
    ].join(" && ");
    await must(
      inNs`sh -c ${`setsid nsenter --net=/run/netns/${ns} unshare -m --propagation private sh -c '${inside}' >/dev/null 2>&1 & echo $! > ${join(root, "pid")}`}`,
      "start incusd",
    );
    await must(inNs`incus admin waitready --timeout 60`, "incus admin waitready");
    await must(inNs`incus storage create default dir`, "storage pool");
    await must(inNs`incus profile device add default root disk path=/ pool=default`, "root disk");
    await must(inNs`incus config set core.https_address ${address}`, "https address");
    const token = (
      await must(inNs`incus config trust add --quiet anklume-${id}`, "trust token")
    ).trim();
    const client = $({
      quiet: true,
      nothrow: true,
      input: "\n",
      env: { ...process.env, INCUS_CONF: conf },
    });
    await must(client`incus remote add ${name} ${token} --accept-certificate`, "incus remote add");
    for (const alias of images) {
      await must(
        client`incus image copy local:${alias} ${name}: --alias ${alias} --mode relay`,
        `image copy ${alias}`,
      );
    }
    return { name, conf, dir, address, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
