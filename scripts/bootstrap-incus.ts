#!/usr/bin/env bun
// Usage: bun scripts/bootstrap-incus.ts [--pool NAME] [--driver DRIVER] [--dry-run]
//
// Initialise a running Incus daemon the way anklume needs it, without
// `incus admin init` (whose automatic bridge fails on hosts where it cannot
// pick a subnet), and without creating any network: anklume's domains bring
// their own bridges. Idempotent: only what is missing is created.
//
//   1. the storage pool (default `default`, driver `dir`);
//   2. a root disk on the `default` profile of the `default` project
//      (pool=<pool> path=/).
//
// Options:
//   --pool NAME      storage pool name (default: default)
//   --driver DRIVER  driver used when the pool must be created (default: dir)
//   --dry-run        say what would be created, change nothing
//   -h, --help       show this help
//
// Exit: 0 success (also when nothing had to change), 1 failure, 2 usage error.
import process from "node:process";
import { paint, parseCli, runMain, say, topComment } from "../lib/core/cli.ts";
import { incusAvailable, incusRun } from "../lib/incus/client.ts";
import { listPools, listProfiles } from "../lib/incus/objects.ts";

const USAGE = topComment(import.meta.url);

type Devices = Record<string, Record<string, string>>;

/** The name of the device that mounts `/` from a disk, if any. */
export function rootDisk(devices: Devices): string | undefined {
  return Object.entries(devices).find(([, d]) => d.type === "disk" && d.path === "/")?.[0];
}

/** What must be created: pure, from the observed pools and default profile. */
export function plan(
  pools: { name: string; driver: string }[],
  profileDevices: Devices,
  pool: string,
): { createPool: boolean; addRoot: boolean; rootPool?: string } {
  const root = rootDisk(profileDevices);
  return {
    createPool: !pools.some((p) => p.name === pool),
    addRoot: root === undefined,
    rootPool: root === undefined ? undefined : profileDevices[root]?.pool,
  };
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseCli(
    argv,
    {
      pool: { type: "string", default: "default" },
      driver: { type: "string", default: "dir" },
      "dry-run": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    false,
  );
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (!(await incusAvailable())) {
    say(
      `${paint("red", "error:")} Cannot initialise Incus: the daemon does not answer; start it with: bash bootstrap.sh --dev`,
    );
    return 1;
  }
  const pool = values.pool;
  const pools = await listPools();
  const profiles = await listProfiles("default");
  const devices = profiles.find((p) => p.name === "default")?.devices ?? {};
  const todo = plan(pools, devices, pool);
  const dry = values["dry-run"];

  if (todo.createPool) {
    if (dry) say(`would create storage pool "${pool}" (driver ${values.driver})`);
    else {
      await incusRun(["storage", "create", pool, values.driver], { timeout: "120s", input: "\n" });
      say(`${paint("green", "done")} storage pool "${pool}" created (driver ${values.driver})`);
    }
  } else {
    const found = pools.find((p) => p.name === pool);
    say(`${paint("green", "ok")}   storage pool "${pool}" present (driver ${found?.driver})`);
  }

  if (todo.addRoot) {
    if (dry) say(`would add root disk (pool=${pool} path=/) to the default profile`);
    else {
      await incusRun(
        [
          "profile",
          "device",
          "add",
          "default",
          "root",
          "disk",
          `pool=${pool}`,
          "path=/",
          "--project",
          "default",
        ],
        { input: "\n" },
      );
      say(`${paint("green", "done")} default profile: root disk added (pool=${pool} path=/)`);
    }
  } else {
    say(`${paint("green", "ok")}   default profile has a root disk (pool=${todo.rootPool})`);
  }
  return 0;
}

if (import.meta.main) await runMain(main, USAGE);
