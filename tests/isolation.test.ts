/**
 * Network isolation for real: two domains on bridges of their own (no NAT,
 * test subnets in 10.232.0.0/16), busybox containers on each, a generated
 * tree that the real generator writes from a tiny infra.yml, then
 * `make nftables` and `make nftables-deploy`.
 * Cross-domain TCP works before the deploy (so the later refusals are ours),
 * and after it only what network_policies allows gets through, while traffic
 * inside a domain still flows. Everything created is deleted in afterAll; a
 * `table inet anklume` that existed before is put back, and so is
 * net.ipv4.ip_forward.
 */
import { afterAll, beforeAll, describe, expect } from "bun:test";
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import * as v from "valibot";
import { parse } from "yaml";
import { $ } from "zx";
import { incusJson, incusRaw, incusRun } from "../lib/incus/client.ts";
import { specFromVars } from "../lib/nftables/spec.ts";
import { readGeneratedVars } from "../lib/nftables/tree.ts";
import { PACKAGE_CACHE_PORT } from "../lib/provision/package-cache.ts";
import { incusOrSkip, scenario, testImage, uniq } from "./helpers.ts";

const live = await incusOrSkip("tests/isolation.test.ts");
const ROOT = resolve(import.meta.dir, "..");

const s = uniq();
// Domains and machines as infra.yml names them; Incus names come from the generated files.
const domA = `a${s}`;
const domB = `b${s}`;
const a1 = `${domA}-1`;
const a2 = `${domA}-2`;
const b1 = `${domB}-1`;
const MACHINES = [a1, a2, b1];
const ip: Record<string, string> = {};
const inst: Record<string, string> = {};
const proj: Record<string, string> = {};
const bridge: Record<string, string> = {};
let bridgeA = "";
let bridgeB = "";
/** The host's address on domain A's bridge, and the host servers the test listens with there. */
let gwA = "";
let hostPort = 0;
let cachePort = 0;
const servers: Server[] = [];

let work = "";
let savedForward = "";
let savedTable: string | null = null;
let weLoaded = false;
const created = { projects: [] as string[], bridges: [] as string[] };

const NetSchema = v.array(
  v.looseObject({ name: v.string(), config: v.optional(v.record(v.string(), v.string()), {}) }),
);

/** Run a shell script inside a machine's instance (busybox sh; the images have no bash). */
function sh(m: string, script: string) {
  return incusRaw(
    ["exec", "--project", proj[m] ?? "default", inst[m] ?? m, "--", "sh", "-c", script],
    { input: "\n", timeout: "20s" },
  );
}

/** True when `from` opens a TCP connection to `to`:`port` and reads the server's "ok" within 2 s. */
async function connects(from: string, to: string, port: number): Promise<boolean> {
  const r = await sh(from, `echo | nc -w 2 ${ip[to]} ${port}`);
  return r.exitCode === 0 && r.stdout.includes("ok");
}

/** True when `from` opens a TCP connection to `addr`:`port` within 2 s (whatever the server says). */
async function opens(from: string, addr: string, port: number): Promise<boolean> {
  const r = await sh(from, `echo | nc -w 2 ${addr} ${port}`);
  return r.exitCode === 0 && !r.stderr.includes("timed out");
}

/** A TCP server in this process, on the host's address `addr`, that answers "ok" (port 0: any free one). */
function listenOk(addr: string, port: number): Promise<number> {
  return new Promise((done, fail) => {
    const srv = createServer((c) => c.end("ok\n"));
    srv.once("error", fail);
    srv.listen(port, addr, () => {
      servers.push(srv);
      const a = srv.address();
      done(typeof a === "object" && a ? a.port : 0);
    });
  });
}

async function liveTable(): Promise<string | null> {
  const r = await $({ quiet: true, nothrow: true })`nft list table inet anklume`;
  return r.exitCode === 0 ? r.stdout : null;
}

/** `make -f <repo>/Makefile <args>` run from the test's own project directory. */
function make(args: string[]) {
  return $({
    cwd: work,
    quiet: true,
    nothrow: true,
    env: { ...process.env, NO_COLOR: "1" },
  })`make --no-print-directory -f ${join(ROOT, "Makefile")} ${args}`.timeout("300s");
}

/** The test's infra.yml: two domains, three machines, one machine-level policy and a host one. */
function infraYml(x: number): string {
  return `project_name: isolation-${s}
global:
  base_subnet: "10.232"
  default_os_image: anklume-busybox
domains:
  ${domA}:
    description: isolation test A
    subnet_id: ${x}
    ephemeral: true
    machines:
      ${a1}: {ip: "10.232.${x}.10"}
      ${a2}: {ip: "10.232.${x}.11"}
  ${domB}:
    description: isolation test B
    subnet_id: ${x + 1}
    ephemeral: true
    machines:
      ${b1}: {ip: "10.232.${x + 1}.10"}
network_policies:
  - description: a1 reaches the web server of domain B
    from: ${a1}
    to: ${domB}
    ports: [8080]
    protocol: tcp
  - description: the host reaches B (not a forward rule)
    from: host
    to: ${domB}
    ports: [22]
`;
}

/**
 * The playbook `make nftables` runs: the repository's site.yml, whose play 3
 * applies incus_nftables (its play 2 ends machines without roles before
 * touching them). Fails loudly if play 3 goes missing.
 */
function playbook(): string {
  const real = join(ROOT, "site.yml");
  const text = readFileSync(real, "utf8");
  if (!/(role|name): incus_nftables\b/.test(text)) {
    throw new Error(`${real} has no play applying role incus_nftables (play 3)`);
  }
  return text;
}

describe.skipIf(!live)(
  "network isolation between domains, real Incus and nftables (skipped only without an Incus daemon; required under CI)",
  () => {
    // The tests below are the steps of one scenario, run in order (tests/helpers.ts, test audit 5.6).
    const test = scenario();
    beforeAll(async () => {
      work = mkdtempSync(join(tmpdir(), "anklume-isolation-"));
      savedForward = readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim();
      if (savedForward !== "1") writeFileSync("/proc/sys/net/ipv4/ip_forward", "1");
      savedTable = await liveTable();

      // Two free /24s in 10.232.0.0/16, next to each other.
      const used = (await incusJson(["network", "list", "--all-projects"], NetSchema)).map(
        (n) => n.config["ipv4.address"] ?? "",
      );
      let x = 20 + Math.floor(Math.random() * 200);
      while (used.some((a) => a.startsWith(`10.232.${x}.`) || a.startsWith(`10.232.${x + 1}.`))) {
        x = 20 + ((x + 2 - 20) % 200);
      }

      // make sync's generator writes the tree; every Incus name is read back from it.
      writeFileSync(join(work, "infra.yml"), infraYml(x));
      const gen = await $({
        cwd: work,
        quiet: true,
        nothrow: true,
      })`bun ${join(ROOT, "scripts/generate.ts")} infra.yml --base-dir ${work}`;
      expect(gen.stderr).not.toContain("rror");
      expect(gen.exitCode).toBe(0);
      const { spec } = specFromVars(readGeneratedVars(work));
      for (const d of spec.domains) bridge[d.name] = d.bridge;
      bridgeA = bridge[domA] ?? "";
      bridgeB = bridge[domB] ?? "";
      for (const m of spec.machines) {
        inst[m.name] = m.instanceName ?? m.name;
        ip[m.name] = m.ip ?? "";
        const gv = parse(readFileSync(join(work, "group_vars", `${m.domain}.yml`), "utf8"));
        proj[m.name] = gv.incus_project;
      }
      expect(Object.keys(inst).sort()).toEqual([...MACHINES].sort());
      writeFileSync(join(work, "site.yml"), playbook());
      // site.yml imports play 1's task file by its path beside the playbook.
      symlinkSync(join(ROOT, "roles"), join(work, "roles"));
      writeFileSync(
        join(work, "ansible.cfg"),
        `[defaults]\ninventory = inventory/\nroles_path = ${join(ROOT, "roles")}\nhost_key_checking = False\nretry_files_enabled = False\ngathering = explicit\n`,
      );

      // Incus resources named as generated; bridges without NAT or DHCP, addresses set by hand.
      for (const [dom, sid] of [
        [domA, x],
        [domB, x + 1],
      ] as const) {
        const br = bridge[dom] ?? "";
        await incusRun(
          [
            "network",
            "create",
            br,
            `ipv4.address=10.232.${sid}.254/24`,
            "ipv4.nat=false",
            "ipv4.dhcp=false",
            "ipv6.address=none",
          ],
          { input: "\n" }, // `network create` reads YAML from a piped stdin; zx ignores an empty input
        );
        created.bridges.push(br);
      }
      for (const p of new Set(Object.values(proj))) {
        await incusRun(
          ["project", "create", p, "-c", "features.images=false", "-c", "features.profiles=false"],
          { input: "\n" },
        );
        created.projects.push(p);
      }
      const image = testImage();
      for (const m of MACHINES) {
        const br = m === b1 ? bridgeB : bridgeA;
        await incusRun(
          ["launch", image, inst[m] ?? m, "--project", proj[m] ?? "", "--network", br],
          {
            input: "\n",
          },
        );
        const gw = (ip[m] ?? "").replace(/\.\d+$/, ".254");
        const up = await sh(
          m,
          `ip link set eth0 up && ip addr add ${ip[m]}/24 dev eth0 && ip route replace default via ${gw}`,
        );
        expect(up.stderr).toBe("");
      }
      // Servers answer "ok": b1 on 8080 (allowed for a1) and 9090 (not allowed), a1 on 8080.
      for (const [m, port] of [
        [b1, 8080],
        [b1, 9090],
        [a1, 8080],
      ] as const) {
        await sh(m, `setsid nc -ll -p ${port} -e echo ok </dev/null >/dev/null 2>&1 &`);
        // Ready when it answers on the instance's own loopback.
        let up = false;
        for (let i = 0; i < 50 && !up; i++) {
          const r = await sh(m, `echo | nc -w 1 127.0.0.1 ${port}`);
          up = r.stdout.includes("ok");
          if (!up) await Bun.sleep(100);
        }
        expect(up).toBe(true);
      }
      // On the host, on domain A's gateway: a service the domains must not reach, and the
      // package cache's port (apt-cacher-ng itself when bootstrap.sh started it, else ours).
      gwA = (ip[a1] ?? "").replace(/\.\d+$/, ".254");
      hostPort = await listenOk(gwA, 0);
      cachePort = PACKAGE_CACHE_PORT;
      await listenOk(gwA, cachePort).catch(() => undefined);
    }, 180_000);

    afterAll(async () => {
      for (const srv of servers) srv.close();
      for (const m of MACHINES) {
        if (inst[m])
          await incusRaw(["delete", "--force", "--project", proj[m] ?? "default", inst[m]]);
      }
      for (const p of created.projects) await incusRaw(["project", "delete", p]);
      for (const br of created.bridges) await incusRaw(["network", "delete", br]);
      if (savedTable !== null) {
        const f = join(work, "restore.nft");
        writeFileSync(f, `table inet anklume\ndelete table inet anklume\n${savedTable}`);
        await $({ quiet: true, nothrow: true })`nft -f ${f}`;
      } else if (weLoaded) {
        await $({ quiet: true, nothrow: true })`nft delete table inet anklume`;
      }
      if (savedForward !== "" && savedForward !== "1") {
        writeFileSync("/proc/sys/net/ipv4/ip_forward", savedForward);
      }
      if (work !== "") rmSync(work, { recursive: true, force: true });
    }, 120_000);

    test("before any deploy, cross-domain TCP flows both ways (so later refusals come from our rules)", async () => {
      expect(readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim()).toBe("1");
      expect(await connects(a2, b1, 8080)).toBe(true);
      expect(await connects(a1, b1, 9090)).toBe(true);
      expect(await connects(b1, a1, 8080)).toBe(true);
      expect(await opens(a1, gwA, hostPort)).toBe(true);
      expect(await opens(a1, gwA, cachePort)).toBe(true);
    });

    // Matrix: IS-001
    test("make nftables writes the ruleset from the generated variables, and a second run changes nothing", async () => {
      const out = join(work, "nftables-isolation.nft");
      const first = await make(["nftables", `NFT_FILE=${out}`]);
      expect(first.stderr + first.stdout).toContain("changed=1");
      expect(first.exitCode).toBe(0);
      const text = readFileSync(out, "utf8");
      expect(text).toContain(`iifname "${bridgeA}" oifname "${bridgeA}" accept`);
      expect(text).toContain(
        `iifname "${bridgeA}" oifname "${bridgeB}" ip saddr ${ip[a1]} tcp dport { 8080 } accept`,
      );
      expect(text).toContain(
        `iifname { "${bridgeA}", "${bridgeB}" } oifname { "${bridgeA}", "${bridgeB}" } drop`,
      );
      // The host policy (port 22) is not a forward rule; the run says so.
      expect(text).not.toContain("dport { 22 }");
      expect(first.stdout).toContain("involves host, which the forward chain does not filter");
      const second = await make(["nftables", `NFT_FILE=${out}`]);
      expect(second.exitCode).toBe(0);
      expect(second.stdout).toContain("changed=0");
    }, 120_000);

    // Matrix: IS-002
    test("make nftables-deploy DRY_RUN=1 validates and prints the rules but loads nothing", async () => {
      const out = join(work, "nftables-isolation.nft");
      const dest = join(work, "etc/anklume-isolation.nft");
      const r = await make(["nftables-deploy", "DRY_RUN=1", `NFT_FILE=${out}`, `NFT_DEST=${dest}`]);
      expect(r.stderr).toContain("is valid (nft -c)");
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toContain("table inet anklume {");
      expect(existsSync(dest)).toBe(false);
      expect(await liveTable()).toBe(savedTable);
      expect(await connects(a2, b1, 8080)).toBe(true);
    }, 120_000);

    // Matrix: IS-003
    test("make nftables-deploy loads table inet anklume; loading it again gives the same ruleset", async () => {
      const out = join(work, "nftables-isolation.nft");
      const dest = join(work, "etc/anklume-isolation.nft");
      const args = ["nftables-deploy", `NFT_FILE=${out}`, `NFT_DEST=${dest}`];
      const r = await make(args);
      weLoaded = true;
      expect(r.stderr).toContain("Loaded table inet anklume");
      expect(r.exitCode).toBe(0);
      expect(readFileSync(dest, "utf8")).toBe(readFileSync(out, "utf8"));
      expect(statSync(dest).mode & 0o7777).toBe(0o644);
      const loaded = await liveTable();
      expect(loaded).toContain("chain isolation");
      expect(loaded).toContain("type filter hook forward priority filter - 1; policy accept;");
      const again = await make(args);
      expect(again.exitCode).toBe(0);
      expect(again.stderr).toContain("already up to date");
      expect(await liveTable()).toBe(loaded);
    }, 120_000);

    // Matrix: IS-2-001
    test("the machine a policy names reaches the allowed port in the other domain", async () => {
      expect(await connects(a1, b1, 8080)).toBe(true);
    });

    // Matrix: IS-004
    test("everything else between the domains is dropped (nc -w 2 fails to connect)", async () => {
      // Same port, other machine of domain A: the policy names a1 only.
      expect(await connects(a2, b1, 8080)).toBe(false);
      // Allowed machine, port not in the policy.
      expect(await connects(a1, b1, 9090)).toBe(false);
      // The policy is not bidirectional.
      expect(await connects(b1, a1, 8080)).toBe(false);
    }, 60_000);

    // Matrix: IS-2-003
    test("from the domains, the host answers on the package cache's port and on nothing else", async () => {
      expect(await opens(a1, gwA, cachePort)).toBe(true);
      expect(await opens(a1, gwA, hostPort)).toBe(false);
      expect(await opens(a2, gwA, hostPort)).toBe(false);
    }, 60_000);

    // Matrix: IS-005
    test("traffic inside one domain still flows", async () => {
      expect(await connects(a2, a1, 8080)).toBe(true);
    });

    // Matrix: IS-3-001
    test("nftables-deploy --source pulls the ruleset from an instance in another project; a tampered one is refused", async () => {
      const good = join(work, "nftables-isolation.nft");
      const push = (file: string) =>
        incusRun([
          "file",
          "push",
          "--create-dirs",
          "--project",
          proj[b1] ?? "",
          file,
          `${inst[b1]}/opt/anklume/nftables-isolation.nft`,
        ]);
      await push(good);
      const deploy = (extra: string[]) =>
        $({
          quiet: true,
          nothrow: true,
        })`bun ${join(ROOT, "scripts/nftables-deploy.ts")} --source ${inst[b1] ?? ""} ${extra}`;
      const ok = await deploy(["--dry-run"]);
      expect(ok.stderr).toContain(`Ruleset: ${inst[b1]}:/opt/anklume/nftables-isolation.nft`);
      expect(ok.exitCode).toBe(0);
      expect(ok.stdout).toBe(readFileSync(good, "utf8"));

      const bad = join(work, "tampered.nft");
      writeFileSync(bad, `${readFileSync(good, "utf8")}\nflush ruleset\ntable ip nat {\n}\n`);
      await push(bad);
      const before = await liveTable();
      const refused = await deploy(["--dest", join(work, "etc/tampered.nft")]);
      expect(refused.exitCode).toBe(1);
      expect(refused.stderr).toContain("flush ruleset");
      expect(refused.stderr).toContain("table ip nat {");
      expect(await liveTable()).toBe(before);
    }, 120_000);
  },
);
