/**
 * incus-guard against the real kernel, only inside network namespaces that
 * these tests create (a veth uplink whose gateway lives in a second
 * namespace): post-start, the start watcher, check, route restoration,
 * install into a temporary root, and once against the real Incus daemon.
 * Every behaviour runs twice: the script under Bun and the compiled binary.
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
import process from "node:process";
import { $ } from "zx";
import { overlaps, parseCidr } from "../lib/core/cidr.ts";
import { incusRaw } from "../lib/incus/client.ts";
import {
  defaultRoute,
  GUARD_SCRIPT,
  type GuardNetns,
  guardCommand,
  makeGuardNetns,
  removeGuardBinary,
  runGuard,
} from "./guard-netns.ts";
import { incusOrSkip, uniq } from "./helpers.ts";

const q = $({ quiet: true, nothrow: true });

/** Namespaces need root; under CI=true their absence is a failure, locally a skip. */
async function netnsOrSkip(): Promise<boolean> {
  const probe = `agp-${uniq()}`;
  const ok = (await q`ip netns add ${probe}`).exitCode === 0;
  if (ok) await q`ip netns delete ${probe}`;
  if (!ok && process.env.CI === "true")
    throw new Error("guard: cannot create network namespaces (run as root)");
  if (!ok) console.warn("skipping guard: creating network namespaces needs root");
  return ok;
}

const canNetns = await netnsOrSkip();
const work = mkdtempSync(join(tmpdir(), "anklume-guard-test-"));
const ISO_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z incus-guard\[[a-z-]+\]: /;

afterAll(() => {
  removeGuardBinary();
  rmSync(work, { recursive: true, force: true });
});

for (const kind of ["script", "binary"] as const) {
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
      let n24: GuardNetns; // uplink 10.77.5.2/24
      let n16: GuardNetns; // uplink 10.88.0.2/16
      let dir: string;
      /** Options for a run in one namespace: its own saved-uplink directory, one shared log. */
      const opts = (n: GuardNetns) => [
        "--no-incus",
        "--log",
        join(dir, "guard.log"),
        "--run-dir",
        join(dir, `run-${n.ns}`),
      ];

      beforeAll(async () => {
        cmd = await guardCommand(kind);
        dir = mkdtempSync(join(work, `${kind}-`));
        n24 = await makeGuardNetns("10.77.5.2/24", "10.77.5.1");
        n16 = await makeGuardNetns("10.88.0.2/16", "10.88.0.1");
      }, 60_000);
      afterAll(async () => {
        await n24?.destroy();
        await n16?.destroy();
      });

      test("post-start deletes overlapping bridges of any prefix length, leaves neighbours and the uplink", async () => {
        await n24.bridge("brsame", "10.77.5.200/24"); // same /24
        await n24.bridge("braround", "10.77.0.1/16"); // a /16 around the host's /24
        await n24.bridge("brnext", "10.77.50.1/24"); // neighbour /24: no overlap
        await n24.bridge("brother", "10.99.0.1/24");
        await n16.bridge("brinside", "10.88.7.1/24"); // a /24 inside the host's /16
        await n16.bridge("brbeside", "10.89.0.1/24"); // next /16: no overlap

        const r24 = await runGuard(cmd, n24.ns, ["post-start", ...opts(n24)]);
        const r16 = await runGuard(cmd, n16.ns, ["post-start", ...opts(n16)]);
        expect(r24.exitCode).toBe(0);
        expect(r16.exitCode).toBe(0);
        expect(await n24.links()).toEqual(["brnext", "brother", "lo", "up0"]);
        expect(await n16.links()).toEqual(["brbeside", "lo", "up0"]);
        const up = (await n24.ipJson(["-4", "addr", "show", "dev", "up0"])) as {
          addr_info: { local: string }[];
        }[];
        expect(up[0]?.addr_info.map((a) => a.local)).toEqual(["10.77.5.2"]);
        expect(await defaultRoute(n24)).toMatchObject({ gateway: "10.77.5.1", dev: "up0" });
        expect(readFileSync(join(dir, `run-${n24.ns}`, "incus-guard-host-dev"), "utf8")).toBe(
          "up0\n",
        );

        const log = readFileSync(join(dir, "guard.log"), "utf8").trim().split("\n");
        expect(log.every((l) => ISO_LINE.test(l))).toBe(true);
        expect(log.some((l) => l.includes("deleted bridge brsame"))).toBe(true);
        expect(log.some((l) => l.includes("deleted bridge braround"))).toBe(true);
        expect(log.some((l) => l.includes("OK: gateway 10.77.5.1 answers on up0"))).toBe(true);
        await n24.ip(["link", "delete", "brnext"]);
        await n24.ip(["link", "delete", "brother"]);
        await n16.ip(["link", "delete", "brbeside"]);
      });

      test("check reports a conflict as JSON without changing anything", async () => {
        await n24.bridge("brcheck", "10.77.5.9/28");
        const r = await runGuard(cmd, n24.ns, ["check", "--json", ...opts(n24)]);
        expect(r.exitCode).toBe(1);
        const report = JSON.parse(r.stdout);
        expect(report).toMatchObject({
          uplink: { dev: "up0", gateway: "10.77.5.1", from: "route" },
          defaultRoute: true,
          hostNetworks: ["10.77.5.0/24"],
          bridges: [{ ifname: "brcheck", network: "10.77.5.0/28", host: "10.77.5.0/24" }],
          ok: false,
        });
        expect(await n24.links()).toContain("brcheck");
        await n24.ip(["link", "delete", "brcheck"]);
        const clean = await runGuard(cmd, n24.ns, ["check", "--json", ...opts(n24)]);
        expect(clean.exitCode).toBe(0);
        expect(JSON.parse(clean.stdout).ok).toBe(true);
      });

      test("post-start restores a lost default route from the saved uplink", async () => {
        await n24.ip(["route", "delete", "default"]);
        expect(await defaultRoute(n24)).toBeNull();
        const r = await runGuard(cmd, n24.ns, ["post-start", ...opts(n24)]);
        expect(r.exitCode).toBe(0);
        expect(await defaultRoute(n24)).toMatchObject({ gateway: "10.77.5.1", dev: "up0" });
        expect(r.stderr).toContain("restored the default route via 10.77.5.1 dev up0");
      });

      test("post-start exits 0 even with no uplink at all", async () => {
        const bare = await makeGuardNetns("unused/24", "unused", false);
        try {
          const r = await runGuard(cmd, bare.ns, [
            "post-start",
            "--no-incus",
            "--log",
            join(dir, "bare.log"),
            "--run-dir",
            join(dir, "bare-run"),
          ]);
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
          expect(r2.stderr).toContain("using the saved uplink nosuchdev");
          expect(r2.stderr).toContain("cannot restore the default route");
        } finally {
          await bare.destroy();
        }
      });

      test("start deletes a conflicting bridge while Incus starts and leaves the others", async () => {
        // The start command checks by itself that the watcher removed the bridge
        // before the command ended: it fails (so start fails) otherwise.
        const startCmd = [
          "ip link add brw type bridge",
          "ip addr add 10.77.5.50/24 dev brw",
          "ip link set brw up",
          "ip link add brok type bridge",
          "ip addr add 10.66.0.1/24 dev brok",
          "for i in $(seq 50); do ip link show dev brw >/dev/null 2>&1 || exit 0; sleep 0.01; done",
          "echo 'brw still there after 0.5 s' >&2; exit 1",
        ].join("; ");
        const r = await runGuard(cmd, n24.ns, [
          "start",
          "--settle",
          "0.1",
          "--start-cmd",
          startCmd,
          ...opts(n24),
        ]);
        expect(r.stderr).toContain("deleted bridge brw");
        expect(r.exitCode).toBe(0);
        expect(await n24.links()).toEqual(["brok", "lo", "up0"]);
        await n24.ip(["link", "delete", "brok"]);
      });

      test("watch deletes bridges as they appear, follows a new uplink address, stops on SIGTERM", async () => {
        const proc = Bun.spawn(["ip", "netns", "exec", n24.ns, ...cmd, "watch", ...opts(n24)], {
          stderr: "pipe",
        });
        let err = "";
        // Read stderr in the background; `until` polls it, so a silent watcher fails the test instead of hanging it.
        (async () => {
          for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) {
            err += new TextDecoder().decode(chunk);
          }
        })();
        const until = async (text: string) => {
          const deadline = Date.now() + 10_000;
          while (!err.includes(text) && Date.now() < deadline) await Bun.sleep(10);
          return err.includes(text);
        };
        try {
          expect(await until("watching bridges")).toBe(true);
          await n24.bridge("brlate", "10.77.5.77/24");
          await n24.bridge("brlan", "10.55.0.1/24");
          expect(await until("deleted bridge brlate")).toBe(true);
          expect(await n24.links()).toContain("brlan");
          await n24.ip(["addr", "add", "10.55.0.2/24", "dev", "up0"]);
          expect(await until("deleted bridge brlan")).toBe(true);
          expect(await n24.links()).toEqual(["lo", "up0"]);
        } finally {
          proc.kill("SIGTERM");
          expect(await proc.exited).toBe(0);
          await n24.ip(["addr", "del", "10.55.0.2/24", "dev", "up0"]).catch(() => "");
        }
      }, 30_000);

      test("start exits 1 when the gateway does not answer", async () => {
        await q`ip -n ${n24.gwNs} link set gw0 down`;
        try {
          const r = await runGuard(cmd, n24.ns, [
            "start",
            "--settle",
            "0",
            "--start-cmd",
            "true",
            ...opts(n24),
          ]);
          expect(r.exitCode).toBe(1);
          expect(r.stderr).toContain("does not answer");
        } finally {
          await q`ip -n ${n24.gwNs} link set gw0 up`;
        }
      });

      test("install writes the binary and a drop-in that systemd accepts", async () => {
        const root = mkdtempSync(join(dir, "root-"));
        const bin =
          kind === "binary"
            ? []
            : ["--binary", await (async () => (await guardCommand("binary"))[0] ?? "")()];
        const dry =
          await q`${cmd} install --dry-run --root ${root} ${bin} --log ${join(dir, "install.log")}`;
        expect(dry.exitCode).toBe(0);
        expect(dry.stderr).toContain("ExecStartPost=-/opt/anklume/incus-guard post-start");
        expect(existsSync(join(root, "opt"))).toBe(false);

        const r = await q`${cmd} install --root ${root} ${bin} --log ${join(dir, "install.log")}`;
        expect(r.exitCode).toBe(0);
        const binary = join(root, "opt/anklume/incus-guard");
        expect(statSync(binary).mode & 0o777).toBe(0o755);
        expect(readlinkSync(join(root, "opt/anklume/incus-guard.sh"))).toBe("incus-guard");
        expect(lstatSync(join(root, "opt/anklume/incus-guard.sh")).isSymbolicLink()).toBe(true);
        const help = await q`${binary} --help`;
        expect(help.exitCode).toBe(0);
        const dropIn = join(root, "etc/systemd/system/incus.service.d/network-guard.conf");
        const text = readFileSync(dropIn, "utf8");
        const exec = /^\[Service\]$[\s\S]*^ExecStartPost=-?(\S+) post-start$/m.exec(text);
        expect(exec?.[1]).toBe("/opt/anklume/incus-guard");
        expect(statSync(join(root, exec?.[1] ?? "")).mode & 0o111).toBeTruthy();

        const again =
          await q`${cmd} install --root ${root} ${bin} --log ${join(dir, "install.log")}`;
        expect(again.exitCode).toBe(0);
        expect(again.stderr).toContain("unchanged: write");

        const analyze = (await q`which systemd-analyze`).exitCode === 0;
        if (!analyze && process.env.CI === "true") {
          throw new Error(
            "systemd-analyze is missing: install the Debian package systemd (see .ci/run)",
          );
        }
        if (analyze) {
          writeFileSync(
            join(root, "etc/systemd/system/incus.service"),
            "[Unit]\nDescription=stand-in for incus.service\nDefaultDependencies=no\n[Service]\nExecStart=/opt/anklume/incus-guard check\n",
          );
          const v = await q`systemd-analyze verify --root=${root} incus.service`;
          expect(v.stderr).toBe("");
          expect(v.exitCode).toBe(0);
          // The same verification does see a broken drop-in, so the check above can fail.
          writeFileSync(dropIn, text.replace("ExecStartPost", "ExecStartPots"));
          const bad = await q`systemd-analyze verify --root=${root} incus.service`;
          expect(bad.stderr).toContain("Unknown key");
        }
      });
    },
  );
}

const live = await incusOrSkip("guard");

describe.skipIf(!canNetns || !live)(
  "incus-guard and the real Incus daemon (skipped only without root or a daemon; both required under CI)",
  () => {
    let n: GuardNetns | undefined;
    let dir: string;
    const net = `agd${uniq()}`;
    let subnet = "";

    beforeAll(async () => {
      dir = mkdtempSync(join(work, "incus-"));
      // A /24 that no existing Incus network and no host route uses, so the
      // guard (which sees every Incus network) can only match the test's own.
      const used = JSON.parse(
        (await incusRaw(["network", "list", "--all-projects", "--format", "json"])).stdout,
      ) as {
        config?: Record<string, string>;
      }[];
      const routes = JSON.parse((await q`ip -json -4 route show table all`).stdout) as {
        dst: string;
      }[];
      const taken = [
        ...used.map((u) => parseCidr(u.config?.["ipv4.address"] ?? "")),
        ...routes.map((r) => parseCidr(r.dst.includes("/") ? r.dst : `${r.dst}/32`)),
      ].filter((c) => c !== null);
      for (let i = 0; i < 100 && !subnet; i++) {
        const candidate = `10.${200 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 250)}`;
        const c = parseCidr(`${candidate}.0/24`);
        if (c && !taken.some((t) => overlaps(t, c))) subnet = candidate;
      }
      expect(subnet).not.toBe("");
      // The fake uplink of the namespace sits in the same /24: for the guard inside, that bridge is a threat.
      n = await makeGuardNetns(`${subnet}.2/24`, `${subnet}.254`);
      const created = await incusRaw(
        [
          "network",
          "create",
          net,
          `ipv4.address=${subnet}.1/24`,
          "ipv4.nat=false",
          "ipv6.address=none",
        ],
        // `network create` reads YAML from a piped stdin; zx ignores an empty input, so send a newline.
        { input: "\n" },
      );
      expect(created.stderr).toBe("");
    }, 120_000);
    afterAll(async () => {
      await incusRaw(["network", "delete", net]);
      await n?.destroy();
    }, 60_000);

    test("post-start deletes an overlapping network from Incus's database", async () => {
      if (!n) throw new Error("no namespace");
      const r = await runGuard(["bun", GUARD_SCRIPT], n.ns, [
        "post-start",
        "--log",
        join(dir, "guard.log"),
        "--run-dir",
        join(dir, "run"),
      ]);
      expect(r.exitCode).toBe(0);
      expect(r.stderr).toContain(`deleted Incus network ${net} (project default)`);
      const show = await incusRaw(["network", "show", net]);
      expect(show.exitCode).not.toBe(0);
    });
  },
);
