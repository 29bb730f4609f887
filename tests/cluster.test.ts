/**
 * Placement on a real two-member Incus cluster (docs/remote.md): two daemons
 * started by the test, each in a network namespace of its own
 * (tests/remote-daemon.ts), the second joined to the first, the cluster
 * added as a remote in the test's own INCUS_CONF. `target:` on a domain and
 * on a machine; bridges defined on each member then created; a moved target
 * warned about and left alone; a member down named in the error while the
 * rest converges.
 */
import { afterAll, beforeAll, describe, expect } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
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
  type RemoteCluster,
  remoteInstances,
  remoteShell,
  startRemoteCluster,
} from "./remote-daemon.ts";

const live = (await incusOrSkip("cluster")) && (await netnsOrSkip("cluster"));

const NetworkSchema = v.looseObject({ status: v.string(), locations: v.array(v.string()) });

describe.skipIf(!live)(
  "placement on a two-member Incus cluster, each member in a network namespace of its own (skipped only without Incus or network namespaces; both required under CI)",
  () => {
    const test = scenario();
    const u = uniq();
    let cluster: RemoteCluster;
    let dir = "";
    let image = "";
    let m1 = "";
    let m2 = "";
    const ctx = () => join(dir, "ctx");
    const domain = `cl${u}`;
    const client = () => remoteShell(cluster);
    const instances = async () =>
      (await remoteInstances(cluster))
        .filter((i) => i.name.includes(u))
        .map((i) => ({ name: i.name.replace(/^\d+-/, ""), status: i.status, on: i.location }));
    const infra = (machines: Record<string, string | null>) =>
      `project_name: cl${u}
global:
  base_subnet: "10.236"
  default_os_image: ${image}
  incus_remote: ${cluster.name}
domains:
  ${domain}:
    subnet_id: 20
    target: ${m1}
    ephemeral: true
    machines:
${Object.entries(machines)
  .map(([m, t]) => `      ${m}:${t ? `\n        target: ${t}` : " {}"}\n`)
  .join("")}`;
    const apply = async () => {
      const sync = await make(dir, ["sync"], {
        INCUS_CONF: cluster.conf,
        ANKLUME_CONTEXT_DIR: ctx(),
      });
      expect(sync.code, sync.out).toBe(0);
      return make(dir, ["apply-infra", "NAT=false", "SKIP_SNAPSHOT=1", `CONTEXT_DIR=${ctx()}`], {
        INCUS_CONF: cluster.conf,
      });
    };

    beforeAll(async () => {
      image = await testImage();
      const third = 10 + Math.floor(Math.random() * 230);
      cluster = await startRemoteCluster(u, [third, third + 1], [image]);
      [m1, m2] = cluster.members as [string, string];
      dir = makeWorkdir("anklume-cluster");
      mkdirSync(ctx());
      write(join(ctx(), "absolute_level"), "1\n");
      write(join(ctx(), "relative_level"), "1\n");
    }, 300_000);

    afterAll(async () => {
      await cluster?.stop();
      if (dir) removeWorkdir(dir);
    }, 180_000);

    // Matrix: RM-2-004
    test("target on the domain and on a machine: each instance on its member; the bridge defined on both members", async () => {
      write(join(dir, "infra.yml"), infra({ [`${domain}-a`]: null, [`${domain}-b`]: m2 }));
      const r = await apply();
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain(`on member ${m2}`);
      expect((await instances()).sort((a, b) => a.name.localeCompare(b.name))).toEqual([
        { name: `${domain}-a`, status: "Running", on: m1 },
        { name: `${domain}-b`, status: "Running", on: m2 },
      ]);
      const net = await client()`incus query ${`${cluster.name}:/1.0/networks/001-net-${domain}`}`;
      expect(v.parse(NetworkSchema, JSON.parse(net.stdout))).toMatchObject({
        status: "Created",
        locations: expect.arrayContaining([m1, m2]),
      });
      const again = await apply();
      expect(again.code, again.out).toBe(0);
      expect(totalChanged(again.out), again.out).toBe(0);
    }, 300_000);

    // Matrix: RM-2-005
    test("a moved target is a warning naming both members, and the instance stays where it is", async () => {
      write(join(dir, "infra.yml"), infra({ [`${domain}-a`]: m2, [`${domain}-b`]: m2 }));
      const r = await apply();
      expect(r.code, r.out).toBe(0);
      // Ansible wraps the report's lines: compare with the spaces folded.
      expect(r.out.replace(/\s+/g, " ")).toContain(
        `runs on cluster member "${m1}" but infra.yml says target "${m2}": not moved`,
      );
      expect((await instances()).find((i) => i.name === `${domain}-a`)?.on).toBe(m1);
    }, 300_000);

    // Matrix: RM-2-006
    test("a member down: the machine placed on it fails with its name in the error; the rest converges", async () => {
      await cluster.stopMember(m2);
      write(
        join(dir, "infra.yml"),
        infra({
          [`${domain}-a`]: null,
          [`${domain}-b`]: m2,
          [`${domain}-c`]: m2,
          [`${domain}-d`]: null,
        }),
      );
      const r = await apply();
      expect(r.code).not.toBe(0);
      expect(r.out).toContain(`${domain}-c`);
      expect(r.out).toContain(m2);
      // The report says, per member, what changed there.
      expect(r.out.replace(/\s+/g, " ")).toContain(`${domain}-d on member ${m1}: create container`);
      const d = (await instances()).find((i) => i.name === `${domain}-d`);
      expect(d).toEqual({ name: `${domain}-d`, status: "Running", on: m1 });
    }, 300_000);
  },
);
