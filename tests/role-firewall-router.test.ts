/**
 * Role firewall_router on a real Debian container with two NICs on two test
 * bridges (no NAT), between two busybox containers whose default route is
 * the firewall. The policies come from a real infra.yml through `make sync`
 * and the role's default (`bun scripts/nftables.ts router`, a lookup on the
 * controller): the policy's port passes, every other port and the reverse
 * direction are dropped, checked with real TCP connections (busybox nc).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { parse } from "yaml";
import { $ } from "zx";
import { incusRun } from "../lib/incus/client.ts";
import { freeSubnets, make, makeWorkdir, recap, removeWorkdir, write } from "./apply-helpers.ts";
import { uniq } from "./helpers.ts";
import {
  aptProxy,
  BUSYBOX,
  cleanup,
  DEBIAN,
  launch,
  type PlayRun,
  REPO,
  type RoleSequence,
  roleSequence,
  rolesOrSkip,
  runRole,
  sh,
  waitFor,
  waitSystemd,
} from "./role-helpers.ts";

const live = await rolesOrSkip("role-firewall-router", [DEBIAN, BUSYBOX]);
const u = uniq();
const DA = `fa${u}`;
const DB = `fb${u}`;
const FW = `fw-${u}`;
const CA = `ca-${u}`;
const SB = `sb-${u}`;
let dir = "";
const bridges: string[] = [];
let A = "";
let B = "";
let vars: Record<string, unknown> = {};
const PREFIX = "FWT";

function changed(run: PlayRun): number {
  return recap(run.out)[FW]?.changed ?? -1;
}

/** Run a shell command in a container; throw with its output when it fails. */
async function must(name: string, script: string): Promise<void> {
  const r = await sh(name, script);
  if (r.exitCode !== 0)
    throw new Error(`${name}: ${script}: exit ${r.exitCode}: ${r.stdout}${r.stderr}`);
}

/**
 * Open a TCP connection from `client` to `ip:port`, where `server` listens:
 * true when the server received the client's line.
 */
async function connects(server: string, client: string, ip: string, port: number) {
  const word = `hello-${port}-${uniq()}`;
  const listener = sh(server, `timeout 8 nc -l -p ${port}`);
  // Ready when the kernel lists the port in LISTEN state (0A) in /proc/net/tcp{,6}:
  // a fixed sleep lost the race on a loaded machine (the client came first).
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  for (let i = 0; i < 50; i++) {
    const r = await sh(
      server,
      `cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q ':${hex} [0-9A-F]*:0000 0A'`,
    );
    if (r.exitCode === 0) break;
    await Bun.sleep(100);
  }
  const c = await sh(client, `echo ${word} | timeout 4 nc -w 3 ${ip} ${port}`);
  const s = await listener;
  return s.stdout.includes(word) && c.exitCode === 0;
}

describe.skipIf(!live)(
  "role firewall_router between two test bridges (skipped only without Incus, the Debian and busybox images, Ansible or the package cache; all required under CI)",
  () => {
    beforeAll(async () => {
      dir = makeWorkdir("anklume-role-fw");
      const [sa, sb] = await freeSubnets("10.237", 2);
      A = `10.237.${sa}`;
      B = `10.237.${sb}`;
      write(
        join(dir, "infra.yml"),
        `project_name: fw${u}
global:
  base_subnet: "10.237"
domains:
  ${DA}:
    subnet_id: ${sa}
    ephemeral: true
    machines:
      ${FW}: {ip: "${A}.1", roles: [firewall_router]}
      ${CA}: {ip: "${A}.10"}
  ${DB}:
    subnet_id: ${sb}
    ephemeral: true
    machines:
      ${SB}: {ip: "${B}.10"}
network_policies:
  - description: "A reaches the web server of B"
    from: ${DA}
    to: ${SB}
    ports: [8080]
    protocol: tcp
`,
      );
      const sync = await make(dir, ["sync"]);
      if (sync.code !== 0) throw new Error(sync.out);
      const net = (d: string) =>
        parse(readFileSync(join(dir, "group_vars", `${d}.yml`), "utf8")).incus_network as {
          name: string;
          gateway: string;
        };
      const [na, nb] = [net(DA), net(DB)];
      for (const n of [na, nb]) {
        await incusRun([
          "network",
          "create",
          n.name,
          `ipv4.address=${n.gateway}/24`,
          // DHCP hands out the firewall (.1) as the default gateway, not the host.
          `ipv4.dhcp.gateway=${n.gateway.replace(/\.254$/, ".1")}`,
          "ipv4.nat=false",
          "ipv6.address=none",
        ]);
        bridges.push(n.name);
      }
      // What play 2 computes for the firewall: eth0 on its own bridge, eth1 on the other.
      const ifaces = JSON.parse(
        (
          await $({
            quiet: true,
          })`bun ${join(REPO, "scripts/reconcile.ts")} interfaces --base-dir ${dir} --host ${FW}`
        ).stdout,
      ) as { name: string; bridge: string }[];
      expect(ifaces).toEqual([
        { name: "eth0", bridge: na.name },
        { name: "eth1", bridge: nb.name },
      ]);
      vars = {
        firewall_router_interfaces: ifaces,
        firewall_router_log_prefix: PREFIX,
        anklume_bun: process.execPath,
      };
      await launch(FW, DEBIAN, [
        { name: "eth0", bridge: na.name, ip: `${A}.1` },
        { name: "eth1", bridge: nb.name, ip: `${B}.1` },
      ]);
      await launch(CA, BUSYBOX, [{ name: "eth0", bridge: na.name, ip: `${A}.10` }]);
      await launch(SB, BUSYBOX, [{ name: "eth0", bridge: nb.name, ip: `${B}.10` }]);
      await waitSystemd(FW);
      await aptProxy(FW, na.gateway);
      // The clients get their address and the firewall as gateway by DHCP;
      // the firewall's eth1 has no DHCP client in the image.
      await must(FW, `ip addr replace ${B}.1/24 dev eth1 && ip link set eth1 up`);
      await waitFor(
        CA,
        `ip -4 addr show eth0 | grep -q '${A}.10/' && ip route | grep -q 'default via ${A}.1 '`,
      );
      await waitFor(
        SB,
        `ip -4 addr show eth0 | grep -q '${B}.10/' && ip route | grep -q 'default via ${B}.1 '`,
      );
      await waitFor(FW, `ip -4 addr show eth0 | grep -q '${A}.1/'`);
    }, 180_000);

    afterAll(async () => {
      await cleanup([FW, CA, SB], bridges);
      if (dir) removeWorkdir(dir);
    }, 60_000);

    let seq: RoleSequence | undefined;
    const before: boolean[] = [];
    let ruleFileAfterCheck = -1;

    // Before the role the container forwards everything; then the shared
    // check/converge/again/recheck sequence (role-helpers.ts).
    beforeAll(async () => {
      before.push(await connects(SB, CA, `${B}.10`, 9090), await connects(CA, SB, `${A}.10`, 8080));
      seq = await roleSequence({ dir, hosts: [FW], role: "firewall_router", vars }, async () => {
        ruleFileAfterCheck = (await sh(FW, "test -e /etc/nftables.d/anklume-firewall.nft"))
          .exitCode;
      });
      console.log(
        `firewall_router converge: ${seq.converge.seconds.toFixed(1)} s, no-op: ${seq.again.seconds.toFixed(1)} s`,
      );
    }, 600_000);

    test("before the role, the container forwards everything (the connection checks below can fail)", () => {
      expect(before).toEqual([true, true]);
    });

    test("check mode on the fresh firewall succeeds and loads nothing", () => {
      const run = seq?.check as PlayRun;
      expect(run.code, run.out).toBe(0);
      expect(changed(run), run.out).toBeGreaterThan(0);
      expect(ruleFileAfterCheck).not.toBe(0);
    });

    // Matrix: IS-3-002
    test("converge: the policy's port passes, other ports and the reverse direction are dropped", async () => {
      const run = seq?.converge as PlayRun;
      expect(run.code, run.out).toBe(0);
      expect(await connects(SB, CA, `${B}.10`, 8080)).toBe(true);
      expect(await connects(SB, CA, `${B}.10`, 9090)).toBe(false);
      expect(await connects(CA, SB, `${A}.10`, 8080)).toBe(false);
    }, 180_000);

    test("the loaded ruleset: table inet anklume, forward policy drop, logging with the prefix", async () => {
      const r = await sh(FW, "nft list table inet anklume");
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toContain("policy drop");
      expect(r.stdout).toMatch(
        new RegExp(`iifname "eth0" oifname "eth1" ip daddr ${B}\\.10 tcp dport 8080 accept`),
      );
      expect(r.stdout).toContain(`log prefix "${PREFIX}-DENY-${DA.toUpperCase()}: "`);
      expect(r.stdout).toContain(`log prefix "${PREFIX}-DROP: "`);
      expect((await sh(FW, "cat /proc/sys/net/ipv4/ip_forward")).stdout.trim()).toBe("1");
      expect((await sh(FW, "systemctl is-enabled nftables")).stdout.trim()).toBe("enabled");
      expect(
        (
          await sh(FW, "grep -c 'include \"/etc/nftables.d/\\*.nft\"' /etc/nftables.conf")
        ).stdout.trim(),
      ).toBe("1");
    }, 30_000);

    test("a second run reports changed=0", () => {
      const run = seq?.again as PlayRun;
      expect(run.code, run.out).toBe(0);
      expect(changed(run), run.out).toBe(0);
    });

    test("check mode on the converged firewall reports changed=0 (make check sees the real state)", () => {
      const run = seq?.recheck as PlayRun;
      expect(run.code, run.out).toBe(0);
      expect(changed(run), run.out).toBe(0);
    });

    // Matrix: PV-3-001
    test("drift is corrected: a flushed ruleset and forwarding turned off are restored", async () => {
      expect(
        (await sh(FW, "nft flush ruleset && echo 0 > /proc/sys/net/ipv4/ip_forward")).exitCode,
      ).toBe(0);
      expect(await connects(SB, CA, `${B}.10`, 9090)).toBe(false); // forwarding off: nothing passes
      const run = await runRole({ dir, hosts: [FW], role: "firewall_router", vars });
      expect(run.code, run.out).toBe(0);
      expect(changed(run), run.out).toBe(2);
      expect(await connects(SB, CA, `${B}.10`, 8080)).toBe(true);
      expect(await connects(SB, CA, `${B}.10`, 9090)).toBe(false);
    }, 180_000);

    // Matrix: PV-3-002
    test("the ruleset survives a restart of the firewall (nftables.service loads it at boot)", async () => {
      await incusRun(["restart", FW]);
      await waitSystemd(FW);
      await must(FW, `ip addr replace ${B}.1/24 dev eth1 && ip link set eth1 up`);
      await waitFor(FW, `ip -4 addr show eth0 | grep -q '${A}.1/'`);
      const r = await sh(FW, "nft list table inet anklume");
      expect(r.stdout).toContain("policy drop");
      // The first connection after the restart may race the links coming up
      // (seen once in 4 runs): up to 3 tries, and what the firewall saw if none passes.
      let ok = false;
      for (let i = 1; i <= 3 && !ok; i++) {
        ok = await connects(SB, CA, `${B}.10`, 8080);
        if (!ok) {
          const d = await sh(
            FW,
            "cat /proc/sys/net/ipv4/ip_forward; ip -4 -br addr; ip -br link; systemctl is-active nftables",
          );
          console.log(
            `after restart, try ${i} failed; firewall: ${d.stdout.replace(/\n/g, " | ")}`,
          );
          await Bun.sleep(1000);
        }
      }
      expect(ok).toBe(true);
      expect(await connects(SB, CA, `${B}.10`, 9090)).toBe(false);
    }, 120_000);
  },
);

describe("scripts/nftables.ts router (no daemon needed)", () => {
  test("prints the firewall's accept rules from a synced tree: the policy on the NICs, host policies left out", async () => {
    const w = makeWorkdir("anklume-router-cli");
    try {
      write(
        join(w, "infra.yml"),
        `project_name: rcli
global:
  base_subnet: "10.239"
domains:
  anklume:
    subnet_id: 0
    machines:
      fw: {ip: "10.239.0.1", roles: [firewall_router]}
  pro:
    subnet_id: 2
    machines:
      dev: {ip: "10.239.2.10"}
  perso:
    subnet_id: 3
    machines:
      web: {ip: "10.239.3.10"}
network_policies:
  - {description: "pro to web", from: pro, to: web, ports: [443]}
  - {from: perso, to: pro, bidirectional: true}
  - {from: host, to: pro, ports: [22]}
`,
      );
      const sync = await make(w, ["sync"]);
      expect(sync.code, sync.out).toBe(0);
      const r = await $({
        nothrow: true,
        quiet: true,
      })`bun ${join(REPO, "scripts/nftables.ts")} router --base-dir ${w} --host fw`;
      expect(r.exitCode, r.stderr).toBe(0);
      const rules = JSON.parse(r.stdout) as Record<string, unknown>[];
      // eth0 anklume, then the other bridges sorted: eth1 perso, eth2 pro.
      expect(rules).toEqual([
        {
          description: "pro to web",
          iif: "eth2",
          oif: "eth1",
          daddr: "10.239.3.10",
          protocol: "tcp",
          ports: [443],
        },
        { description: "policy 2", iif: "eth1", oif: "eth2" },
        { description: "policy 2", iif: "eth2", oif: "eth1" },
      ]);
      const usage = await $({
        nothrow: true,
        quiet: true,
      })`bun ${join(REPO, "scripts/nftables.ts")} router --host fw`;
      expect(usage.exitCode).toBe(2);
      expect(usage.stderr).toContain("router needs --base-dir DIR and --host NAME");
      const none = await $({
        nothrow: true,
        quiet: true,
      })`bun ${join(REPO, "scripts/nftables.ts")} router --base-dir ${join(w, "nothing")} --host fw`;
      expect(none.exitCode).toBe(1);
      expect(none.stderr).toContain("run make sync");
    } finally {
      removeWorkdir(w);
    }
  }, 60_000);
});
