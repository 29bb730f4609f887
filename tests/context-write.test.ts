/**
 * The nesting context written into a new machine (lib/apply/execute.ts
 * `writeContext`) on the real daemon, both ways: through the daemon's socket
 * (the local default: six requests, no process) and through the CLI (a
 * remote, ANKLUME_INCUS_READS=cli: `incus exec` and `incus config set`). Both
 * must leave the same files and the same record, and neither may record a
 * context whose files could not be written.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeContext } from "../lib/apply/execute.ts";
import { CONTEXT_KEY } from "../lib/apply/reconcile.ts";
import { incusRaw, incusRun, type ReadVia, readVia } from "../lib/incus/client.ts";
import { incusOrSkip, testImage, uniq } from "./helpers.ts";

const live = await incusOrSkip("context-write");
const C = `ctxw-${uniq()}`;
const P = ["--project", "default"];

const sh = async (cmd: string) => (await incusRun(["exec", C, ...P, "--", "sh", "-c", cmd])).stdout;
const marker = async () => (await incusRun(["config", "get", C, CONTEXT_KEY, ...P])).stdout.trim();
const files =
  "for f in absolute_level relative_level vm_nested yolo; do printf '%s=' $f; cat /etc/anklume/$f; done; stat -c '%a %u:%g' /etc/anklume /etc/anklume/yolo";

describe.skipIf(!live)(
  "the nesting context of a new machine (skipped only without an Incus daemon; required under CI)",
  () => {
    const socket = readVia();
    const ways: [string, ReadVia][] = [
      ["through the CLI (a remote, ANKLUME_INCUS_READS=cli)", { cli: true }],
      ["through the daemon's socket (the local default)", socket],
    ];

    beforeAll(async () => {
      await incusRun(["launch", testImage(), C, ...P]);
    }, 120_000);
    afterAll(async () => {
      await incusRaw(["delete", C, "--force", ...P]);
    }, 60_000);

    test("this host reads its local daemon through the socket, so both ways below are tried", () => {
      expect("socket" in socket).toBe(true);
    });

    // Matrix: AP-006
    for (const [i, [way, how]] of ways.entries()) {
      test(`${way}: the four files (root, 0644 in a 0755 directory) and then the record`, async () => {
        const c = { absolute_level: 3 + i, relative_level: i, vm_nested: i === 0, yolo: i === 1 };
        await writeContext(C, "default", c, "60s", how);
        expect((await sh(files)).trim().split("\n")).toEqual([
          `absolute_level=${3 + i}`,
          `relative_level=${i}`,
          `vm_nested=${i === 0}`,
          `yolo=${i === 1}`,
          "755 0:0",
          "644 0:0",
        ]);
        expect(await marker()).toBe(`${3 + i}/${i}/${i === 0}/${i === 1}`);
      }, 60_000);
    }

    for (const [way, how] of ways) {
      test(`${way}: when /etc/anklume cannot be made a directory, it fails and records nothing`, async () => {
        await incusRaw(["config", "unset", C, CONTEXT_KEY, ...P]);
        await sh("rm -rf /etc/anklume && echo not-a-dir > /etc/anklume");
        const c = { absolute_level: 9, relative_level: 9, vm_nested: false, yolo: false };
        const err = await writeContext(C, "default", c, "60s", how).then(
          () => null,
          (e: Error) => e,
        );
        expect(err?.message).toMatch(/^incus (exec|query -X POST) .* failed/);
        expect(await marker()).toBe("");
        expect((await sh("cat /etc/anklume")).trim()).toBe("not-a-dir");
        await sh("rm -f /etc/anklume");
      }, 60_000);
    }

    test("a machine that does not exist: the daemon's error names the machine", async () => {
      const c = { absolute_level: 1, relative_level: 1, vm_nested: false, yolo: false };
      const err = await writeContext(`${C}-gone`, "default", c, "60s", socket).then(
        () => null,
        (e: Error) => e,
      );
      expect(err?.message).toContain(`/1.0/instances/${C}-gone/files`);
      expect(err?.message).toMatch(/not found/i);
    });
  },
);
