/**
 * lib/guard/repair.ts: kernel repairs in namespaces the test creates
 * (tests/guard-netns.ts), and the Incus clean-up against the real daemon on a
 * bridge of its own (unique name, a free /24, no NAT, no IPv6). The host
 * networks handed to cleanIncus are arguments, so nothing of this machine's
 * network is involved.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { $ } from "zx";
import {
  destroyLeftNetns,
  freeTestSubnet,
  guardModule,
  incusTestBridge,
  inNetns,
  withNetns,
} from "../../tests/guard-netns.ts";
import { incusOrSkip, netnsOrSkip, uniq } from "../../tests/helpers.ts";
import { type Cidr, parseCidr } from "../core/cidr.ts";
import { incusRaw } from "../incus/client.ts";
import type { GuardLog } from "./log.ts";
import { cleanIncus } from "./repair.ts";

afterAll(destroyLeftNetns);
const REPAIR = guardModule("repair");
type Lines = [string, string][];

function memoryLog() {
  const lines: Lines = [];
  const log: GuardLog = {
    line: (m, level = "info") => lines.push([level, m]),
    note: (m) => lines.push(["note", m]),
  };
  return { lines, log };
}

const cidr = (text: string): Cidr => {
  const c = parseCidr(text);
  if (!c) throw new Error(`bad CIDR in the test: ${text}`);
  return c;
};

const canNetns = await netnsOrSkip("lib/guard/repair.test.ts");

describe.skipIf(!canNetns)(
  "kernel repairs in a namespace (skipped only without root; required under CI)",
  () => {
    test(
      "removeBridge deletes the bridge and logs why; a missing one is an error naming it",
      () =>
        withNetns(async (n) => {
          await n.bridge("brx", "10.77.5.9/24");
          const c = { ifname: "brx", network: "10.77.5.0/24", host: "10.77.5.0/24" };
          const body = `const ok = [await r.removeBridge(log, ${JSON.stringify(c)}), await r.removeBridge(log, ${JSON.stringify(c)})]; return { ok, lines };`;
          const out = await inNetns<{ ok: boolean[]; lines: Lines }>(n.ns, { r: REPAIR }, body);
          expect(out.ok).toEqual([true, false]);
          expect(out.lines).toEqual([
            ["info", "deleted bridge brx: 10.77.5.0/24 overlaps the host network 10.77.5.0/24"],
            [
              "error",
              'cannot delete bridge brx (10.77.5.0/24 overlaps host 10.77.5.0/24): Cannot find device "brx"',
            ],
          ]);
          expect(await n.links()).toEqual(["lo", "up0"]);
        }),
      60_000,
    );

    test(
      "restoreAndVerify: a live gateway is OK; a lost route comes back from the saved uplink; without a known gateway it fails",
      () =>
        withNetns(async (n) => {
          const verify = (up: object) =>
            inNetns<{ ok: boolean; lines: Lines }>(
              n.ns,
              { r: REPAIR },
              `const ok = await r.restoreAndVerify(log, ${JSON.stringify(up)}); return { ok, lines };`,
            );
          const up = { dev: "up0", gateway: "10.77.5.1" };
          expect(await verify(up)).toEqual({
            ok: true,
            lines: [["info", "OK: gateway 10.77.5.1 answers on up0"]],
          });
          await n.ip(["route", "delete", "default"]);
          expect(await verify({ dev: "up0", gateway: null })).toEqual({
            ok: false,
            lines: [
              [
                "error",
                "the default route is gone and no gateway is known for up0; bring the network up again",
              ],
            ],
          });
          expect(await verify(up)).toEqual({
            ok: true,
            lines: [
              ["info", "restored the default route via 10.77.5.1 dev up0"],
              ["info", "OK: gateway 10.77.5.1 answers on up0"],
            ],
          });
          expect(await n.ipJson(["-4", "route", "show", "default"])).toEqual([
            expect.objectContaining({ gateway: "10.77.5.1", dev: "up0" }),
          ]);
        }),
      60_000,
    );

    test(
      "restoreAndVerify: a gateway that does not answer fails; a route without a gateway is healthy",
      () =>
        withNetns(async (n) => {
          const verify = () =>
            inNetns<{ ok: boolean; lines: Lines }>(
              n.ns,
              { r: REPAIR },
              'const ok = await r.restoreAndVerify(log, { dev: "up0", gateway: "10.77.5.1" }); return { ok, lines };',
            );
          await n.ip(["route", "replace", "default", "dev", "up0"]);
          expect(await verify()).toEqual({
            ok: true,
            lines: [["info", "the default route uses up0 without a gateway: nothing to ask"]],
          });
          await n.ip(["route", "replace", "default", "via", "10.77.5.1", "dev", "up0"]);
          await $({ quiet: true })`ip -n ${n.gwNs} link set gw0 down`;
          expect(await verify()).toEqual({
            ok: false,
            lines: [["error", "the gateway 10.77.5.1 on up0 does not answer"]],
          });
        }),
      60_000,
    );
  },
);

test("cleanIncus with noIncus calls no incus at all; with Incus not answering it warns and goes on", async () => {
  const { lines, log } = memoryLog();
  const dir = mkdtempSync(join(tmpdir(), "anklume-guard-repair-"));
  const calls = join(dir, "incus-calls");
  const saved = { bin: process.env.ANKLUME_INCUS, log: process.env.ANKLUME_INCUS_LOG };
  process.env.ANKLUME_INCUS = "false"; // every incus call exits 1
  process.env.ANKLUME_INCUS_LOG = calls; // lib/incus/client.ts logs each call's arguments
  try {
    await cleanIncus({ log, runDir: "/nonexistent", noIncus: true }, [cidr("10.0.0.0/8")]);
    expect(lines).toEqual([]);
    expect(existsSync(calls)).toBe(false);
    await cleanIncus({ log, runDir: "/nonexistent", noIncus: false }, [cidr("10.0.0.0/8")]);
    expect(lines).toEqual([["warn", "Incus does not answer: its networks were not checked"]]);
    expect(readFileSync(calls, "utf8")).toBe('["query","/1.0"]\n');
  } finally {
    for (const [k, val] of [
      ["ANKLUME_INCUS", saved.bin],
      ["ANKLUME_INCUS_LOG", saved.log],
    ] as const) {
      if (val === undefined) delete process.env[k];
      else process.env[k] = val;
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

const live = await incusOrSkip("lib/guard/repair.test.ts");

test.skipIf(!live)(
  "cleanIncus deletes an overlapping Incus network and logs it; one outside the host networks stays (skipped only without an Incus daemon; required under CI)",
  async () => {
    const s = await freeTestSubnet();
    const net = `agr${uniq()}`;
    const remove = await incusTestBridge(net, s);
    try {
      const { lines, log } = memoryLog();
      const ctx = { log, runDir: "/nonexistent", noIncus: false };
      await cleanIncus(ctx, [cidr("192.0.2.0/24")]);
      expect(lines.filter(([, m]) => m.includes(net))).toEqual([]);
      expect((await incusRaw(["network", "show", net])).exitCode).toBe(0);
      await cleanIncus(ctx, [cidr(`${s}.128/25`)]);
      expect(lines.filter(([, m]) => m.includes(net))).toEqual([
        ["info", `deleted Incus network ${net} (project default): ${s}.0/24 overlaps ${s}.128/25`],
      ]);
      expect((await incusRaw(["network", "show", net])).exitCode).not.toBe(0);
    } finally {
      await remove();
    }
  },
  60_000,
);
