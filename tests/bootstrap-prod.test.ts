/**
 * bootstrap.sh --prod and --snapshot btrfs on the real daemon, without
 * touching the development daemon's own pool, profile or network: the test
 * makes a loop-file btrfs (truncate, mkfs.btrfs, mount -o loop), points
 * --prod at a pool of its own there (ANKLUME_STORAGE_POOL and
 * ANKLUME_STORAGE_SOURCE), an admin instance and a nesting context of its own
 * (absolute_level 3), kernel settings files in its own directories, and runs
 * bootstrap.sh from a scratch copy of this checkout (the admin instance
 * mounts it; --import writes infra.yml there). Everything is removed after:
 * instance, pool, project, mount and loop device.
 *
 * Root, the daemon, the image anklume-debian12 and btrfs-progs (bootstrap.sh
 * --dev installs it) are required under CI=true; locally their absence skips.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import * as v from "valibot";
import { $ } from "zx";
import { incusGet, incusRaw, incusRun } from "../lib/incus/client.ts";
import { listAliases } from "../lib/incus/objects.ts";
import { cleanupInfra, freeSubnets } from "./apply-helpers.ts";
import { incusOrSkip, isCI, scenario, uniq } from "./helpers.ts";

const ROOT = join(import.meta.dir, "..");
const q = $({ quiet: true, nothrow: true });

const live = await incusOrSkip("bootstrap --prod");
const isRoot = process.getuid?.() === 0;
const hasMkfs = (await q`mkfs.btrfs --version`).exitCode === 0;
const hasImage = live && (await listAliases("default")).some((a) => a.name === "anklume-debian12");
const missing = [
  !isRoot && "root",
  !hasMkfs && "mkfs.btrfs (apt-get install btrfs-progs; bootstrap.sh --dev installs it)",
  !hasImage && "the image anklume-debian12 (bootstrap.sh --dev builds it)",
].filter(Boolean);
if (live && missing.length > 0 && isCI()) {
  throw new Error(`bootstrap --prod: CI requires ${missing.join(", ")}`);
}
const runnable = live && missing.length === 0;

const id = uniq();
const POOL = `anklume-prod-${id}`;
const INSTANCE = `anklume-prod-${id}`;
const PROJECT = `prodimp-${id}`;
const APPLIED = `pa${id}`;
let tmp = "";
let mnt = "";
let repo = "";
let ctx = "";
let env: Record<string, string> = {};
/**
 * The live settings `--prod` turns on (routing, bridged traffic through the
 * firewall) are put back as they were: a test leaves the host as it found it.
 * An absent br_netfilter reads as 0, which is what its absence means.
 */
const LIVE_SYSCTLS = [
  "/proc/sys/net/ipv4/ip_forward",
  "/proc/sys/net/bridge/bridge-nf-call-iptables",
];
const sysctlsBefore = new Map<string, string>();

/** Run the scratch checkout's bootstrap.sh as a process. */
function bootstrap(args: string[], extra: Record<string, string> = {}) {
  const p = Bun.spawnSync(["bash", join(repo, "bootstrap.sh"), ...args], {
    cwd: repo,
    stdin: "ignore",
    env: { ...env, ...extra },
  });
  return { code: p.exitCode, stderr: p.stderr.toString(), stdout: p.stdout.toString() };
}

/** A copy of this checkout's files (tracked and new, not ignored), node_modules linked. */
function scratchCheckout(dest: string): void {
  const r = Bun.spawnSync(["git", "ls-files", "-z", "-co", "--exclude-standard"], { cwd: ROOT });
  for (const f of r.stdout.toString().split("\0").filter(Boolean)) {
    if (!existsSync(join(ROOT, f))) continue; // deleted, not yet committed
    mkdirSync(dirname(join(dest, f)), { recursive: true });
    cpSync(join(ROOT, f), join(dest, f));
  }
  // node_modules: links to this checkout's, except the runtime packages,
  // copied, so that the admin instance (which sees only the scratch copy)
  // can run the scripts.
  mkdirSync(join(dest, "node_modules"));
  for (const p of readdirSync(join(ROOT, "node_modules"))) {
    const from = join(ROOT, "node_modules", p);
    if (RUNTIME.includes(p)) cpSync(from, join(dest, "node_modules", p), { recursive: true });
    else symlinkSync(from, join(dest, "node_modules", p));
  }
}
/** The packages the scripts import at run time (package.json's dependencies). */
const RUNTIME = Object.keys(
  (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { dependencies: object })
    .dependencies,
);

const InstanceSchema = v.looseObject({
  status: v.string(),
  config: v.record(v.string(), v.string()),
  devices: v.record(v.string(), v.record(v.string(), v.string())),
});
const instance = () => incusGet(`/1.0/instances/${INSTANCE}?project=default`, InstanceSchema);
const PoolSchema = v.looseObject({
  driver: v.string(),
  config: v.record(v.string(), v.string()),
});

describe.skipIf(!runnable)(
  "bootstrap.sh --prod on a loop-file btrfs with a pool of its own (skipped only without root, Incus, mkfs.btrfs or anklume-debian12; all required under CI)",
  () => {
    beforeAll(async () => {
      for (const p of LIVE_SYSCTLS) {
        sysctlsBefore.set(p, existsSync(p) ? readFileSync(p, "utf8").trim() : "0");
      }
      tmp = mkdtempSync(join(tmpdir(), "anklume-prod-"));
      mnt = join(tmp, "btrfs");
      mkdirSync(mnt);
      await $`truncate -s 2G ${join(tmp, "btrfs.img")}`;
      await $({ quiet: true })`mkfs.btrfs -q ${join(tmp, "btrfs.img")}`;
      await $`mount -o loop ${join(tmp, "btrfs.img")} ${mnt}`;
      repo = join(tmp, "repo");
      scratchCheckout(repo);
      ctx = join(tmp, "ctx");
      mkdirSync(ctx);
      for (const [f, val] of Object.entries({
        absolute_level: "3",
        relative_level: "0",
        vm_nested: "false",
        yolo: "false",
      })) {
        writeFileSync(join(ctx, f), `${val}\n`);
      }
      env = {
        ...(process.env as Record<string, string>),
        NO_COLOR: "1",
        ANKLUME_CONTEXT_DIR: ctx,
        ANKLUME_STORAGE_POOL: POOL,
        ANKLUME_STORAGE_SOURCE: join(mnt, "pool"),
        ANKLUME_INSTANCE: INSTANCE,
        ANKLUME_SYSCTL_DIR: join(tmp, "sysctl.d"),
        ANKLUME_MODULES_LOAD_DIR: join(tmp, "modules-load.d"),
        ANKLUME_SNAPSHOT_PATH: mnt,
        ANKLUME_CACHE_DIR: join(tmp, "cache"),
      };
      delete env.MAKEFLAGS;
      delete env.MAKELEVEL;
    }, 120_000);

    afterAll(async () => {
      await incusRaw(["delete", "--force", INSTANCE, "--project", "default"]);
      for (const i of ["imp"]) await incusRaw(["delete", "--force", i, "--project", PROJECT]);
      await incusRaw(["project", "delete", PROJECT]);
      await cleanupInfra(`003-${APPLIED}`);
      await incusRaw(["storage", "delete", POOL]);
      if (mnt) {
        const dev = (await q`findmnt -n -o SOURCE ${mnt}`).stdout.trim();
        await q`umount ${mnt}`;
        if (dev.startsWith("/dev/loop")) await q`losetup -d ${dev}`;
      }
      if (tmp) rmSync(tmp, { recursive: true, force: true });
      for (const [p, was] of sysctlsBefore) if (existsSync(p)) writeFileSync(p, `${was}\n`);
    }, 120_000);

    const step = scenario();

    // Matrix: LC-006
    step(
      "--prod --snapshot btrfs: read-only snapshot first, btrfs pool from the filesystem, admin instance with socket, repo and context",
      async () => {
        const r = bootstrap([
          "--prod",
          "--yes",
          "--skip-apply",
          "--no-package-cache",
          "--snapshot",
          "btrfs",
        ]);
        expect(r.stderr).toContain("storage backend: btrfs");
        expect(r.code).toBe(0);
        // The snapshot came before any other change, and is read-only.
        expect(r.stderr.indexOf("read-only btrfs snapshot")).toBeLessThan(
          r.stderr.indexOf("preseed applied"),
        );
        const snaps = readdirSync(join(mnt, ".anklume-snapshots"));
        expect(snaps).toHaveLength(1);
        expect(snaps[0]).toMatch(/^anklume-pre-bootstrap-\d{8}-\d{6}$/);
        const ro =
          await $`btrfs property get -ts ${join(mnt, ".anklume-snapshots", snaps[0] as string)} ro`;
        expect(ro.stdout.trim()).toBe("ro=true");

        // The pool: btrfs, on the loop filesystem, as the preseed said.
        const pool = await incusGet(`/1.0/storage-pools/${POOL}`, PoolSchema);
        expect(pool.driver).toBe("btrfs");
        expect(pool.config.source).toBe(join(mnt, "pool"));
        expect((await $`btrfs subvolume list ${mnt}`).stdout).toMatch(/ path pool$/m);
        const preseed = readFileSync(join(ctx, "incus-preseed.yml"), "utf8");
        expect(preseed).toContain(`name: ${POOL}`);
        expect(preseed).toContain("driver: btrfs");
        // The default profile kept its root disk: the preseed did not touch it.
        expect(preseed).not.toContain("profiles:");

        // The admin instance: on our pool, running, with its three devices.
        const inst = await instance();
        expect(inst.status).toBe("Running");
        expect(inst.devices.root?.pool).toBe(POOL);
        expect(inst.devices["incus-socket"]).toMatchObject({
          type: "proxy",
          connect: "unix:/var/lib/incus/unix.socket",
          listen: "unix:/var/lib/incus/unix.socket",
          bind: "container",
        });
        expect(inst.devices["anklume-repo"]).toMatchObject({
          type: "disk",
          source: repo,
          path: "/root/anklume",
        });
        expect(inst.devices["anklume-context"]).toMatchObject({
          source: ctx,
          path: "/etc/anklume",
          readonly: "true",
        });
        // From inside: the host's daemon answers on the proxied socket, the
        // checkout is there and writable, the host's nesting level is seen.
        const query = await incusRun([
          "exec",
          INSTANCE,
          "--project",
          "default",
          "--",
          "python3",
          "-c",
          [
            "import socket",
            "s = socket.socket(socket.AF_UNIX)",
            "s.connect('/var/lib/incus/unix.socket')",
            "s.sendall(b'GET /1.0 HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n')",
            "print(s.makefile('rb').read().decode())",
          ].join("\n"),
        ]);
        expect(query.stdout).toContain('"auth":"trusted"');
        await incusRun([
          "exec",
          INSTANCE,
          "--project",
          "default",
          "--",
          "touch",
          "/root/anklume/.written-inside",
        ]);
        expect(existsSync(join(repo, ".written-inside"))).toBe(true);
        const level = await incusRun([
          "exec",
          INSTANCE,
          "--project",
          "default",
          "--",
          "cat",
          "/etc/anklume/absolute_level",
        ]);
        expect(level.stdout).toBe("3\n");
        // anklume runs from inside with the host's tools, mounted read-only:
        // Bun runs the generator on the checkout, the incus client reaches
        // the host's daemon through the socket, make and Ansible start.
        const inside = (script: string) =>
          incusRaw(["exec", INSTANCE, "--project", "default", "--", "sh", "-c", script], {
            timeout: "120s",
          });
        const gen = await inside(
          "cd /root/anklume && bun scripts/generate.ts infra.example.yml --dry-run",
        );
        expect(gen.exitCode, gen.stderr).toBe(0);
        expect(gen.stdout + gen.stderr).toContain("inventory/");
        const list = await inside("incus list --project default --format csv -c n");
        expect(list.stdout.split("\n")).toContain(INSTANCE);
        const versions = await inside(
          "make --version && /opt/anklume/venv/bin/ansible-playbook --version",
        );
        expect(versions.exitCode, versions.stderr).toBe(0);
        expect(versions.stdout).toMatch(/GNU Make [0-9]/);
        expect(versions.stdout).toMatch(/ansible-playbook \[core 2\.[0-9]+/);
        for (const tool of ["bun", "incus", "make", "venv"])
          expect((await instance()).devices[`anklume-tool-${tool}`]?.readonly).toBe("true");

        // Kernel settings, persisted where the test said.
        expect(readFileSync(join(tmp, "sysctl.d", "99-anklume-bridge.conf"), "utf8")).toContain(
          "net.bridge.bridge-nf-call-iptables = 1",
        );
        expect(readFileSync(join(tmp, "modules-load.d", "br_netfilter.conf"), "utf8")).toContain(
          "br_netfilter",
        );
        expect(r.stderr).toContain("first apply: make sync && make apply");
        expect(r.stderr).toContain("skipped (--skip-apply)");
      },
      300_000,
    );

    // Matrix: LC-010
    step(
      "a second --prod changes nothing: same instance, same level, same files",
      async () => {
        const before = await instance();
        const preseed = readFileSync(join(ctx, "incus-preseed.yml"), "utf8");
        const r = bootstrap(["--prod", "--yes", "--skip-apply", "--no-package-cache"]);
        expect(r.code).toBe(0);
        expect(r.stderr).not.toMatch(/^done /m);
        expect(r.stderr).toContain("nothing changed: this machine was already bootstrapped");
        expect(r.stderr).toContain(`storage pool "${POOL}" present (driver btrfs`);
        const after = await instance();
        expect(after.config["volatile.uuid"]).toBe(before.config["volatile.uuid"] as string);
        expect(readFileSync(join(ctx, "absolute_level"), "utf8")).toBe("3\n");
        expect(readFileSync(join(ctx, "incus-preseed.yml"), "utf8")).toBe(preseed);
        expect(readdirSync(join(mnt, ".anklume-snapshots"))).toHaveLength(1);
      },
      300_000,
    );

    step(
      "a device changed by hand is put back, the rest is left alone",
      async () => {
        await incusRun([
          "config",
          "device",
          "set",
          INSTANCE,
          "anklume-context",
          "readonly=false",
          "--project",
          "default",
        ]);
        const r = bootstrap(["--prod", "--yes", "--skip-apply", "--no-package-cache"]);
        expect(r.code).toBe(0);
        expect(r.stderr).toContain("device anklume-context updated (readonly=true)");
        expect(r.stderr).toContain("bootstrap done: 1 change(s)");
        expect((await instance()).devices["anklume-context"]?.readonly).toBe("true");
      },
      300_000,
    );

    // Matrix: LC-012
    step(
      "--import writes infra.yml from the Incus state before the first apply, and keeps it on a re-run",
      async () => {
        await incusRun(
          [
            "project",
            "create",
            PROJECT,
            "-c",
            "features.images=false",
            "-c",
            "features.profiles=false",
          ],
          {
            input: "\n",
          },
        );
        await incusRun(
          ["init", "anklume-busybox", "imp", "--project", PROJECT, "--storage", POOL],
          {
            input: "\n",
          },
        );
        const r = bootstrap(["--prod", "--yes", "--skip-apply", "--no-package-cache", "--import"], {
          PROJECTS: PROJECT,
        });
        expect(r.code).toBe(0);
        expect(r.stderr).toContain("done infra.yml written from the running Incus state");
        const infra = readFileSync(join(repo, "infra.yml"), "utf8");
        expect(infra).toContain("imp:");
        const again = bootstrap(
          ["--prod", "--yes", "--skip-apply", "--no-package-cache", "--import"],
          {
            PROJECTS: PROJECT,
          },
        );
        expect(again.code).toBe(0);
        expect(again.stderr).toContain("infra.yml (or infra/) exists: kept, nothing imported");
        expect(readFileSync(join(repo, "infra.yml"), "utf8")).toBe(infra);
      },
      300_000,
    );

    step(
      "make sync && make apply when infra.yml exists; the next run reports changed=0",
      async () => {
        const [sid] = await freeSubnets("10.239", 1);
        writeFileSync(
          join(repo, "infra.yml"),
          `project_name: ${APPLIED}
global:
  base_subnet: "10.239"
  default_os_image: anklume-busybox
  package_cache: false
domains:
  ${APPLIED}:
    subnet_id: ${sid}
    machines:
      ${APPLIED}-m:
        ip: "10.239.${sid}.10"
`,
        );
        // NAT=false: bridges of tests route nowhere; no snapshot or network check of the host.
        const extra = {
          NAT: "false",
          ANKLUME_SKIP_NETWORK_CHECK: "1",
          SKIP_SNAPSHOT: "1",
          CONTEXT_DIR: ctx,
        };
        const r = bootstrap(["--prod", "--yes", "--no-package-cache"], extra);
        expect(r.stderr).toContain("PLAY RECAP");
        expect(r.code).toBe(0);
        expect(r.stderr).toMatch(/^done make sync && make apply: changed=[1-9]\d*$/m);
        const made = await incusGet(
          `/1.0/instances/003-${APPLIED}-m?project=003-${APPLIED}`,
          v.looseObject({ status: v.string() }),
        );
        expect(made.status).toBe("Running");
        const again = bootstrap(["--prod", "--yes", "--no-package-cache"], extra);
        expect(again.code).toBe(0);
        expect(again.stderr).toContain("ok   make sync && make apply: changed=0");
        expect(again.stderr).toContain("nothing changed: this machine was already bootstrapped");
        // The same apply from inside the admin instance, as in v1: its tools
        // are the host's, its Incus the host's daemon through the socket, its
        // nesting context the host's (/etc/anklume): nothing left to change.
        const inside = await incusRaw(
          [
            "exec",
            INSTANCE,
            "--project",
            "default",
            "--",
            "sh",
            "-c",
            "cd /root/anklume && make apply-infra NAT=false SKIP_SNAPSHOT=1 ANKLUME_SKIP_NETWORK_CHECK=1",
          ],
          { timeout: "300s" },
        );
        expect(inside.exitCode, inside.stdout + inside.stderr).toBe(0);
        expect(inside.stdout).toMatch(/PLAY RECAP/);
        expect(inside.stdout).toMatch(/changed=0/);
        expect(inside.stdout).not.toMatch(/changed=[1-9]/);
      },
      600_000,
    );
  },
);

describe.skipIf(!runnable)("bootstrap.sh --snapshot refusals (nothing changed)", () => {
  // Matrix: LC-011
  test.each([
    ["btrfs", "not btrfs"],
    ["zfs", "not zfs"],
  ])(
    "--snapshot %s on an ext4 path is refused before any change (%s)",
    (type, message) => {
      const dir = mkdtempSync(join(tmpdir(), "anklume-snaprefuse-"));
      try {
        const fresh = join(dir, "ctx");
        const p = Bun.spawnSync(
          ["bash", join(ROOT, "bootstrap.sh"), "--prod", "--yes", "--snapshot", type],
          {
            stdin: "ignore",
            env: {
              ...process.env,
              NO_COLOR: "1",
              ANKLUME_CONTEXT_DIR: fresh,
              ANKLUME_SNAPSHOT_PATH: dir,
            },
          },
        );
        const err = p.stderr.toString();
        expect(err).toContain(message);
        expect(err).toContain("nothing was changed");
        expect(err).not.toMatch(/^done /m);
        expect(p.exitCode).toBe(1);
        expect(existsSync(fresh)).toBe(false);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    60_000,
  );

  test.skipIf(Bun.which("snapper") !== null)(
    "--snapshot snapper without snapper says what is missing and how to get it (skipped where snapper is installed)",
    () => {
      const p = Bun.spawnSync(
        ["bash", join(ROOT, "bootstrap.sh"), "--dev", "--snapshot", "snapper"],
        {
          stdin: "ignore",
          env: { ...process.env, NO_COLOR: "1" },
        },
      );
      const err = p.stderr.toString();
      expect(err).toContain("snapper is missing; install it and create a config");
      expect(p.exitCode).toBe(1);
    },
    60_000,
  );
});
