#!/usr/bin/env bun
/*
Usage: bun scripts/bootstrap-prod.ts --repo DIR [--pool NAME] [--storage-source PATH] [--instance NAME] [--image ALIAS] [--dry-run]

The Incus part of `bootstrap.sh --prod`, on a running daemon. Idempotent:
only what is missing is created; an existing pool, profile root disk or
instance is kept as it is.

  1. the storage backend, from the filesystem that holds the pool's data
     (the storage source when given, else Incus's directory): btrfs on
     btrfs, zfs on zfs, lvm on an LVM logical volume, else dir;
  2. a preseed (incus admin init --preseed, kept in <context dir>/incus-preseed.yml)
     creating the pool and the default profile's root disk, when missing;
  3. the admin instance (project default, on that pool) with the devices
     incus-socket (proxy: the host's Incus socket at /var/lib/incus/unix.socket
     inside), anklume-repo (the checkout at /root/anklume, read-write),
     anklume-context (the host's nesting context at /etc/anklume, read-only,
     so anklume inside names things as the host does), and the host's tools
     read-only, since the instance has no network to install them:
     anklume-tool-bun, -incus and -make at /usr/local/bin/<tool>, and
     anklume-tool-venv (the Ansible virtualenv at its own path); then started.
     From inside: cd /root/anklume && make sync && make apply.

Options (each also read from the environment, for tests and for hosts
whose daemon already holds other pools):
  --repo DIR              the anklume checkout to mount (bootstrap.sh passes its own)
  --pool NAME             storage pool (ANKLUME_STORAGE_POOL, default: default)
  --storage-source PATH   where the pool's data goes (ANKLUME_STORAGE_SOURCE; default:
                          Incus's choice under its own directory)
  --instance NAME         admin instance (ANKLUME_INSTANCE, default: anklume-instance)
  --image ALIAS           its image (ANKLUME_ADMIN_IMAGE, default: anklume-debian12)
  --dry-run               say what would be created, change nothing
  -h, --help              show this help

The context directory is $ANKLUME_CONTEXT_DIR (default /etc/anklume).

Exit: 0 success (also when nothing had to change), 1 failure, 2 usage error.
*/
import { resolve } from "node:path";
import process from "node:process";
import { paint, parseCli, runMain, say, topComment, UsageError } from "../lib/core/cli.ts";
import { contextDir } from "../lib/core/nesting.ts";
import { incusAvailable } from "../lib/incus/client.ts";
import { hostSocket, hostTools, planLive, runProdPlan } from "../lib/lifecycle/prod-run.ts";

const USAGE = topComment(import.meta.url);
const env = process.env;

/** Entry point: returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const { values: o } = parseCli(
    argv,
    {
      repo: { type: "string" },
      pool: { type: "string", default: env.ANKLUME_STORAGE_POOL || "default" },
      "storage-source": { type: "string", default: env.ANKLUME_STORAGE_SOURCE || undefined },
      instance: { type: "string", default: env.ANKLUME_INSTANCE || "anklume-instance" },
      image: { type: "string", default: env.ANKLUME_ADMIN_IMAGE || "anklume-debian12" },
      "dry-run": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    false,
  );
  if (o.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (!o.repo)
    throw new UsageError("--repo is required: the anklume checkout to mount in the admin instance");
  const source = o["storage-source"];
  if (source !== undefined && !source.startsWith("/")) {
    throw new UsageError(`--storage-source "${source}" is not an absolute path`);
  }
  if (!(await incusAvailable())) {
    say(
      `${paint("red", "error:")} Cannot set up Incus: the daemon does not answer; start it with: bash bootstrap.sh --prod`,
    );
    return 1;
  }
  const ctx = resolve(contextDir());
  const plan = await planLive(
    {
      pool: o.pool,
      instance: o.instance,
      image: o.image,
      repo: resolve(o.repo),
      contextDir: ctx,
      hostSocket: hostSocket(),
      tools: hostTools(),
    },
    source,
  );
  say(`${paint("green", "ok")}   storage backend: ${plan.backend.driver} (${plan.backend.reason})`);
  for (const line of plan.ok) say(`${paint("green", "ok")}   ${line}`);
  if (plan.errors.length > 0) {
    for (const e of plan.errors) say(`${paint("red", "error:")} ${e}`);
    return 1;
  }
  if (o["dry-run"]) {
    for (const a of plan.actions) say(a.would);
    if (plan.preseed) process.stdout.write(plan.preseed);
    return 0;
  }
  await runProdPlan(plan, ctx, (line) =>
    say(
      line.startsWith("preseed written")
        ? `${paint("green", "ok")}   ${line}`
        : `${paint("green", "done")} ${line}`,
    ),
  );
  return 0;
}

if (import.meta.main) await runMain(main, USAGE);
