/**
 * Second, real Incus daemons for the remote and cluster tests
 * (docs/remote.md): each with its own state directory, started inside a
 * network namespace of its own (so that its bridges, dnsmasq and nftables
 * rules never touch this host's network or the development daemon's),
 * listening for HTTPS on its end of a veth pair to this host (cluster
 * members talk over a veth pair of their own, never routed through this
 * host), and added as a remote in a client
 * configuration of the test's own (INCUS_CONF), never in root's
 * ~/.config/incus.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import * as v from "valibot";
import { $, type Shell } from "zx";

const q = $({ quiet: true, nothrow: true });

export interface RemoteDaemon {
  /** The remote's name in `conf`. */
  name: string;
  /** INCUS_CONF for the test's processes: `local` is this host's daemon, `name` the second one. */
  conf: string;
  /** The (first) daemon's INCUS_DIR. */
  dir: string;
  /** Its HTTPS address, host:port. */
  address: string;
  /** Stop the daemon(s) and remove namespaces, veths and directories. */
  stop(): Promise<void>;
}

export interface RemoteCluster extends RemoteDaemon {
  /** The members' names, the first one being the one the remote points at. */
  members: string[];
  /** Stop one member's daemon (the others keep the cluster). */
  stopMember(member: string): Promise<void>;
}

/** zx with the test's client configuration (never throws). */
export function remoteShell(d: RemoteDaemon): Shell {
  return $({ quiet: true, nothrow: true, env: { ...process.env, INCUS_CONF: d.conf } });
}

const RemoteInstances = v.array(
  v.looseObject({
    name: v.string(),
    project: v.string(),
    status: v.string(),
    location: v.optional(v.string(), ""),
  }),
);

/** The instances of every project of the remote (through the CLI, as a user lists them). */
export async function remoteInstances(
  d: RemoteDaemon,
): Promise<v.InferOutput<typeof RemoteInstances>> {
  const r = await remoteShell(d)`incus list ${`${d.name}:`} --all-projects --format json`;
  if (r.exitCode !== 0) throw new Error(`incus list ${d.name}: failed: ${r.stderr}`);
  return v.parse(RemoteInstances, JSON.parse(r.stdout));
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

/** One daemon in its own network namespace, started and answering. */
interface NsDaemon {
  root: string;
  ns: string;
  dir: string;
  ip: string;
  /** zx with INCUS_DIR set to this daemon (and a line on stdin: incus reads YAML from a pipe). */
  incus: Shell;
  stop(): Promise<void>;
}

/** `id` names the namespace, veth and directories; the veth is 10.253.<third>.0/30. */
async function nsDaemon(id: string, third: number): Promise<NsDaemon> {
  const root = mkdtempSync(join(tmpdir(), `anklume-remote-${id}-`));
  // A container's root (a mapped uid) must be able to walk down to its rootfs.
  chmodSync(root, 0o711);
  const dir = join(root, "var");
  mkdirSync(dir, { recursive: true });
  const ns = `ankr-${id}`;
  const hostIf = `ankrh${id}`.slice(0, 15);
  const nsIf = `ankrn${id}`.slice(0, 15);
  const hostIp = `10.253.${third}.1`;
  const ip = `10.253.${third}.2`;
  // stdin /dev/null: `incus ... create` reads YAML from a stdin that is not a
  // terminal, and an input written to a command that exits without reading
  // it breaks the pipe (an uncaught EPIPE in the test process).
  const incus = $({
    quiet: true,
    nothrow: true,
    env: { ...process.env, INCUS_DIR: dir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const stop = async () => {
    await incus`incus admin shutdown --timeout 30`;
    let pid = "";
    try {
      pid = readFileSync(join(root, "pid"), "utf8").trim();
    } catch {
      // Never started.
    }
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
    await must(q`ip -n ${ns} addr add ${ip}/30 dev ${nsIf}`, "namespace address");
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
      incus`sh -c ${`setsid nsenter --net=/run/netns/${ns} unshare -m --propagation private sh -c '${inside}' >/dev/null 2>&1 & echo $! > ${join(root, "pid")}`}`,
      "start incusd",
    );
    await must(incus`incus admin waitready --timeout 60`, "incus admin waitready");
    return { root, ns, dir, ip, incus, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Add the daemon as remote `name` in a fresh client configuration, copy `images` there. */
async function addRemote(d: NsDaemon, id: string, name: string, images: string[]) {
  const conf = join(d.root, "conf");
  mkdirSync(conf, { recursive: true });
  const token = (
    await must(d.incus`incus config trust add --quiet anklume-${id}`, "trust token")
  ).trim();
  const client = $({
    quiet: true,
    nothrow: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, INCUS_CONF: conf },
  });
  await must(client`incus remote add ${name} ${token} --accept-certificate`, "incus remote add");
  for (const alias of images) {
    await must(
      client`incus image copy local:${alias} ${name}: --alias ${alias} --mode relay`,
      `image copy ${alias}`,
    );
  }
  return conf;
}

/**
 * Start one daemon (`id`: see nsDaemon), with a `dir` storage pool
 * `default`, a root disk in the default profile, HTTPS on its veth address,
 * and `images` copied from this host's daemon under the same aliases.
 */
export async function startRemoteDaemon(
  id: string,
  third: number,
  images: string[],
): Promise<RemoteDaemon> {
  const d = await nsDaemon(id, third);
  try {
    const address = `${d.ip}:8443`;
    await must(d.incus`incus storage create default dir`, "storage pool");
    await must(
      d.incus`incus profile device add default root disk path=/ pool=default`,
      "root disk",
    );
    await must(d.incus`incus config set core.https_address ${address}`, "https address");
    const name = `r${id}`;
    const conf = await addRemote(d, id, name, images);
    return { name, conf, dir: d.dir, address, stop: d.stop };
  } catch (e) {
    await d.stop();
    throw e;
  }
}

/**
 * A two-member Incus cluster: the first member (`<id>1`, on 10.253.<thirds[0]>)
 * bootstraps it with a `dir` pool `default` and the default profile's root
 * disk, the second (`<id>2`) joins it with a token; then the first is added
 * as the remote and `images` copied to it.
 */
export async function startRemoteCluster(
  id: string,
  thirds: [number, number],
  images: string[],
): Promise<RemoteCluster> {
  const members = [`${id}1`, `${id}2`];
  const started: NsDaemon[] = [];
  const stop = async () => {
    for (const d of started.reverse()) await d.stop();
  };
  try {
    const a = await nsDaemon(members[0] as string, thirds[0]);
    started.push(a);
    const b = await nsDaemon(members[1] as string, thirds[1]);
    started.push(b);
    // The cluster's own link: a veth pair between the two namespaces.
    const link = [`10.252.${thirds[0]}.1`, `10.252.${thirds[0]}.2`];
    const [la, lb] = [`ankca${id}`.slice(0, 15), `ankcb${id}`.slice(0, 15)];
    await must(
      q`ip -n ${a.ns} link add ${la} type veth peer name ${lb} netns ${b.ns}`,
      "cluster link",
    );
    await must(q`ip -n ${a.ns} addr add ${`${link[0]}/30`} dev ${la}`, "cluster address a");
    await must(q`ip -n ${b.ns} addr add ${`${link[1]}/30`} dev ${lb}`, "cluster address b");
    await must(q`ip -n ${a.ns} link set ${la} up`, "cluster link a");
    await must(q`ip -n ${b.ns} link set ${lb} up`, "cluster link b");
    const address = `${a.ip}:8443`;
    await must(a.incus`incus storage create default dir`, "storage pool");
    await must(
      a.incus`incus profile device add default root disk path=/ pool=default`,
      "root disk",
    );
    // The first member listens (for the client and the cluster) on its veth
    // to this host; the second reaches that address over the cluster link
    // (a route in its namespace: nothing is routed through this host).
    await must(a.incus`incus config set core.https_address ${address}`, "https address");
    await must(a.incus`incus config set cluster.https_address ${address}`, "cluster address");
    await must(
      q`ip -n ${b.ns} route add ${`${a.ip}/32`} via ${link[0]}`,
      "route to the first member",
    );
    await must(a.incus`incus cluster enable ${members[0]}`, "cluster enable");
    const token = (
      await must(a.incus`incus cluster add --quiet ${members[1]}`, "join token")
    ).trim();
    const preseed = join(b.root, "join.yml");
    writeFileSync(
      preseed,
      [
        "cluster:",
        "  enabled: true",
        `  server_name: ${members[1]}`,
        `  server_address: ${link[1]}:8443`,
        `  cluster_token: ${token}`,
        "  member_config:",
        "  - entity: storage-pool",
        "    name: default",
        "    key: source",
        '    value: ""',
        "",
      ].join("\n"),
    );
    const join_ = $({
      quiet: true,
      nothrow: true,
      env: { ...process.env, INCUS_DIR: b.dir },
      input: readFileSync(preseed, "utf8"),
    });
    const joining = join_`incus admin init --preseed`;
    // A join that fails before reading the preseed breaks the pipe: its exit code tells.
    joining.stdin?.on("error", () => undefined);
    await must(joining, "cluster join");
    const name = `c${id}`;
    // The remote is added after clustering: the cluster has a certificate of its own.
    const conf = await addRemote(a, id, name, images);
    const stopMember = async (member: string) => {
      const d = started[members.indexOf(member)];
      if (d) await d.incus`incus admin shutdown --timeout 30`;
    };
    return { name, conf, dir: a.dir, address, members, stop, stopMember };
  } catch (e) {
    await stop();
    throw e;
  }
}
