/**
 * Isolation end to end on an infra the product built (test audit 2.5, 7.4):
 * `make sync`, `make apply-infra NAT=false` (the product's own bridges with
 * ipv4.firewall and DHCP ranges, its projects, profiles and NICs with
 * security.ipv4_filtering, mac_filtering), then `make nftables` and
 * `make nftables-deploy`, then the same TCP matrix as tests/isolation.test.ts.
 * Each busybox container takes, through its udhcpc, the address the product
 * reserved for it on its NIC (ipv4.address, a static DHCP lease).
 * A scenario: the tests run in order (the matrix needs the deployed ruleset);
 * the before-deploy check and the deploy are each a test of their own.
 * Everything the infra creates is deleted in afterAll (cleanupInfra verifies);
 * a `table inet anklume` that existed before is put back, and so is
 * net.ipv4.ip_forward.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { $ } from "zx";
import { incusRaw } from "../lib/incus/client.ts";
import { specFromVars } from "../lib/nftables/spec.ts";
import { readGeneratedVars } from "../lib/nftables/tree.ts";
import {
  cleanupInfra,
  freeSubnets,
  make,
  makeWorkdir,
  removeWorkdir,
  testImage,
  write,
} from "./apply-helpers.ts";
import { incusOrSkip, scenario, uniq } from "./helpers.ts";

setDefaultTimeout(300_000);
const live = await incusOrSkip("tests/isolation-applied.test.ts");
const u = uniq();
const BASE = "10.241";
// Short domain names: the bridges keep their <prefix>net-<domain> names within 15 characters.
const domA = `i${u}a`;
const domB = `i${u}b`;
const a1 = `${domA}-1`;
const a2 = `${domA}-2`;
const b1 = `${domB}-1`;
const MACHINES = [a1, a2, b1];
const ip: Record<string, string> = {};
const inst: Record<string, string> = {};
const proj: Record<string, string> = {};
const bridge: Record<string, string> = {};

let dir = "";
let infraId = "";
let savedForward = "";
let savedTable: string | null = null;
let weLoaded = false;

const infra = (s: number[], image: string) => `project_name: iso${u}
global:
  base_subnet: "${BASE}"
  default_os_image: ${image}
domains:
  ${domA}:
    subnet_id: ${s[0]}
    machines:
      ${a1}: {ip: "${BASE}.${s[0]}.10"}
      ${a2}: {ip: "${BASE}.${s[0]}.11"}
  ${domB}:
    subnet_id: ${s[1]}
    machines:
      ${b1}: {ip: "${BASE}.${s[1]}.10"}
network_policies:
  - description: a1 reaches the web server of domain B
    from: ${a1}
    to: ${domB}
    ports: [8080]
    protocol: tcp
`;

/** Run a shell script inside a machine's instance (busybox sh). */
function sh(m: string, script: string) {
  return incusRaw(["exec", "--project", proj[m] ?? "", inst[m] ?? m, "--", "sh", "-c", script], {
    input: "\n",
    timeout: "20s",
  });
}

/** True when `from` opens a TCP connection to `to`:`port` and reads the server's "ok" within 2 s. */
async function connects(from: string, to: string, port: number): Promise<boolean> {
  const r = await sh(from, `echo | nc -w 2 ${ip[to]} ${port}`);
  return r.exitCode === 0 && r.stdout.includes("ok");
}

async function liveTable(): Promise<string | null> {
  const r = await $({ quiet: true, nothrow: true })`nft list table inet anklume`;
  return r.exitCode === 0 ? r.stdout : null;
}

beforeAll(async () => {
  if (!live) return;
  dir = makeWorkdir("anklume-iso-applied");
  savedForward = readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim();
  if (savedForward !== "1") writeFileSync("/proc/sys/net/ipv4/ip_forward", "1");
  savedTable = await liveTable();
  write(join(dir, "infra.yml"), infra(await freeSubnets(BASE, 2), testImage()));
  const sync = await make(dir, ["sync"]);
  expect(sync.code, sync.out).toBe(0);
  const gv = parse(readFileSync(join(dir, "group_vars", `${domA}.yml`), "utf8"));
  const prefix = (gv.incus_project as string).slice(0, -domA.length);
  infraId = `${prefix}iso${u}`;
  const { spec } = specFromVars(readGeneratedVars(dir));
  for (const d of spec.domains) bridge[d.name] = d.bridge;
  for (const m of spec.machines) {
    inst[m.name] = m.instanceName ?? m.name;
    ip[m.name] = m.ip ?? "";
    const g = parse(readFileSync(join(dir, "group_vars", `${m.domain}.yml`), "utf8"));
    proj[m.name] = g.incus_project;
  }
  expect(Object.keys(inst).sort()).toEqual([...MACHINES].sort());
}, 120_000);

afterAll(async () => {
  if (infraId) await cleanupInfra(infraId);
  if (savedTable !== null) {
    const f = join(dir, "restore.nft");
    writeFileSync(f, `table inet anklume\ndelete table inet anklume\n${savedTable}`);
    await $({ quiet: true, nothrow: true })`nft -f ${f}`;
  } else if (weLoaded) {
    await $({ quiet: true, nothrow: true })`nft delete table inet anklume`;
  }
  if (savedForward !== "" && savedForward !== "1") {
    writeFileSync("/proc/sys/net/ipv4/ip_forward", savedForward);
  }
  if (dir) removeWorkdir(dir);
}, 180_000);

describe.if(live)(
  "isolation on an infra that make apply-infra built (skipped only without an Incus daemon; required under CI)",
  () => {
    // The tests below are the steps of one scenario, run in order (tests/helpers.ts, test audit 5.6).
    const test = scenario();
    test("make apply-infra NAT=false builds the bridges and NICs; each container takes its reserved address by DHCP", async () => {
      const apply = await make(dir, ["apply-infra", "NAT=false", "SKIP_SNAPSHOT=1"]);
      expect(apply.code, apply.out).toBe(0);
      for (const m of MACHINES) {
        // The product's NIC: on the domain's bridge, the reserved address, IP filtering on.
        const nic = await incusRaw([
          "query",
          `/1.0/instances/${inst[m]}?project=${proj[m]}&recursion=1`,
        ]);
        expect(nic.exitCode, nic.stderr).toBe(0);
        const devices = JSON.parse(nic.stdout).expanded_devices as Record<
          string,
          Record<string, string>
        >;
        const eth0 = devices.eth0 ?? {};
        expect(eth0["ipv4.address"]).toBe(ip[m]);
        expect(eth0.network).toBe(bridge[m.startsWith(domA) ? domA : domB]);
        // The image's udhcpc takes the lease the product reserved on the bridge's DHCP.
        let addr = "";
        for (let i = 0; i < 100 && !addr.includes(`inet ${ip[m]}/24`); i++) {
          addr = (await sh(m, "ip -4 addr show dev eth0")).stdout;
          if (!addr.includes(`inet ${ip[m]}/24`)) await Bun.sleep(200);
        }
        expect(addr).toContain(`inet ${ip[m]}/24`);
      }
      for (const [m, port] of [
        [b1, 8080],
        [b1, 9090],
        [a1, 8080],
      ] as const) {
        await sh(m, `setsid nc -ll -p ${port} -e echo ok </dev/null >/dev/null 2>&1 &`);
        let up = false;
        for (let i = 0; i < 50 && !up; i++) {
          up = (await sh(m, `echo | nc -w 1 127.0.0.1 ${port}`)).stdout.includes("ok");
          if (!up) await Bun.sleep(100);
        }
        expect(up).toBe(true);
      }
    });

    test("before the deploy, cross-domain TCP flows both ways (so later refusals come from our rules)", async () => {
      expect(await connects(a2, b1, 8080)).toBe(true);
      expect(await connects(a1, b1, 9090)).toBe(true);
      expect(await connects(b1, a1, 8080)).toBe(true);
    });

    test("make nftables then make nftables-deploy load the ruleset for the applied bridges", async () => {
      const out = join(dir, "nftables-isolation.nft");
      const dest = join(dir, "etc/anklume-isolation.nft");
      const gen = await make(dir, ["nftables", `NFT_FILE=${out}`]);
      expect(gen.code, gen.out).toBe(0);
      const text = readFileSync(out, "utf8");
      expect(text).toContain(
        `iifname "${bridge[domA]}" oifname "${bridge[domB]}" ip saddr ${ip[a1]} tcp dport { 8080 } accept`,
      );
      const deploy = await make(dir, ["nftables-deploy", `NFT_FILE=${out}`, `NFT_DEST=${dest}`]);
      weLoaded = true;
      expect(deploy.code, deploy.out).toBe(0);
      expect(deploy.out).toContain("Loaded table inet anklume");
      expect(await liveTable()).toContain(`"${bridge[domB]}"`);
    });

    test("the machine the policy names reaches the allowed port; everything else between the domains is dropped", async () => {
      expect(await connects(a1, b1, 8080)).toBe(true);
      expect(await connects(a2, b1, 8080)).toBe(false);
      expect(await connects(a1, b1, 9090)).toBe(false);
      expect(await connects(b1, a1, 8080)).toBe(false);
    }, 60_000);

    test("traffic inside one domain still flows", async () => {
      expect(await connects(a2, a1, 8080)).toBe(true);
    });
  },
);
