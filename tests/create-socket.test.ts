/**
 * A new machine created through the daemon's socket (lib/apply/execute.ts
 * `createInstance`: `POST /1.0/instances`, the operation waited for) on the
 * real daemon, against the same step run by the CLI (`incus launch`, what a
 * remote or ANKLUME_INCUS_READS=cli takes): both come from the planner's own
 * step, and must leave the same machine. A creation the daemon refuses, at
 * once or in its operation, is an error that names the request.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { createInstance } from "../lib/apply/execute.ts";
import { planInstances } from "../lib/apply/instances.ts";
import { planSteps } from "../lib/apply/reconcile.ts";
import { incusRaw, incusRun, readVia } from "../lib/incus/client.ts";
import { listInstances } from "../lib/incus/objects.ts";
import { incusOrSkip, testImage, uniq } from "./helpers.ts";

const live = await incusOrSkip("create-socket");
const u = uniq();
const [VIA_SOCKET, VIA_CLI] = [`crs-${u}-s`, `crs-${u}-c`];
const ctx = { absolute_level: 0, relative_level: 0, vm_nested: false, yolo: false };

/** The planner's creation step for a new machine of project default, whose image the project holds. */
function creationStep(name: string) {
  const want = {
    instances: [
      {
        name,
        project: "default",
        type: "lxc" as const,
        image: testImage(),
        profiles: ["default"],
        config: { "user.crs": "x" },
        devices: {},
        storage_volumes: {},
        ephemeral: true,
        ip: null,
        bridge: "unused",
      },
    ],
    declared: [],
    projects: ["default"],
    auto_cleanup: false,
    default_pool: "default",
    restart_on_device_change: true,
    context: false,
  };
  const plan = planInstances(want, [], ctx, (d) => ({ ref: d.image, inProject: true }), new Map());
  const [step] = planSteps(plan);
  if (!step?.create || !step.args) throw new Error("the planner gave no socket creation");
  return { args: step.args, create: step.create };
}

/** What a machine is, as the daemon lists it, without what differs by name or time. */
async function shape(name: string) {
  const i = (await listInstances()).find((x) => x.name === name && x.project === "default");
  if (!i) return undefined;
  const user = Object.entries(i.config).filter(
    ([k]) => k.startsWith("user.") || k.startsWith("security."),
  );
  return { status: i.status, type: i.type, profiles: i.profiles, config: Object.fromEntries(user) };
}

describe.skipIf(!live)(
  "a new machine created through the socket (skipped only without an Incus daemon; required under CI)",
  () => {
    afterAll(async () => {
      for (const n of [VIA_SOCKET, VIA_CLI, `${VIA_SOCKET}-x`])
        await incusRaw(["delete", n, "--force", "--project", "default"]);
    }, 60_000);

    // Matrix: AP-006
    test("the socket and the CLI, given the planner's one step, leave the same running machine", async () => {
      const socket = readVia();
      expect("socket" in socket).toBe(true);
      expect(await createInstance(creationStep(VIA_SOCKET).create, 120, socket)).toBe(true);
      await incusRun(creationStep(VIA_CLI).args, { timeout: "120s" });
      const [s, c] = [await shape(VIA_SOCKET), await shape(VIA_CLI)];
      expect(s?.status).toBe("Running");
      expect(s?.config).toMatchObject({
        "user.crs": "x",
        "security.protection.delete": "false",
        "user.anklume.managed_keys": "security.protection.delete,user.crs",
      });
      expect(s).toEqual(c);
    }, 120_000);

    test("through the CLI way it sends nothing and says so (the step's arguments run instead)", async () => {
      expect(await createInstance(creationStep(`${VIA_SOCKET}-x`).create, 120, { cli: true })).toBe(
        false,
      );
      expect(await shape(`${VIA_SOCKET}-x`)).toBeUndefined();
    });

    test("refused by the operation (an image alias the project lacks) or at once (a profile that does not exist): an error naming the request, no machine", async () => {
      const { create } = creationStep(`${VIA_SOCKET}-x`);
      const lacking = {
        ...create,
        body: { ...create.body, source: { type: "image", alias: `no-${u}` } },
      };
      const noProfile = { ...create, body: { ...create.body, profiles: [`no-${u}`] } };
      for (const c of [lacking, noProfile]) {
        const err = await createInstance(c, 60).then(
          () => null,
          (e: Error) => e,
        );
        expect(err?.message).toMatch(
          /^incus query -X POST \/1\.0\/instances\?project=default failed \(exit 1\): Error: \S/,
        );
        expect(await shape(`${VIA_SOCKET}-x`)).toBeUndefined();
      }
    }, 60_000);
  },
);
