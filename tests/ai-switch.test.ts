/**
 * `make ai-switch` with real traffic. The real generator writes a tree from
 * an infra.yml with two client domains and ai-tools under
 * `ai_access_policy: exclusive` and `ai_vram_flush: true`. The domains'
 * bridges, named as generated, live in a network namespace of the test's own
 * (the "host" side: forwarding on, and its own nftables, so neither this
 * machine's `table inet anklume` nor a concurrent test is touched); each
 * domain's machine is a namespace on its bridge, with the generated address.
 * A listener answers "ok" on Ollama's port on the ai-tools side.
 * `make ai-switch` runs inside the host-side namespace: it loads the ruleset
 * there. The VRAM flush runs in a real busybox container, the ai-tools
 * machine of the tree, where stand-in `systemctl` and `nvidia-smi` scripts
 * (there is no GPU here) log what the flush asked for.
 */
import { afterAll, beforeAll, describe, expect } from "bun:test";
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { $, type ProcessPromise } from "zx";
import { AI_HOLDER_FILE } from "../lib/nftables/ai-access.ts";
import { specFromVars } from "../lib/nftables/spec.ts";
import { readGeneratedVars } from "../lib/nftables/tree.ts";
import { freeSubnets, make, makeWorkdir, REPO, removeWorkdir, write } from "./apply-helpers.ts";
import { incusOrSkip, netnsOrSkip, scenario, uniq } from "./helpers.ts";
import { BUSYBOX, cleanup, launch, sh } from "./role-helpers.ts";

const SUITE = "tests/ai-switch.test.ts";
const live = (await netnsOrSkip(SUITE)) && (await incusOrSkip(SUITE));
const u = uniq();
const BASE = "10.244";
const AI_PORT = 11434;
const domA = `c${u}a`;
const domB = `c${u}b`;
const AI = "ai-tools";
const DOMAINS = [domA, domB, AI];
/** The namespaces: the host side (bridges, forwarding, nftables) and one per domain. */
const hostNs = `aisw-h-${u}`;
const ns: Record<string, string> = {
  [domA]: `aisw-a-${u}`,
  [domB]: `aisw-b-${u}`,
  [AI]: `aisw-i-${u}`,
};
const ip: Record<string, string> = {};
const bridge: Record<string, string> = {};
let aiInstance = "";
let dir = "";
let listener: ReturnType<typeof Bun.spawn> | undefined;
const out = () => join(dir, "nftables-isolation.nft");
const dest = () => join(dir, "etc/anklume-isolation.nft");

const q = $({ quiet: true, nothrow: true });
async function must(cmd: ProcessPromise, what: string): Promise<void> {
  const r = await cmd;
  if (r.exitCode !== 0) throw new Error(`${what}: ${r.stderr}`);
}

const infra = (s: number[]) => `project_name: aisw${u}
global:
  base_subnet: "${BASE}"
  default_os_image: ${BUSYBOX}
  ai_access_policy: exclusive
  ai_access_default: ${domA}
  ai_vram_flush: true
domains:
  ${domA}:
    subnet_id: ${s[0]}
    machines:
      ${domA}-1: {ip: "${BASE}.${s[0]}.10"}
  ${domB}:
    subnet_id: ${s[1]}
    machines:
      ${domB}-1: {ip: "${BASE}.${s[1]}.10"}
  ${AI}:
    subnet_id: ${s[2]}
    machines:
      ai${u}: {ip: "${BASE}.${s[2]}.10"}
`;

/** `make ai-switch` (or any target) run inside the host-side namespace. */
function makeInNs(args: string[]) {
  return q({
    cwd: dir,
    env: { ...process.env, NO_COLOR: "1" },
  })`ip netns exec ${hostNs} make --no-print-directory ${args}`.timeout("300s");
}

/** The script itself inside the host-side namespace (exit codes: make turns every failure into 2). */
function switchScript(args: string[]) {
  return q({
    cwd: dir,
    env: { ...process.env, NO_COLOR: "1" },
  })`ip netns exec ${hostNs} bun ${join(REPO, "scripts/ai-switch.ts")} ${args}`.timeout("300s");
}

/** True when the domain's machine opens Ollama's port on the ai-tools machine and reads "ok" within 2 s. */
async function reaches(domain: string): Promise<boolean> {
  const r =
    await q`ip netns exec ${ns[domain] ?? ""} sh -c ${`echo | busybox nc -w 2 ${ip[AI]} ${AI_PORT}`}`;
  return r.exitCode === 0 && r.stdout.includes("ok");
}

/** The stand-in systemctl: logs its arguments; `restart` fails when /tmp/fail-restart exists. */
const SYSTEMCTL = `#!/bin/sh
echo "$*" >> /tmp/systemctl.log
if [ "$1" = restart ] && [ -e /tmp/fail-restart ]; then echo "Job for $2.service failed" >&2; exit 1; fi
exit 0
`;

const holder = () =>
  existsSync(join(dir, AI_HOLDER_FILE))
    ? (JSON.parse(readFileSync(join(dir, AI_HOLDER_FILE), "utf8")).holder as string)
    : null;

beforeAll(async () => {
  if (!live) return;
  dir = makeWorkdir("anklume-ai-switch");
  const subnets = await freeSubnets(BASE, 3);
  write(join(dir, "infra.yml"), infra(subnets));
  const sync = await make(dir, ["sync"]);
  expect(sync.code, sync.out).toBe(0);
  const { spec } = specFromVars(readGeneratedVars(dir));
  for (const d of spec.domains) bridge[d.name] = d.bridge;
  for (const m of spec.machines) {
    ip[m.domain] = m.ip ?? "";
    if (m.domain === AI) aiInstance = m.instanceName ?? m.name;
  }
  expect(Object.keys(bridge).sort()).toEqual([...DOMAINS].sort());
  // The ai-tools machine lives in the default project here (a user key below the managed block).
  appendFileSync(join(dir, "host_vars", `ai${u}.yml`), "incus_project: default\n");

  await must(q`ip netns add ${hostNs}`, "ip netns add");
  await must(q`ip netns exec ${hostNs} sysctl -qw net.ipv4.ip_forward=1`, "ip_forward");
  for (const [i, d] of DOMAINS.entries()) {
    const br = bridge[d] ?? "";
    const gw = `${BASE}.${subnets[i]}.254`;
    const n = ns[d] ?? "";
    await must(q`ip netns add ${n}`, "ip netns add");
    await must(q`ip -n ${hostNs} link add ${br} type bridge`, "bridge");
    await must(q`ip -n ${hostNs} addr add ${`${gw}/24`} dev ${br}`, "bridge address");
    await must(q`ip -n ${hostNs} link set ${br} up`, "bridge up");
    await must(q`ip -n ${hostNs} link add ${`v${i}`} type veth peer name eth0 netns ${n}`, "veth");
    await must(q`ip -n ${hostNs} link set ${`v${i}`} master ${br} up`, "veth up");
    await must(q`ip -n ${n} addr add ${`${ip[d]}/24`} dev eth0`, "address");
    await must(q`ip -n ${n} link set eth0 up`, "eth0 up");
    await must(q`ip -n ${n} link set lo up`, "lo up");
    await must(q`ip -n ${n} route add default via ${gw}`, "route");
  }
  listener = Bun.spawn(
    [
      "ip",
      "netns",
      "exec",
      ns[AI] ?? "",
      "busybox",
      "nc",
      "-ll",
      "-p",
      String(AI_PORT),
      "-e",
      "echo",
      "ok",
    ],
    { stdout: "ignore", stderr: "ignore" },
  );
  let up = false;
  for (let i = 0; i < 50 && !up; i++) {
    const r =
      await q`ip netns exec ${ns[AI] ?? ""} sh -c ${`echo | busybox nc -w 1 127.0.0.1 ${AI_PORT}`}`;
    up = r.stdout.includes("ok");
    if (!up) await Bun.sleep(100);
  }
  expect(up).toBe(true);

  // The ai-tools machine, for the VRAM flush: busybox with the stand-ins.
  await launch(aiInstance, BUSYBOX, []);
  for (const [path, text] of [
    ["/usr/local/bin/systemctl", SYSTEMCTL],
    ["/usr/local/bin/nvidia-smi", "#!/bin/sh\necho '0 MiB'\n"],
  ] as const) {
    const r = await sh(
      aiInstance,
      `mkdir -p /usr/local/bin && cat > ${path} <<'EOF'\n${text}EOF\nchmod +x ${path}`,
    );
    expect(r.exitCode, r.stderr).toBe(0);
  }
}, 180_000);

afterAll(async () => {
  listener?.kill();
  if (aiInstance) await cleanup([aiInstance], []);
  for (const n of [hostNs, ...Object.values(ns)]) await q`ip netns delete ${n}`;
  if (dir) removeWorkdir(dir);
}, 120_000);

describe.if(live)(
  "make ai-switch moves the exclusive AI access, with real traffic in a namespace of its own and a stand-in systemctl/nvidia-smi for the VRAM flush (skipped only without root or an Incus daemon; required under CI)",
  () => {
    // The tests below are the steps of one scenario, run in order (tests/helpers.ts).
    const test = scenario();

    test("before any ruleset, both client domains reach the AI port (so later refusals come from ours)", async () => {
      expect(await reaches(domA)).toBe(true);
      expect(await reaches(domB)).toBe(true);
    });

    // Matrix: AA-001
    test("ai-switch to the default holder loads the ruleset: it reaches the AI port, the other client does not; no flush", async () => {
      const r = await makeInNs([
        "ai-switch",
        `D=${domA}`,
        `NFT_FILE=${out()}`,
        `NFT_DEST=${dest()}`,
      ]);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stderr).toContain(`"${domA}" already holds the AI access`);
      expect(await reaches(domA)).toBe(true);
      expect(await reaches(domB)).toBe(false);
      expect(holder()).toBe(domA);
      const log = await sh(aiInstance, "cat /tmp/systemctl.log 2>/dev/null");
      expect(log.stdout).toBe("");
    });

    // Matrix: AA-002, AA-2-001
    test("ai-switch D=<other> flushes the ai-tools machine, then the new holder reaches the AI port and the previous one no longer does", async () => {
      const r = await makeInNs([
        "ai-switch",
        `D=${domB}`,
        `NFT_FILE=${out()}`,
        `NFT_DEST=${dest()}`,
      ]);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stderr).toContain(`AI access moved from "${domA}" to "${domB}"`);
      expect(r.stderr).toContain(
        `${aiInstance} (project default): flushed: restarted: ollama speaches`,
      );
      expect(r.stderr).toContain("gpu memory used: 0 MiB");
      expect(await reaches(domB)).toBe(true);
      expect(await reaches(domA)).toBe(false);
      expect(holder()).toBe(domB);
      const log = (await sh(aiInstance, "cat /tmp/systemctl.log")).stdout;
      expect(log).toContain("is-active --quiet ollama");
      expect(log).toContain("restart ollama");
    });

    // Matrix: AA-003
    test("make nftables afterwards keeps the recorded holder instead of going back to ai_access_default", async () => {
      const file = join(dir, "rendered-after-switch.nft");
      const r = await make(dir, ["nftables", `NFT_FILE=${file}`]);
      expect(r.code, r.out).toBe(0);
      const text = readFileSync(file, "utf8");
      expect(text).toContain(`iifname "${bridge[domB]}" oifname "${bridge[AI]}" accept`);
      expect(text).not.toContain(`iifname "${bridge[domA]}" oifname "${bridge[AI]}" accept`);
      expect(text).toBe(readFileSync(out(), "utf8"));
    }, 120_000);

    test("DRY_RUN=1 prints the ruleset it would load and changes nothing; --json says who holds the access", async () => {
      const before = (await q`ip netns exec ${hostNs} nft list table inet anklume`).stdout;
      const file = readFileSync(out(), "utf8");
      const r = await makeInNs([
        "ai-switch",
        `D=${domA}`,
        "DRY_RUN=1",
        `NFT_FILE=${out()}`,
        `NFT_DEST=${dest()}`,
      ]);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toContain(`iifname "${bridge[domA]}" oifname "${bridge[AI]}" accept`);
      expect(r.stderr).toContain(`would move from "${domB}" to "${domA}"`);
      expect((await q`ip netns exec ${hostNs} nft list table inet anklume`).stdout).toBe(before);
      expect(readFileSync(out(), "utf8")).toBe(file);
      expect(holder()).toBe(domB);
      const j = await switchScript([
        "--domain",
        domA,
        "--dry-run",
        "--json",
        "--output",
        out(),
        "--dest",
        dest(),
      ]);
      expect(j.exitCode, j.stderr).toBe(0);
      const parsed = JSON.parse(j.stdout);
      expect(parsed.previous).toBe(domB);
      expect(parsed.holder).toBe(domA);
      expect(parsed.changed).toBe(false);
      expect(parsed.text).toBeUndefined();
      expect(await reaches(domB)).toBe(true);
    });

    // Matrix: AA-004
    test("refusals change nothing: no D= (exit 2), an unknown domain and ai-tools itself (exit 1, the known domains named)", async () => {
      const before = (await q`ip netns exec ${hostNs} nft list table inet anklume`).stdout;
      const none = await makeInNs(["ai-switch"]);
      expect(none.exitCode).toBe(2);
      expect(none.stderr).toContain("make ai-switch needs D=<domain>");
      const usage = await switchScript([]);
      expect(usage.exitCode).toBe(2);
      const unknown = await switchScript(["--domain", "nope", "--output", out(), "--dest", dest()]);
      expect(unknown.exitCode).toBe(1);
      expect(unknown.stderr).toContain(`known domains: "${domA}", "${domB}"`);
      const self = await switchScript(["--domain", AI, "--output", out(), "--dest", dest()]);
      expect(self.exitCode).toBe(1);
      expect(self.stderr).toContain(`Cannot give the AI access to "ai-tools" itself`);
      expect((await q`ip netns exec ${hostNs} nft list table inet anklume`).stdout).toBe(before);
      expect(holder()).toBe(domB);
      expect(await reaches(domB)).toBe(true);
    });

    // Matrix: AA-2-002
    test("a failed flush stops the switch: the previous holder keeps the access; NO_FLUSH=1 then switches", async () => {
      await sh(aiInstance, "touch /tmp/fail-restart");
      const r = await switchScript(["--domain", domA, "--output", out(), "--dest", dest()]);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain("the VRAM flush failed");
      expect(r.stderr).toContain(`"${domB}" keeps the access`);
      expect(await reaches(domB)).toBe(true);
      expect(await reaches(domA)).toBe(false);
      expect(holder()).toBe(domB);
      const forced = await makeInNs([
        "ai-switch",
        `D=${domA}`,
        "NO_FLUSH=1",
        `NFT_FILE=${out()}`,
        `NFT_DEST=${dest()}`,
      ]);
      expect(forced.exitCode, forced.stderr).toBe(0);
      expect(forced.stderr).not.toContain("Flushing");
      expect(await reaches(domA)).toBe(true);
      expect(await reaches(domB)).toBe(false);
      expect(holder()).toBe(domA);
    });
  },
);
