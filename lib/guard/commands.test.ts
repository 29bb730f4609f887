/**
 * lib/guard/commands.ts, one library function per incus-guard subcommand.
 * Everything that reads or changes links and routes runs in a child bun
 * inside namespaces the test creates (tests/guard-netns.ts); Incus is left
 * out here (`noIncus`), its side is in repair.test.ts and, through the
 * script, tests/guard.test.ts. `install` writes into a temporary root.
 */
import { afterAll, describe, expect, test } from "bun:test";
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { destroyLeftNetns, guardModule, inNetns, withNetns } from "../../tests/guard-netns.ts";
import { netnsOrSkip } from "../../tests/helpers.ts";
import { type CheckReport, install } from "./commands.ts";
import type { GuardLog } from "./log.ts";

const dir = mkdtempSync(join(tmpdir(), "anklume-guard-commands-"));
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await destroyLeftNetns();
});
const COMMANDS = guardModule("commands");
const KERNEL = guardModule("kernel");
type Lines = [string, string][];

function memoryLog() {
  const lines: Lines = [];
  const log: GuardLog = {
    line: (m, level = "info") => lines.push([level, m]),
    note: (m) => lines.push(["note", m]),
  };
  return { lines, log };
}

/** `ctx` for a child: the recording log, a fresh run directory, Incus left out. */
const ctxIn = (runDir: string) => `{ log, runDir: ${JSON.stringify(runDir)}, noIncus: true }`;

const canNetns = await netnsOrSkip("lib/guard/commands.test.ts");

describe.skipIf(!canNetns)(
  "postStart, start, watch and check in a namespace (skipped only without root; required under CI)",
  () => {
    test(
      "check reports the uplink and a conflicting bridge and changes nothing; clean once it is gone",
      () =>
        withNetns(async (n) => {
          const runDir = mkdtempSync(join(dir, "run-"));
          await n.bridge("brc", "10.77.5.9/28");
          const check = () =>
            inNetns<CheckReport>(n.ns, { c: COMMANDS }, `return c.check(${ctxIn(runDir)});`);
          expect(await check()).toEqual({
            uplink: { dev: "up0", gateway: "10.77.5.1", from: "route" },
            defaultRoute: true,
            hostNetworks: ["10.77.5.0/24"],
            bridges: [{ ifname: "brc", network: "10.77.5.0/28", host: "10.77.5.0/24" }],
            incus: null,
            ok: false,
          });
          expect(await n.links()).toContain("brc");
          expect(existsSync(join(runDir, "incus-guard-host-dev"))).toBe(false);
          await n.ip(["link", "delete", "brc"]);
          expect((await check()).ok).toBe(true);
          // No default route, nothing saved: no uplink at all.
          await n.ip(["route", "delete", "default"]);
          expect(await check()).toMatchObject({ uplink: null, defaultRoute: false, ok: false });
        }),
      60_000,
    );

    test(
      "postStart deletes the overlapping bridges, saves the uplink, asks the gateway, and returns 0",
      () =>
        withNetns(async (n) => {
          const runDir = mkdtempSync(join(dir, "run-"));
          await n.bridge("brsame", "10.77.5.200/24");
          await n.bridge("brfar", "10.99.0.1/24");
          const out = await inNetns<{ code: number; lines: Lines }>(
            n.ns,
            { c: COMMANDS },
            `return { code: await c.postStart(${ctxIn(runDir)}), lines };`,
          );
          expect(out).toEqual({
            code: 0,
            lines: [
              [
                "info",
                "deleted bridge brsame: 10.77.5.0/24 overlaps the host network 10.77.5.0/24",
              ],
              ["info", "OK: gateway 10.77.5.1 answers on up0"],
            ],
          });
          expect(await n.links()).toEqual(["brfar", "lo", "up0"]);
          expect(readFileSync(join(runDir, "incus-guard-host-dev"), "utf8")).toBe("up0\n");
          expect(readFileSync(join(runDir, "incus-guard-host-gw"), "utf8")).toBe("10.77.5.1\n");
        }),
      60_000,
    );

    test(
      "postStart returns 0 with an error line when there is no uplink at all",
      () =>
        withNetns(
          async (n) => {
            const runDir = mkdtempSync(join(dir, "run-"));
            const out = await inNetns<{ code: number; lines: Lines }>(
              n.ns,
              { c: COMMANDS },
              `return { code: await c.postStart(${ctxIn(runDir)}), lines };`,
            );
            expect(out).toEqual({
              code: 0,
              lines: [
                [
                  "error",
                  `no default route and no saved uplink in ${join(runDir, "incus-guard-host-dev")}: nothing checked`,
                ],
              ],
            });
          },
          undefined,
          undefined,
          false,
        ),
      60_000,
    );

    test(
      "start deletes a bridge that appears while the start command runs, keeps the others, and returns 0",
      () =>
        withNetns(async (n) => {
          const runDir = mkdtempSync(join(dir, "run-"));
          const startCmd = [
            "ip link add brw type bridge",
            "ip addr add 10.77.5.50/24 dev brw",
            "ip link add brok type bridge",
            "ip addr add 10.66.0.1/24 dev brok",
          ].join(" && ");
          const out = await inNetns<{ code: number; lines: Lines }>(
            n.ns,
            { c: COMMANDS },
            `return { code: await c.start(${ctxIn(runDir)}, { startCmd: ${JSON.stringify(startCmd)}, settleSeconds: 0.2 }), lines };`,
          );
          expect(out.code).toBe(0);
          expect(out.lines).toEqual([
            ["info", "uplink up0 (10.77.5.0/24), gateway 10.77.5.1"],
            ["info", `starting Incus with: ${startCmd}`],
            ["info", "deleted bridge brw: 10.77.5.0/24 overlaps the host network 10.77.5.0/24"],
            ["info", "OK: gateway 10.77.5.1 answers on up0"],
          ]);
          expect(await n.links()).toEqual(["brok", "lo", "up0"]);
        }),
      60_000,
    );

    test(
      "start returns 1 when the start command fails, and when the uplink has no IPv4 address",
      () =>
        withNetns(async (n) => {
          const runDir = mkdtempSync(join(dir, "run-"));
          const run = () =>
            inNetns<{ code: number; lines: Lines }>(
              n.ns,
              { c: COMMANDS },
              `return { code: await c.start(${ctxIn(runDir)}, { startCmd: "exit 4", settleSeconds: 0 }), lines };`,
            );
          const failed = await run();
          expect(failed.code).toBe(1);
          expect(failed.lines).toContainEqual(["error", "the start command failed (exit 4): "]);
          expect(failed.lines.at(-1)).toEqual(["info", "OK: gateway 10.77.5.1 answers on up0"]);
          await n.ip(["addr", "flush", "dev", "up0"]);
          const bare = await run();
          expect(bare).toEqual({
            code: 1,
            lines: [["error", "cannot protect the host: the uplink up0 has no IPv4 address"]],
          });
        }),
      60_000,
    );

    test(
      "watch deletes a bridge created after it is armed and returns 0 once stopped",
      () =>
        withNetns(async (n) => {
          const runDir = mkdtempSync(join(dir, "run-"));
          // The log line "watching ..." creates the bridge; "deleted ..." stops the watch.
          const body = `let stopNow; const stop = new Promise((r) => { stopNow = r; });
const safety = setTimeout(() => stopNow(), 15000);
const seen = { line(m, level = "info") {
  log.line(m, level);
  if (m.startsWith("watching bridges")) k.ip(["link", "add", "brlate", "type", "bridge"]).then(() => k.ip(["addr", "add", "10.77.5.77/24", "dev", "brlate"]));
  if (m.startsWith("deleted bridge")) stopNow();
}, note: log.note };
const code = await c.watch({ log: seen, runDir: ${JSON.stringify(runDir)}, noIncus: true }, stop);
clearTimeout(safety);
return { code, lines };`;
          const out = await inNetns<{ code: number; lines: Lines }>(
            n.ns,
            { c: COMMANDS, k: KERNEL },
            body,
          );
          expect(out).toEqual({
            code: 0,
            lines: [
              ["info", "watching bridges against 10.77.5.0/24 on up0"],
              [
                "info",
                "deleted bridge brlate: 10.77.5.0/24 overlaps the host network 10.77.5.0/24",
              ],
              ["info", "stopped"],
            ],
          });
          expect(await n.links()).toEqual(["lo", "up0"]);
        }),
      60_000,
    );

    test(
      "watch returns 1 at once when there is no uplink",
      () =>
        withNetns(
          async (n) => {
            const out = await inNetns<{ code: number; lines: Lines }>(
              n.ns,
              { c: COMMANDS },
              `return { code: await c.watch(${ctxIn(join(dir, "none"))}, new Promise(() => {})), lines };`,
            );
            expect(out).toEqual({
              code: 1,
              lines: [["error", "cannot watch: no default route and no saved uplink"]],
            });
          },
          undefined,
          undefined,
          false,
        ),
      60_000,
    );
  },
);

describe("install into a temporary root", () => {
  test("a dry run says what it would write and writes nothing", async () => {
    const root = mkdtempSync(join(dir, "root-"));
    const { lines, log } = memoryLog();
    expect(await install(log, { root, binary: "/nonexistent/guard", dryRun: true })).toBe(0);
    expect(lines.map(([level, m]) => [level, m.split("\n")[0]])).toEqual([
      ["note", `would install /nonexistent/guard as ${root}/opt/anklume/incus-guard (mode 0755)`],
      ["note", `would link ${root}/opt/anklume/incus-guard.sh -> incus-guard (v1 path)`],
      [
        "note",
        `would write ${root}/etc/systemd/system/incus.service.d/network-guard.conf (mode 0644):`,
      ],
    ]);
    expect(existsSync(join(root, "opt"))).toBe(false);
  });

  test("a missing binary throws with the fix", async () => {
    const { log } = memoryLog();
    await expect(
      install(log, { root: dir, binary: join(dir, "missing"), dryRun: false }),
    ).rejects.toThrow(
      `cannot install: no compiled binary at "${join(dir, "missing")}"; build it with make guard-build or pass --binary`,
    );
  });

  test("install writes binary, v1 symlink and drop-in, logs each step, and a second run changes nothing", async () => {
    const root = mkdtempSync(join(dir, "root-"));
    const binary = join(dir, "fake-guard");
    writeFileSync(binary, "#!/bin/sh\nexit 0\n");
    const first = memoryLog();
    expect(await install(first.log, { root, binary, dryRun: false })).toBe(0);
    expect(first.lines).toEqual([
      ["info", `install ${binary} as ${root}/opt/anklume/incus-guard (mode 0755)`],
      ["info", `link ${root}/opt/anklume/incus-guard.sh -> incus-guard (v1 path)`],
      ["info", `write ${root}/etc/systemd/system/incus.service.d/network-guard.conf (mode 0644)`],
      ["note", `Installed under ${root}: systemd was not reloaded (not the live root).`],
    ]);
    expect(statSync(join(root, "opt/anklume/incus-guard")).mode & 0o777).toBe(0o755);
    expect(readlinkSync(join(root, "opt/anklume/incus-guard.sh"))).toBe("incus-guard");
    expect(
      readFileSync(join(root, "etc/systemd/system/incus.service.d/network-guard.conf"), "utf8"),
    ).toContain("ExecStartPost=-/opt/anklume/incus-guard post-start");
    const again = memoryLog();
    expect(await install(again.log, { root, binary, dryRun: false })).toBe(0);
    expect(again.lines.slice(0, 3).every(([, m]) => m.startsWith("unchanged: "))).toBe(true);
  });

  test("a root it cannot write is an error line with the fix and exit 1", async () => {
    const blocker = join(dir, "blocker");
    writeFileSync(blocker, "");
    const binary = join(dir, "fake-guard2");
    writeFileSync(binary, "x");
    const { lines, log } = memoryLog();
    expect(await install(log, { root: blocker, binary, dryRun: false })).toBe(1);
    expect(lines).toHaveLength(1);
    expect(lines[0]?.[0]).toBe("error");
    expect(lines[0]?.[1]).toStartWith(`cannot write ${blocker}/opt/anklume/incus-guard: `);
    expect(lines[0]?.[1]).toEndWith("; run as root (sudo make guard-install) or pass --root DIR");
  });
});
