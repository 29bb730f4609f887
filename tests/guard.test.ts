/**
 * incus-guard against the real kernel, only inside network namespaces that
 * these tests create (a veth uplink whose gateway lives in a second
 * namespace): post-start, the start watcher, check, route restoration,
 * install into a temporary root, and check, start, watch and post-start
 * against the real Incus daemon with bridges of their own. Every behaviour
 * runs twice: the script under Bun and the compiled binary. Each test builds
 * the namespaces, run directory and log it uses, so any test runs alone
 * (`bun test -t ...`) and a failure leaves nothing to the next one.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  existsSync,
  lstatSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { $ } from "zx";
import { incusRaw } from "../lib/incus/client.ts";
import {
  defaultRoute,
  destroyLeftNetns,
  freeTestSubnet,
  type GuardNetns,
  guardCommand,
  incusTestBridge,
  removeGuardBinary,
  runGuard,
  withNetns,
} from "./guard-netns.ts";
import { incusOrSkip, isCI, netnsOrSkip, uniq } from "./helpers.ts";

const q = $({ quiet: true, nothrow: true });

const canNetns = await netnsOrSkip("tests/guard.test.ts");
const live = await incusOrSkip("tests/guard.test.ts");

/** systemd-analyze checks the drop-in; under CI=true its absence is a failure, locally a skip. */
async function analyzeOrSkip(): Promise<boolean> {
  const ok = (await q`which systemd-analyze`).exitCode === 0;
  if (!ok && isCI())
    throw new Error("systemd-analyze is missing: install the Debian package systemd (see .ci/run)");
  if (!ok) console.warn("skipping the drop-in verification: systemd-analyze is not installed");
  return ok;
}
const analyze = await analyzeOrSkip();

const work = mkdtempSync(join(tmpdir(), "anklume-guard-test-"));
const ISO_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z incus-guard\[[a-z-]+\]: /;

afterAll(async () => {
  removeGuardBinary();
  await destroyLeftNetns();
  rmSync(work, { recursive: true, force: true });
});

/** A fresh directory for one test's log and saved uplink. */
const testDir = () => mkdtempSync(join(work, "t-"));

/** Options for a run: Incus left out, the test's own log and run directory. */
const opts = (dir: string) => [
  "--no-incus",
  "--log",
  join(dir, "guard.log"),
  "--run-dir",
  join(dir, "run"),
];

/** Run the guard in the background inside `ns` and read its stderr as it comes. */
function spawnGuard(cmd: string[], ns: string, args: string[]) {
  const proc = Bun.spawn(["ip", "netns", "exec", ns, ...cmd, ...args], { stderr: "pipe" });
  let err = "";
  (async () => {
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) {
      err += new TextDecoder().decode(chunk);
    }
  })();
  return {
    proc,
    stderr: () => err,
    /** Poll stderr for `text` up to 10 s, so a silent guard fails the test instead of hanging it. */
    async until(text: string): Promise<boolean> {
      const deadline = Date.now() + 10_000;
      while (!err.includes(text) && Date.now() < deadline) await Bun.sleep(10);
      return err.includes(text);
    },
  };
}

for (const kind of ["script", "binary"] as const) {
  // Matrix: GD-001
  test(`incus-guard (${kind}): --help exits 0, usage errors exit 2`, async () => {
    const cmd = await guardCommand(kind);
    const help = await q`${cmd} --help`;
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toContain("post-start");
    for (const bad of [[], ["bogus"], ["check", "--dry-run"], ["start", "--settle", "soon"]]) {
      const r = await q`${cmd} ${bad}`;
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toContain("error:");
    }
  }, 30_000);

  describe.skipIf(!canNetns)(
    `incus-guard (${kind}) (skipped only without root for network namespaces; required under CI)`,
    () => {
      let cmd: string[];
      beforeAll(async () => {
        cmd = await guardCommand(kind);
      }, 60_000);

      // Matrix: GD-002
      test(
        "post-start deletes overlapping bridges of any prefix length, leaves neighbours and the uplink",
        () =>
          withNetns(async (n24) =>
            withNetns(
              async (n16) => {
                const dir = testDir();
                await n24.bridge("brsame", "10.77.5.200/24"); // same /24
                await n24.bridge("braround", "10.77.0.1/16"); // a /16 around the host's /24
                await n24.bridge("brnext", "10.77.50.1/24"); // neighbour /24: no overlap
                await n24.bridge("brother", "10.99.0.1/24");
                await n16.bridge("brinside", "10.88.7.1/24"); // a /24 inside the host's /16
                await n16.bridge("brbeside", "10.89.0.1/24"); // next /16: no overlap

                const r24 = await runGuard(cmd, n24.ns, ["post-start", ...opts(dir)]);
                const r16 = await runGuard(cmd, n16.ns, ["post-start", ...opts(dir)]);
                expect(r24.exitCode).toBe(0);
                expect(r16.exitCode).toBe(0);
                expect(await n24.links()).toEqual(["brnext", "brother", "lo", "up0"]);
                expect(await n16.links()).toEqual(["brbeside", "lo", "up0"]);
                const up = (await n24.ipJson(["-4", "addr", "show", "dev", "up0"])) as {
                  addr_info: { local: string }[];
                }[];
                expect(up[0]?.addr_info.map((a) => a.local)).toEqual(["10.77.5.2"]);
                expect(await defaultRoute(n24)).toMatchObject({ gateway: "10.77.5.1", dev: "up0" });
                expect(readFileSync(join(dir, "run", "incus-guard-host-dev"), "utf8")).toBe(
                  "up0\n",
                );

                const log = readFileSync(join(dir, "guard.log"), "utf8").trim().split("\n");
                expect(log.every((l) => ISO_LINE.test(l))).toBe(true);
                for (const line of [
                  "deleted bridge brsame",
                  "deleted bridge braround",
                  "deleted bridge brinside",
                  "OK: gateway 10.77.5.1 answers on up0",
                  "OK: gateway 10.88.0.1 answers on up0",
                ])
                  expect(log.some((l) => l.includes(line))).toBe(true);
              },
              "10.88.0.2/16",
              "10.88.0.1",
            ),
          ),
        60_000,
      );

      // Matrix: GD-003
      test(
        "check reports a conflict as JSON without changing anything",
        () =>
          withNetns(async (n) => {
            const dir = testDir();
            await n.bridge("brcheck", "10.77.5.9/28");
            const r = await runGuard(cmd, n.ns, ["check", "--json", ...opts(dir)]);
            expect(r.exitCode).toBe(1);
            expect(JSON.parse(r.stdout)).toEqual({
              uplink: { dev: "up0", gateway: "10.77.5.1", from: "route" },
              defaultRoute: true,
              hostNetworks: ["10.77.5.0/24"],
              bridges: [{ ifname: "brcheck", network: "10.77.5.0/28", host: "10.77.5.0/24" }],
              incus: null,
              ok: false,
            });
            expect(await n.links()).toContain("brcheck");
            await n.ip(["link", "delete", "brcheck"]);
            const clean = await runGuard(cmd, n.ns, ["check", "--json", ...opts(dir)]);
            expect(clean.exitCode).toBe(0);
            expect(JSON.parse(clean.stdout).ok).toBe(true);
          }),
        60_000,
      );

      // Matrix: GD-004
      test(
        "post-start restores a lost default route from the uplink it saved",
        () =>
          withNetns(async (n) => {
            const dir = testDir();
            const first = await runGuard(cmd, n.ns, ["post-start", ...opts(dir)]);
            expect(first.exitCode).toBe(0);
            expect(readFileSync(join(dir, "run", "incus-guard-host-gw"), "utf8")).toBe(
              "10.77.5.1\n",
            );
            await n.ip(["route", "delete", "default"]);
            expect(await defaultRoute(n)).toBeNull();
            const r = await runGuard(cmd, n.ns, ["post-start", ...opts(dir)]);
            expect(r.exitCode).toBe(0);
            expect(await defaultRoute(n)).toMatchObject({ gateway: "10.77.5.1", dev: "up0" });
            expect(r.stderr).toContain("no default route: using the saved uplink up0");
            expect(r.stderr).toContain("restored the default route via 10.77.5.1 dev up0");
          }),
        60_000,
      );

      // Matrix: GD-005
      test(
        "post-start exits 0 even with no uplink at all",
        () =>
          withNetns(
            async (bare) => {
              const dir = testDir();
              const r = await runGuard(cmd, bare.ns, ["post-start", ...opts(dir)]);
              expect(r.exitCode).toBe(0);
              expect(r.stderr).toContain("no default route and no saved uplink");
              // A saved uplink that no longer exists and a log that cannot be written: still 0.
              const badRun = mkdtempSync(join(dir, "bad-run-"));
              writeFileSync(join(badRun, "incus-guard-host-dev"), "nosuchdev\n");
              writeFileSync(join(badRun, "incus-guard-host-gw"), "10.1.1.1\n");
              const r2 = await runGuard(cmd, bare.ns, [
                "post-start",
                "--no-incus",
                "--log",
                "/proc/forbidden/log",
                "--run-dir",
                badRun,
              ]);
              expect(r2.exitCode).toBe(0);
              expect(r2.stderr).toContain("cannot write the log /proc/forbidden/log");
              expect(r2.stderr).toContain("using the saved uplink nosuchdev");
              expect(r2.stderr).toContain("cannot restore the default route");
            },
            undefined,
            undefined,
            false,
          ),
        60_000,
      );

      // Matrix: GD-2-001
      test(
        "start deletes a conflicting bridge while Incus starts and leaves the others",
        () =>
          withNetns(async (n) => {
            const dir = testDir();
            // The start command waits (up to a generous 10 s) for the watcher to
            // remove brw while it still runs; how fast that is, bench/guard.ts measures.
            const startCmd = [
              "ip link add brw type bridge",
              "ip addr add 10.77.5.50/24 dev brw",
              "ip link set brw up",
              "ip link add brok type bridge",
              "ip addr add 10.66.0.1/24 dev brok",
              "for i in $(seq 200); do ip link show dev brw >/dev/null 2>&1 || exit 0; sleep 0.05; done",
              "echo 'brw still there after 10 s' >&2; exit 1",
            ].join("; ");
            const r = await runGuard(cmd, n.ns, [
              "start",
              "--settle",
              "0.1",
              "--start-cmd",
              startCmd,
              ...opts(dir),
            ]);
            expect(r.stderr).toContain("deleted bridge brw");
            expect(r.exitCode).toBe(0);
            expect(await n.links()).toEqual(["brok", "lo", "up0"]);
          }),
        60_000,
      );

      // Matrix: GD-2-002
      test(
        "watch deletes bridges as they appear, follows a new uplink address, stops on SIGTERM",
        () =>
          withNetns(async (n) => {
            const g = spawnGuard(cmd, n.ns, ["watch", ...opts(testDir())]);
            try {
              expect(await g.until("watching bridges")).toBe(true);
              await n.bridge("brlate", "10.77.5.77/24");
              await n.bridge("brlan", "10.55.0.1/24");
              expect(await g.until("deleted bridge brlate")).toBe(true);
              expect(await n.links()).toContain("brlan");
              await n.ip(["addr", "add", "10.55.0.2/24", "dev", "up0"]);
              expect(await g.until("deleted bridge brlan")).toBe(true);
              expect(await n.links()).toEqual(["lo", "up0"]);
            } finally {
              g.proc.kill("SIGTERM");
              expect(await g.proc.exited).toBe(0);
            }
          }),
        30_000,
      );

      test(
        "start exits 1 when the gateway does not answer",
        () =>
          withNetns(async (n) => {
            await q`ip -n ${n.gwNs} link set gw0 down`;
            const r = await runGuard(cmd, n.ns, [
              "start",
              "--settle",
              "0",
              "--start-cmd",
              "true",
              ...opts(testDir()),
            ]);
            expect(r.exitCode).toBe(1);
            expect(r.stderr).toContain("the gateway 10.77.5.1 on up0 does not answer");
          }),
        60_000,
      );

      /** `--binary` for the script (the compiled binary installs itself). */
      const binaryFlag = async () =>
        kind === "binary" ? [] : ["--binary", (await guardCommand("binary"))[0] ?? ""];
      const DROP_IN = "etc/systemd/system/incus.service.d/network-guard.conf";

      // Matrix: GD-006
      test("install writes the binary, the v1 symlink and the drop-in; a second run changes nothing", async () => {
        const dir = testDir();
        const root = mkdtempSync(join(dir, "root-"));
        const bin = await binaryFlag();
        const log = ["--log", join(dir, "install.log")];
        const dry = await q`${cmd} install --dry-run --root ${root} ${bin} ${log}`;
        expect(dry.exitCode).toBe(0);
        expect(dry.stderr).toContain("ExecStartPost=-/opt/anklume/incus-guard post-start");
        expect(existsSync(join(root, "opt"))).toBe(false);

        const r = await q`${cmd} install --root ${root} ${bin} ${log}`;
        expect(r.exitCode).toBe(0);
        const binary = join(root, "opt/anklume/incus-guard");
        expect(statSync(binary).mode & 0o777).toBe(0o755);
        expect(readlinkSync(join(root, "opt/anklume/incus-guard.sh"))).toBe("incus-guard");
        expect(lstatSync(join(root, "opt/anklume/incus-guard.sh")).isSymbolicLink()).toBe(true);
        const help = await q`${binary} --help`;
        expect(help.exitCode).toBe(0);
        const text = readFileSync(join(root, DROP_IN), "utf8");
        const exec = /^\[Service\]$[\s\S]*^ExecStartPost=-?(\S+) post-start$/m.exec(text);
        expect(exec?.[1]).toBe("/opt/anklume/incus-guard");
        expect(statSync(join(root, exec?.[1] ?? "")).mode & 0o111).toBeTruthy();

        const again = await q`${cmd} install --root ${root} ${bin} ${log}`;
        expect(again.exitCode).toBe(0);
        expect(again.stderr).toContain("unchanged: write");
      }, 60_000);

      test.skipIf(!analyze)(
        "install: systemd-analyze accepts the drop-in and catches a broken one (skipped only without systemd-analyze; required under CI)",
        async () => {
          const dir = testDir();
          const root = mkdtempSync(join(dir, "root-"));
          const r =
            await q`${cmd} install --root ${root} ${await binaryFlag()} --log ${join(dir, "install.log")}`;
          expect(r.exitCode).toBe(0);
          writeFileSync(
            join(root, "etc/systemd/system/incus.service"),
            "[Unit]\nDescription=stand-in for incus.service\nDefaultDependencies=no\n[Service]\nExecStart=/opt/anklume/incus-guard check\n",
          );
          const ok = await q`systemd-analyze verify --root=${root} incus.service`;
          expect(ok.stderr).toBe("");
          expect(ok.exitCode).toBe(0);
          // The same verification does see a broken drop-in, so the check above can fail.
          const dropIn = join(root, DROP_IN);
          writeFileSync(
            dropIn,
            readFileSync(dropIn, "utf8").replace("ExecStartPost", "ExecStartPots"),
          );
          const bad = await q`systemd-analyze verify --root=${root} incus.service`;
          expect(bad.stderr).toContain("Unknown key");
        },
        60_000,
      );
    },
  );

  describe.skipIf(!canNetns || !live)(
    `incus-guard (${kind}) and the real Incus daemon (skipped only without root or a daemon; both required under CI)`,
    () => {
      let cmd: string[];
      beforeAll(async () => {
        cmd = await guardCommand(kind);
      }, 60_000);

      /**
       * A namespace whose fake uplink sits in a free /24 that an Incus network
       * of the test (`net`, ${subnet}.1/24, created unless `create` is false)
       * also uses: for the guard inside, that network is a threat. The guard
       * sees every Incus network, but only the test's own overlaps.
       */
      async function withIncusThreat(
        fn: (t: { n: GuardNetns; net: string; subnet: string; dir: string }) => Promise<void>,
        create = true,
      ): Promise<void> {
        const subnet = await freeTestSubnet();
        const net = `agd${uniq()}`;
        const remove = create ? await incusTestBridge(net, subnet) : async () => {};
        try {
          await withNetns(
            (n) => fn({ n, net, subnet, dir: testDir() }),
            `${subnet}.2/24`,
            `${subnet}.254`,
          );
        } finally {
          await remove();
          if (!create) await incusRaw(["network", "delete", net]);
        }
      }
      const inIncus = async (net: string) => (await incusRaw(["network", "show", net])).exitCode;
      /** Options with Incus in play: the test's own log and run directory. */
      const incusOpts = (dir: string) => [
        "--log",
        join(dir, "guard.log"),
        "--run-dir",
        join(dir, "run"),
      ];

      // Matrix: GD-2-003
      test(
        "post-start deletes an overlapping network from Incus's database",
        () =>
          withIncusThreat(async ({ n, net, dir }) => {
            const r = await runGuard(cmd, n.ns, ["post-start", ...incusOpts(dir)]);
            expect(r.exitCode).toBe(0);
            expect(r.stderr).toContain(`deleted Incus network ${net} (project default)`);
            expect(await inIncus(net)).not.toBe(0);
          }),
        60_000,
      );

      test(
        "check reports an overlapping Incus network (JSON and text) and leaves it in place",
        () =>
          withIncusThreat(async ({ n, net, subnet, dir }) => {
            const r = await runGuard(cmd, n.ns, ["check", "--json", ...incusOpts(dir)]);
            expect(r.exitCode).toBe(1);
            const report = JSON.parse(r.stdout);
            expect(report.bridges).toEqual([]);
            expect(report.incus.filter((c: { name: string }) => c.name === net)).toEqual([
              { name: net, project: "default", network: `${subnet}.0/24`, host: `${subnet}.0/24` },
            ]);
            expect(report.ok).toBe(false);
            const text = await runGuard(cmd, n.ns, ["check", ...incusOpts(dir)], { NO_COLOR: "1" });
            expect(text.exitCode).toBe(1);
            expect(text.stderr).toContain(
              `✗ Incus network ${net} (project default) ${subnet}.0/24 overlaps the host network ${subnet}.0/24`,
            );
            expect(await inIncus(net)).toBe(0);
          }),
        60_000,
      );

      test(
        "check with Incus not answering says its networks were not checked",
        () =>
          withIncusThreat(async ({ n, dir }) => {
            const env = { ANKLUME_INCUS: "false", NO_COLOR: "1" }; // every incus call exits 1
            const r = await runGuard(cmd, n.ns, ["check", "--json", ...incusOpts(dir)], env);
            expect(JSON.parse(r.stdout)).toMatchObject({ incus: null, ok: true });
            expect(r.exitCode).toBe(0);
            const text = await runGuard(cmd, n.ns, ["check", ...incusOpts(dir)], env);
            expect(text.stderr).toContain("! Incus networks not checked (Incus does not answer)");
          }, false),
        60_000,
      );

      test(
        "start without a command leaves the running daemon alone and deletes the overlapping network",
        () =>
          withIncusThreat(async ({ n, net, dir }) => {
            const r = await runGuard(cmd, n.ns, ["start", "--settle", "0", ...incusOpts(dir)]);
            expect(r.stderr).toMatch(/Incus is already (running|active): checking only/);
            expect(r.stderr).toContain(`deleted Incus network ${net} (project default)`);
            expect(r.exitCode).toBe(0);
            expect(await inIncus(net)).not.toBe(0);
          }),
        60_000,
      );

      test(
        "start deletes a network that Incus creates while it starts",
        () =>
          withIncusThreat(async ({ n, net, subnet, dir }) => {
            // `incus network create` reads YAML from a stdin that is not a terminal.
            const startCmd = `incus network create ${net} ipv4.address=${subnet}.1/24 ipv4.nat=false ipv6.address=none </dev/null`;
            const r = await runGuard(cmd, n.ns, [
              "start",
              "--settle",
              "0",
              "--start-cmd",
              startCmd,
              ...incusOpts(dir),
            ]);
            expect(r.stderr).toContain(`deleted Incus network ${net} (project default)`);
            expect(r.exitCode).toBe(0);
            expect(await inIncus(net)).not.toBe(0);
          }, false),
        60_000,
      );

      // Matrix: GD-3-001
      test(
        "start with Incus not answering warns, still checks the host, and leaves Incus's networks",
        () =>
          withIncusThreat(async ({ n, net, dir }) => {
            const r = await runGuard(
              cmd,
              n.ns,
              ["start", "--settle", "0", "--start-cmd", "true", ...incusOpts(dir)],
              { ANKLUME_INCUS: "false" },
            );
            expect(r.stderr).toContain("Incus does not answer: its networks were not checked");
            expect(r.stderr).toContain(`OK: gateway ${n.gateway} answers on up0`);
            expect(r.exitCode).toBe(0);
            expect(await inIncus(net)).toBe(0);
          }),
        60_000,
      );

      test(
        "watch deletes kernel bridges only: an overlapping Incus network stays for start and post-start",
        () =>
          withIncusThreat(async ({ n, net, subnet, dir }) => {
            const g = spawnGuard(cmd, n.ns, ["watch", ...incusOpts(dir)]);
            try {
              expect(await g.until("watching bridges")).toBe(true);
              await n.bridge("brlate", `${subnet}.77/24`);
              expect(await g.until("deleted bridge brlate")).toBe(true);
            } finally {
              g.proc.kill("SIGTERM");
              expect(await g.proc.exited).toBe(0);
            }
            expect(g.stderr()).not.toContain("Incus network");
            expect(await inIncus(net)).toBe(0);
          }),
        60_000,
      );
    },
  );
}
