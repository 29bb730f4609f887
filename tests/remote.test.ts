/**
 * anklume driving a remote Incus (docs/remote.md), for real: a second Incus
 * daemon started by the test (tests/remote-daemon.ts: its own state
 * directory and network namespace, HTTPS on a veth address, added as a
 * remote in the test's own INCUS_CONF), then `global.incus_remote` in
 * infra.yml: sync, apply, a second apply that changes nothing, snapshots and
 * rollback, all on the remote; this host's daemon is left untouched.
 */
import { afterAll, beforeAll, describe, expect } from "bun:test";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { listInstances } from "../lib/incus/objects.ts";
import {
  make,
  makeWorkdir,
  removeWorkdir,
  testImage,
  totalChanged,
  write,
} from "./apply-helpers.ts";
import { incusOrSkip, netnsOrSkip, scenario, uniq } from "./helpers.ts";
import {
  type RemoteDaemon,
  remoteInstances,
  remoteShell,
  startRemoteDaemon,
} from "./remote-daemon.ts";

const live = (await incusOrSkip("remote")) && (await netnsOrSkip("remote"));

describe.skipIf(!live)(
  "a remote Incus: a second daemon in a network namespace, added as a remote (skipped only without Incus or network namespaces; both required under CI)",
  () => {
    const test = scenario();
    const u = uniq();
    let remote: RemoteDaemon;
    let dir = "";
    let image = "";
    const ctx = () => join(dir, "ctx");
    const domain = `rm${u}`;
    const machines = [`rm${u}-a`, `rm${u}-b`];
    /** make in the workdir, with the test's client configuration. */
    const run = (args: string[], env: Record<string, string> = {}) =>
      make(dir, args, { INCUS_CONF: remote.conf, ...env });
    const exec = (name: string, project: string, script: string) =>
      remoteShell(
        remote,
      )`incus exec ${`${remote.name}:${name}`} --project ${project} -- sh -c ${script}`;

    beforeAll(async () => {
      image = await testImage();
      remote = await startRemoteDaemon(u, 10 + Math.floor(Math.random() * 240), [image]);
      dir = makeWorkdir("anklume-remote");
      mkdirSync(ctx());
      write(join(ctx(), "absolute_level"), "1\n");
      write(join(ctx(), "relative_level"), "1\n");
      write(
        join(dir, "infra.yml"),
        `project_name: rm${u}
global:
  base_subnet: "10.237"
  default_os_image: ${image}
  incus_remote: ${remote.name}
domains:
  ${domain}:
    subnet_id: 10
    machines:
${machines.map((m) => `      ${m}: {}\n`).join("")}`,
      );
    }, 300_000);

    afterAll(async () => {
      await remote?.stop();
      if (dir) removeWorkdir(dir);
    }, 120_000);

    // Matrix: RM-001
    test("sync says the host subnet check is skipped for a remote, and writes incus_remote", async () => {
      const r = await run(["sync"], { ANKLUME_CONTEXT_DIR: ctx() });
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain(
        `global.incus_remote: Incus runs on remote "${remote.name}": the host subnet check, which reads this machine's routes, is skipped`,
      );
    }, 60_000);

    // Matrix: RM-002
    test("make apply-infra creates the project, bridge and instances on the remote, none here", async () => {
      const before = (await listInstances()).map((i) => `${i.project}/${i.name}`);
      const r = await run(["apply-infra", "NAT=false", `CONTEXT_DIR=${ctx()}`]);
      expect(r.code, r.out).toBe(0);
      const there = (await remoteInstances(remote)).filter((i) => i.name.includes(u));
      expect(there.map((i) => [i.name.replace(/^\d+-/, ""), i.status]).sort()).toEqual(
        machines.map((m) => [m, "Running"]),
      );
      // This host's daemon: nothing of the infra, nothing else changed.
      const after = (await listInstances()).map((i) => `${i.project}/${i.name}`);
      expect(after.filter((n) => n.includes(u))).toEqual([]);
      expect(after.filter((n) => !before.includes(n) && n.includes(u))).toEqual([]);
    }, 300_000);

    // Matrix: RM-003
    test("a second apply-infra changes nothing", async () => {
      const r = await run(["apply-infra", "NAT=false", `CONTEXT_DIR=${ctx()}`]);
      expect(r.code, r.out).toBe(0);
      expect(totalChanged(r.out), r.out).toBe(0);
    }, 300_000);

    // Matrix: RM-2-001
    test("snapshots and restore on the remote: make snapshot, a change, make restore", async () => {
      const [inst] = (await remoteInstances(remote)).filter((i) =>
        i.name.endsWith(machines[0] as string),
      );
      if (!inst) throw new Error("no remote instance");
      expect((await exec(inst.name, inst.project, "echo before > /root/mark")).exitCode).toBe(0);
      const snap = await run(["snapshot", "NAME=rmsnap"]);
      expect(snap.code, snap.out).toBe(0);
      expect((await exec(inst.name, inst.project, "echo after > /root/mark")).exitCode).toBe(0);
      const restore = await run(["restore", "NAME=rmsnap"]);
      expect(restore.code, restore.out).toBe(0);
      const mark = await exec(inst.name, inst.project, "cat /root/mark");
      expect(mark.stdout.trim()).toBe("before");
    }, 300_000);

    // Matrix: RM-2-002
    test("make rollback restores the pre-apply snapshot an apply took on the remote", async () => {
      const [inst] = (await remoteInstances(remote)).filter((i) =>
        i.name.endsWith(machines[1] as string),
      );
      if (!inst) throw new Error("no remote instance");
      const stateEnv = { ANKLUME_SNAPSHOT_STATE_DIR: join(dir, "snap-state") };
      expect((await exec(inst.name, inst.project, "echo applied > /root/mark")).exitCode).toBe(0);
      const apply = await run(["apply-infra", "NAT=false", `CONTEXT_DIR=${ctx()}`], stateEnv);
      expect(apply.code, apply.out).toBe(0);
      expect((await exec(inst.name, inst.project, "echo broken > /root/mark")).exitCode).toBe(0);
      const rb = await run(["rollback"], stateEnv);
      expect(rb.code, rb.out).toBe(0);
      const mark = await exec(inst.name, inst.project, "cat /root/mark");
      expect(mark.stdout.trim()).toBe("applied");
    }, 300_000);

    // Matrix: RM-2-003
    test("make nftables-deploy refuses to load the ruleset here for a remote infra", async () => {
      const r = await run(["nftables-deploy", `NFT_FILE=${join(dir, "none.nft")}`]);
      expect(r.code).not.toBe(0);
      expect(r.out).toContain(`INCUS_REMOTE is "${remote.name}"`);
    }, 60_000);

    // Matrix: RM-2-007
    test("make import-infra reads the remote's state; make flush FORCE=true destroys the infra there, nothing here", async () => {
      const out = join(dir, "imported.yml");
      const imp = await run(["import-infra", `O=${out}`]);
      expect(imp.code, imp.out).toBe(0);
      const text = readFileSync(out, "utf8");
      for (const m of machines) expect(text).toContain(`${m}:`);
      const before = (await listInstances()).length;
      const flush = await run(["flush", "FORCE=true"], { ANKLUME_CONTEXT_DIR: ctx() });
      expect(flush.code, flush.out).toBe(0);
      expect((await remoteInstances(remote)).filter((i) => i.name.includes(u))).toEqual([]);
      expect((await listInstances()).length).toBe(before);
    }, 300_000);
  },
);
