/**
 * `make import-infra` round trip on the real daemon: state made by hand with
 * the incus CLI (two projects, their bridges, a custom profile, busybox
 * containers: one with a static IP, protection, boot and user keys, one
 * unprotected and stopped, one with a snapshot schedule), imported, synced,
 * applied twice: the first apply adopts it, the second reports changed=0;
 * the same instances (UUIDs), nothing deleted, the static IP kept.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { incusRaw } from "../lib/incus/client.ts";
import { listInstances, listNetworks, listProjects } from "../lib/incus/objects.ts";
import {
  cleanupInfra,
  freeSubnets,
  make,
  makeWorkdir,
  removeWorkdir,
  testImage,
  totalChanged,
  write,
} from "./apply-helpers.ts";
import { incusOrSkip, uniq } from "./helpers.ts";

const live = await incusOrSkip("import-infra");
const u = uniq();
const [A, B] = [`ima${u}`, `imb${u}`];
const [netA, netB] = [`net-${A}`, `net-${B}`];
let dir = "";
let ctx = "";
let s: number[] = [];
const runs: Record<string, { code: number; out: string }> = {};
let uuids: Record<string, string> = {};

const env = () => ({ ANKLUME_CONTEXT_DIR: ctx });
const ok = async (args: string[]) => {
  const r = await incusRaw(args);
  if (r.exitCode !== 0) throw new Error(`incus ${args.join(" ")}: ${r.stderr}`);
};
const mine = async () =>
  Object.fromEntries(
    (await listInstances())
      .filter((i) => i.project === A || i.project === B)
      .map((i) => [`${i.project}/${i.name}`, i.config["volatile.uuid"] ?? ""]),
  );

describe.skipIf(!live)(
  "make import-infra round trip on a real Incus daemon (skipped only without one; required under CI)",
  () => {
    beforeAll(async () => {
      dir = makeWorkdir("anklume-import");
      ctx = join(dir, "ctx");
      mkdirSync(ctx);
      write(join(ctx, "absolute_level"), "0\n");
      s = await freeSubnets("10.238", 2);
      const img = testImage();
      // State by hand, the way an anklume user's host looks before anklume.
      for (const [p, net, id] of [
        [A, netA, s[0]],
        [B, netB, s[1]],
      ] as const) {
        await ok([
          "network",
          "create",
          net,
          `ipv4.address=10.238.${id}.254/24`,
          "ipv4.nat=false",
          "ipv6.address=none",
        ]);
        await ok([
          "project",
          "create",
          p,
          "-c",
          "features.images=true",
          "-c",
          "features.profiles=true",
          "-c",
          "features.storage.volumes=true",
        ]);
        await ok([
          "image",
          "copy",
          img,
          "local:",
          "--target-project",
          p,
          "--alias",
          img,
          "--mode",
          "relay",
        ]);
        await ok([
          "profile",
          "device",
          "add",
          "default",
          "root",
          "disk",
          "path=/",
          "pool=default",
          "--project",
          p,
        ]);
        await ok([
          "profile",
          "device",
          "add",
          "default",
          "eth0",
          "nic",
          `network=${net}`,
          "name=eth0",
          "--project",
          p,
        ]);
      }
      await ok(["project", "set", A, "description", "Hand-made lab", "--property"]);
      await ok(["profile", "create", "tuned", "--project", A]);
      await ok(["profile", "set", "tuned", "limits.cpu=1", "--project", A]);
      await ok([
        "launch",
        img,
        `${u}-a1`,
        "--project",
        A,
        "--profile",
        "default",
        "--profile",
        "tuned",
        "--device",
        `eth0,ipv4.address=10.238.${s[0]}.10`,
        "-c",
        "security.protection.delete=true",
        "-c",
        "boot.autostart=true",
        "-c",
        "boot.autostart.priority=10",
        "-c",
        "user.note=hello",
      ]);
      await ok(["init", img, `${u}-a2`, "--project", A]);
      await ok([
        "launch",
        img,
        `${u}-b1`,
        "--project",
        B,
        "-c",
        "security.protection.delete=true",
        "-c",
        "snapshots.schedule=0 3 * * *",
      ]);
      uuids = await mine();

      runs.import = await make(dir, ["import-infra", `PROJECTS=${A} ${B}`], env());
      runs.again = await make(dir, ["import-infra", `PROJECTS=${A} ${B}`], env());
      runs.other = await make(dir, ["import-infra", `PROJECTS=${A} ${B}`, "O=other.yml"], env());
      // The user names the infra (the import's "imported-infra" is a guess, noted in the file).
      const text = readFileSync(join(dir, "infra.yml"), "utf8").replace(
        "project_name: imported-infra",
        `project_name: im${u}`,
      );
      writeFileSync(join(dir, "infra.yml"), text);
      runs.sync = await make(dir, ["sync"], env());
      const apply = ["apply-infra", "NAT=false", "SKIP_SNAPSHOT=1", `CONTEXT_DIR=${ctx}`];
      runs.first = await make(dir, apply, env());
      runs.second = await make(dir, apply, env());
    }, 900_000);

    afterAll(async () => {
      if (!dir) return;
      await cleanupInfra(`im${u}`, [A, B]);
      for (const n of [netA, netB]) await incusRaw(["network", "delete", n]);
      removeWorkdir(dir);
    }, 300_000);

    test("import-infra writes infra.yml: two domains, the machines, what was guessed as comments", () => {
      // Matrix: LC-009
      expect(runs.import?.code, runs.import?.out).toBe(0);
      expect(runs.import?.out).toContain("2 domain(s), 3 machine(s)");
      const text = readFileSync(join(dir, "other.yml"), "utf8");
      const infra = parse(text, { version: "1.1" });
      expect(infra.global).toEqual({
        base_subnet: "10.238",
        default_os_image: testImage(),
        nesting_prefix: false,
      });
      expect(infra.domains[A].subnet_id).toBe(s[0]);
      expect(infra.domains[A].description).toBe("Hand-made lab");
      expect(infra.domains[A].profiles).toEqual({ tuned: { config: { "limits.cpu": "1" } } });
      expect(infra.domains[A].machines[`${u}-a1`]).toEqual({
        ip: `10.238.${s[0]}.10`,
        profiles: ["default", "tuned"],
        boot_autostart: true,
        boot_priority: 10,
        config: { "user.note": "hello" },
      });
      expect(infra.domains[A].machines[`${u}-a2`]).toEqual({ ephemeral: true });
      expect(infra.domains[B].machines[`${u}-b1`]).toEqual({ snapshots_schedule: "0 3 * * *" });
      expect(text).toContain(
        `# Imported instance ${u}-a2; guessed: it is Stopped: the apply starts it.`,
      );
      expect(text).toContain("apply with NAT=false");
    });

    test("it refuses to overwrite infra.yml without O=, and writes where O= says", () => {
      expect(runs.again?.code).not.toBe(0);
      expect(runs.again?.out).toContain("Cannot import into infra.yml: it exists");
      expect(runs.other?.code, runs.other?.out).toBe(0);
      expect(existsSync(join(dir, "other.yml"))).toBe(true);
    });

    test("the imported file passes make sync", () => {
      // Matrix: LC-009
      expect(runs.sync?.code, runs.sync?.out).toBe(0);
      expect(runs.sync?.out).not.toMatch(/ERROR/);
    });

    test("the first apply adopts the state; the second reports changed=0", () => {
      expect(runs.first?.code, runs.first?.out.slice(-4000)).toBe(0);
      // Adoption only: markers, anklume's bridge and NIC keys, the stopped instance started; no create, no delete.
      expect(runs.first?.out).not.toMatch(/- '[^']*: (create|delete)\b/);
      expect(runs.first?.out).toContain(`start (was Stopped)`);
      expect(runs.second?.code, runs.second?.out.slice(-4000)).toBe(0);
      expect(totalChanged(runs.second?.out ?? ""), runs.second?.out.slice(-4000)).toBe(0);
    });

    test("the same instances (UUIDs), projects and bridges; nothing recreated or deleted; the static IP kept", async () => {
      expect(await mine()).toEqual(uuids);
      const projects = (await listProjects()).map((p) => p.name);
      expect(projects).toContain(A);
      expect(projects).toContain(B);
      const nets = (await listNetworks()).filter((n) => n.name === netA || n.name === netB);
      expect(nets.map((n) => n.config["ipv4.address"]).sort()).toEqual(
        [`10.238.${s[0]}.254/24`, `10.238.${s[1]}.254/24`].sort(),
      );
      const a1 = (await listInstances()).find((i) => i.name === `${u}-a1` && i.project === A);
      expect(a1?.expanded_devices.eth0?.["ipv4.address"]).toBe(`10.238.${s[0]}.10`);
      expect(a1?.config["user.note"]).toBe("hello");
      const a2 = (await listInstances()).find((i) => i.name === `${u}-a2` && i.project === A);
      expect(a2?.status).toBe("Running");
    });
  },
);
