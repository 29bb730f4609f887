/**
 * lib/guard/uplink.ts: the saved-uplink files in a temporary directory, and
 * uplink detection against the real kernel in namespaces the test creates
 * (tests/guard-netns.ts), never this machine's own routes.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { destroyLeftNetns, guardModule, inNetns, withNetns } from "../../tests/guard-netns.ts";
import { netnsOrSkip } from "../../tests/helpers.ts";
import type { GuardLog } from "./log.ts";
import { readSavedUplink, saveUplink, stateFiles } from "./uplink.ts";

const dir = mkdtempSync(join(tmpdir(), "anklume-guard-uplink-"));
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await destroyLeftNetns();
});

function memoryLog() {
  const lines: [string, string][] = [];
  const log: GuardLog = {
    line: (m, level = "info") => lines.push([level, m]),
    note: (m) => lines.push(["note", m]),
  };
  return { lines, log };
}

test("saveUplink writes v1's device file and the gateway file; readSavedUplink reads them back", () => {
  const runDir = join(dir, "run-a/nested");
  const { lines, log } = memoryLog();
  expect(readSavedUplink(runDir)).toBeNull();
  saveUplink({ log, runDir, noIncus: true }, { dev: "eth9", gateway: "192.0.2.1" });
  expect(readFileSync(stateFiles(runDir).dev, "utf8")).toBe("eth9\n");
  expect(readFileSync(stateFiles(runDir).gw, "utf8")).toBe("192.0.2.1\n");
  expect(readSavedUplink(runDir)).toEqual({ dev: "eth9", gateway: "192.0.2.1" });
  expect(lines).toEqual([]);
});

test("readSavedUplink: a device without a gateway file has no gateway; an empty device file is nothing", () => {
  const runDir = mkdtempSync(join(dir, "run-b-"));
  writeFileSync(stateFiles(runDir).dev, "wlan0\n");
  expect(readSavedUplink(runDir)).toEqual({ dev: "wlan0", gateway: null });
  writeFileSync(stateFiles(runDir).dev, "\n");
  expect(readSavedUplink(runDir)).toBeNull();
});

test("saveUplink into a directory it cannot create warns with the path and does not throw", () => {
  const blocker = join(dir, "blocker");
  writeFileSync(blocker, "");
  const { lines, log } = memoryLog();
  saveUplink({ log, runDir: join(blocker, "run"), noIncus: true }, { dev: "eth0", gateway: null });
  expect(lines).toHaveLength(1);
  expect(lines[0]?.[0]).toBe("warn");
  expect(lines[0]?.[1]).toStartWith(
    `cannot save the uplink to ${join(blocker, "run/incus-guard-host-dev")}: `,
  );
});

const canNetns = await netnsOrSkip("lib/guard/uplink.test.ts");
const UPLINK = guardModule("uplink");

describe.skipIf(!canNetns)(
  "uplink detection in a namespace (skipped only without root; required under CI)",
  () => {
    test(
      "detectUplink takes the default route, else the saved files, else null; hostNetworksOf gives the device's IPv4 networks",
      () =>
        withNetns(async (n) => {
          const runDir = mkdtempSync(join(dir, "run-ns-"));
          const detect = () =>
            inNetns(n.ns, { u: UPLINK }, `return u.detectUplink(${JSON.stringify(runDir)});`);
          expect(await detect()).toEqual({
            up: { dev: "up0", gateway: "10.77.5.1" },
            routed: true,
          });
          await n.ip(["addr", "add", "10.88.1.2/16", "dev", "up0"]);
          const nets = await inNetns<{ links: { ifname: string }[]; hostNets: unknown[] }>(
            n.ns,
            { u: UPLINK, c: guardModule("../core/cidr") },
            'const r = await u.hostNetworksOf("up0"); return { links: r.links, hostNets: r.hostNets.map(c.formatCidr) };',
          );
          expect(nets.hostNets).toEqual(["10.77.5.0/24", "10.88.0.0/16"]);
          expect(nets.links.map((l) => l.ifname).sort()).toEqual(["lo", "up0"]);
          expect(
            await inNetns(
              n.ns,
              { u: UPLINK },
              'return (await u.hostNetworksOf("gone0")).hostNets;',
            ),
          ).toEqual([]);

          await n.ip(["route", "delete", "default"]);
          expect(await detect()).toBeNull();
          writeFileSync(stateFiles(runDir).dev, "up0\n");
          writeFileSync(stateFiles(runDir).gw, "10.77.5.1\n");
          expect(await detect()).toEqual({
            up: { dev: "up0", gateway: "10.77.5.1" },
            routed: false,
          });
        }),
      60_000,
    );
  },
);
