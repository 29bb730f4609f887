/**
 * `make sync && make apply-infra` against the real Incus daemon: creation from
 * nothing, idempotence, check mode, drift repair, unset of removed keys,
 * orphans and auto_cleanup. One infra (3 domains, 7 busybox containers) is
 * converged once and shared by the tests of this file, in order.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { parse } from "yaml";
import { incusJson, incusRaw, incusRun } from "../lib/incus/client.ts";
import { listInstances } from "../lib/incus/objects.ts";
import {
  cleanupInfra,
  freeSubnets,
  make,
  makeWorkdir,
  recap,
  recapHosts,
  removeWorkdir,
  taskOutput,
  testImage,
  totalChanged,
  write,
} from "./apply-helpers.ts";
import { incusOrSkip, scenario, uniq } from "./helpers.ts";

const live = await incusOrSkip("apply");
const u = uniq();
const [A, B, C] = [`apa${u}`, `apb${u}`, `apc${u}`];
let dir = "";
let s: number[] = [];
let image = "";
let infraId = "";
let prefix = "";
/** Bridge names as the generator wrote them (long names are shortened). */
const bridge: Record<string, string> = {};
const ctxDir = () => join(dir, "ctx");
const nftArgs = () => `ARGS=-e incus_nftables_output_path=${join(dir, "isolation.nft")}`;

/** infra.yml of the test; `opts` toggles the edits the later tests make. */
function infra(
  opts: {
    dropGone?: boolean;
    dropOrphans?: boolean;
    autoCleanup?: boolean;
    extra?: boolean;
    dropC?: boolean;
    dropProfiles?: boolean;
  } = {},
) {
  const a1Config = opts.dropGone
    ? `{user.note: "declared"}`
    : `{user.note: "declared", user.gone: "remove-me"}`;
  return `project_name: ap${u}
global:
  base_subnet: "10.231"
  default_os_image: ${image}
${opts.autoCleanup ? "  auto_cleanup: true\n" : ""}domains:
  ${A}:
    description: "Domain A"
    subnet_id: ${s[0]}
    profiles:
      tuned:
        config: {limits.cpu: "${opts.dropGone ? 2 : 1}"}
${opts.dropProfiles ? "" : `      spare: {config: {user.note: spare}}\n      held: {config: {user.note: held}}\n`}    machines:
      ${u}-a1:
        ip: "10.231.${s[0]}.10"
        profiles: [default, tuned]
        config: ${a1Config}
        boot_autostart: true
        boot_priority: 10
        snapshots_schedule: "0 3 * * *"
        snapshots_expiry: "7d"
        storage_volumes:
          ${"data" + u}: {path: /srv/data}
${opts.dropOrphans ? "" : `      ${u}-a2:\n        ephemeral: true\n`}  ${B}:
    description: "Domain B"
    subnet_id: ${s[1]}
    ephemeral: true
    machines:
      ${u}-b1: {ip: "10.231.${s[1]}.${opts.dropGone ? 21 : 11}"}
      ${u}-b2: {}
${opts.dropOrphans ? "" : `      ${u}-b3: {ephemeral: false}\n`}${
  opts.dropC
    ? ""
    : `  ${C}:
    subnet_id: ${s[2]}
    machines:
      ${u}-c1: {ip: "10.231.${s[2]}.12"}
      ${u}-c2: {}
${opts.extra ? `      ${u}-c3: {}\n` : ""}`
}`;
}

async function syncAndApply(target: string, extra: string[] = []) {
  const sync = await make(dir, ["sync"]);
  expect(sync.code, sync.out).toBe(0);
  return make(dir, [target, "NAT=false", "SKIP_SNAPSHOT=1", `CONTEXT_DIR=${ctxDir()}`, ...extra]);
}

const name = (m: string) => `${prefix}${m}`;
/**
 * The PLAY RECAP of an apply of infra() (no machine has roles) when play 1's
 * reconcile task runs: localhost (the nftables play) and the one host that
 * task runs on. Every other machine ends at "Skip machines without roles"
 * (meta: end_host) before any task result, so Ansible never lists it. A
 * converged apply ends play 1 before that task (the speculation found
 * nothing to change or show): localhost alone.
 */
const recapOfInfra = () => ["localhost", `${u}-a1`].sort();
/** Play 1's two tasks (roles/incus_reconcile/tasks/main.yml). */
const END_TASK =
  "Incus reconcile | End the play if Incus already matches (planned while Ansible started)";
const RECONCILE_TASK =
  "Incus reconcile | Reconcile projects, bridges, profiles, images and instances";
/** A reconcile script that cannot start: an apply succeeds only when it is never run. */
const NO_SCRIPT = "ARGS=-e anklume_reconcile_script=/nonexistent/reconcile.ts";
/** An empty instance made by hand (not by the infra) that keeps the orphan profile "held" in use. */
const hand = `hand${u}`;
async function profileNames(project: string): Promise<string[]> {
  return (await incusJson(["profile", "list", "--project", project], v.array(AnySchema)))
    .map((p: { name: string }) => p.name)
    .sort();
}
const proj = (d: string) => `${prefix}${d}`;
const AnySchema = v.any();

async function instance(project: string, n: string) {
  return (await listInstances()).find((i) => i.project === project && i.name === n);
}

describe.skipIf(!live)(
  "make apply-infra on a real Incus daemon (skipped only without one; required under CI)",
  () => {
    // The tests below are the steps of one scenario, run in order (tests/helpers.ts, test audit 5.6).
    const test = scenario();
    let first = { code: 1, out: "" };

    beforeAll(async () => {
      dir = makeWorkdir("anklume-apply");
      s = await freeSubnets("10.231", 3);
      image = await testImage();
      mkdirSync(ctxDir());
      write(join(ctxDir(), "absolute_level"), "4\n");
      write(join(ctxDir(), "relative_level"), "2\n");
      write(join(ctxDir(), "vm_nested"), "true\n");
      write(join(ctxDir(), "yolo"), "false\n");
      write(join(dir, "infra.yml"), infra());
      first = await syncAndApply("apply-infra");
      for (const d of [A, B, C]) {
        const gv = parse(readFileSync(join(dir, "group_vars", `${d}.yml`), "utf8"));
        prefix = (gv.incus_project as string).slice(0, -d.length);
        bridge[d] = gv.incus_network.name;
      }
      infraId = `${prefix}ap${u}`;
    }, 300_000);

    afterAll(async () => {
      if (infraId) await cleanupInfra(infraId);
      if (dir) removeWorkdir(dir);
    }, 120_000);

    // Matrix: AP-001
    test("a first apply-infra creates the projects, bridges, profiles and running instances", async () => {
      expect(first.code, first.out).toBe(0);
      const projects = await incusJson(["project", "list"], v.array(AnySchema));
      for (const [d, desc] of [
        [A, "Domain A"],
        [B, "Domain B"],
        [C, ""],
      ] as const) {
        const p = projects.find((x: { name: string }) => x.name === proj(d));
        expect(p, `project ${proj(d)}`).toBeDefined();
        expect(p.description).toBe(desc);
        expect(p.config["features.images"]).toBe("true");
        expect(p.config["features.profiles"]).toBe("true");
        expect(p.config["features.networks"]).toBe("false");
      }
      const nets = await incusJson(["network", "list"], v.array(AnySchema));
      [A, B, C].forEach((d, i) => {
        const n = nets.find((x: { name: string }) => x.name === bridge[d]);
        expect(n, `bridge of ${d}`).toBeDefined();
        expect(n.config["ipv4.address"]).toBe(`10.231.${s[i]}.254/24`);
        expect(n.config["ipv4.dhcp.ranges"]).toBe(`10.231.${s[i]}.100-10.231.${s[i]}.249`);
        expect(n.config["ipv4.nat"]).toBe("false");
        expect(n.config["ipv6.address"]).toBe("none");
      });
      const profiles = await incusJson(
        ["profile", "list", "--project", proj(A)],
        v.array(AnySchema),
      );
      const def = profiles.find((p: { name: string }) => p.name === "default");
      expect(def.devices.eth0).toMatchObject({
        type: "nic",
        network: bridge[A],
        "security.ipv4_filtering": "true",
      });
      expect(def.devices.root).toMatchObject({ type: "disk", pool: "default", path: "/" });
      expect(profiles.find((p: { name: string }) => p.name === "tuned").config["limits.cpu"]).toBe(
        "1",
      );

      const all = (await listInstances()).filter((i) => [A, B, C].map(proj).includes(i.project));
      expect(all.map((i) => i.name).sort()).toEqual(
        ["a1", "a2", "b1", "b2", "b3", "c1", "c2"].map((m) => name(`${u}-${m}`)).sort(),
      );
      for (const i of all) expect(i.status, i.name).toBe("Running");
      const a1 = all.find((i) => i.name === name(`${u}-a1`));
      expect(a1?.profiles).toEqual(["default", "tuned"]);
      expect(a1?.config).toMatchObject({
        "user.note": "declared",
        "user.gone": "remove-me",
        "boot.autostart": "true",
        "boot.autostart.priority": "10",
        "snapshots.schedule": "0 3 * * *",
        "snapshots.expiry": "7d",
        "security.protection.delete": "true",
      });
      expect(a1?.devices.eth0?.["ipv4.address"]).toBe(`10.231.${s[0]}.10`);
      expect(a1?.devices[`data${u}`]).toEqual({
        type: "disk",
        pool: "default",
        source: `data${u}`,
        path: "/srv/data",
      });
      const vols = await incusJson(
        ["storage", "volume", "list", "default", "--project", proj(A)],
        v.array(AnySchema),
      );
      expect(
        vols.some(
          (x: { name: string; type: string }) => x.name === `data${u}` && x.type === "custom",
        ),
      ).toBe(true);
      const prot = (m: string) =>
        all.find((i) => i.name === name(`${u}-${m}`))?.config["security.protection.delete"];
      expect(prot("a2")).toBe("false"); // ephemeral machine
      expect(prot("b2")).toBe("false"); // ephemeral domain
      expect(prot("b3")).toBe("true"); // ephemeral: false overrides the domain
    });

    // Matrix: AP-006
    test("the nesting context is written into each child", async () => {
      const r = await incusRun([
        "exec",
        name(`${u}-c1`),
        "--project",
        proj(C),
        "--",
        "sh",
        "-c",
        "cat /etc/anklume/absolute_level /etc/anklume/relative_level /etc/anklume/vm_nested /etc/anklume/yolo",
      ]);
      expect(r.stdout.split("\n").filter(Boolean)).toEqual(["5", "3", "true", "false"]);
    });

    // Matrix: AP-005
    test("a static IP is the address the container gets", async () => {
      let addr = "";
      for (let i = 0; i < 40 && addr === ""; i++) {
        const r = await incusRaw([
          "list",
          name(`${u}-b1`),
          "--project",
          proj(B),
          "--format",
          "json",
        ]);
        const st = JSON.parse(r.stdout)[0]?.state?.network?.eth0?.addresses ?? [];
        addr = st.find((a: { family: string }) => a.family === "inet")?.address ?? "";
        if (!addr) await Bun.sleep(500);
      }
      expect(addr).toBe(`10.231.${s[1]}.11`);
    }, 30_000);

    // Matrix: AP-002
    test("a second apply (infra, provisioning, nftables) reports changed=0 for every host; play 1 ends on the speculation", async () => {
      // The first full apply writes the ruleset file (in the workdir), the second changes nothing.
      expect((await syncAndApply("apply", [nftArgs()])).code).toBe(0);
      const r = await syncAndApply("apply", [nftArgs()]);
      expect(r.code, r.out).toBe(0);
      const hosts = recap(r.out);
      expect(Object.keys(hosts).sort(), r.out).toEqual(["localhost"]);
      for (const [h, c] of Object.entries(hosts)) expect(c.changed, `${h}\n${r.out}`).toBe(0);
      // Nothing to change or show: the meta task ended play 1, the reconcile task never ran.
      expect(r.out).toContain(`TASK [${END_TASK}]`);
      expect(taskOutput(r.out, END_TASK)).not.toContain("skipping");
      expect(r.out).not.toContain(RECONCILE_TASK);
    }, 120_000);

    // Matrix: AP-003
    test("make check on the converged infra reports no change", async () => {
      const r = await make(dir, ["check", "NAT=false", `CONTEXT_DIR=${ctxDir()}`, nftArgs()]);
      expect(r.code, r.out).toBe(0);
      expect(recapHosts(r.out), r.out).toEqual(recapOfInfra());
      expect(totalChanged(r.out), r.out).toBe(0);
    }, 120_000);

    // Matrix: AP-004
    test("make check on a changed infra shows the change and creates nothing", async () => {
      write(join(dir, "infra.yml"), infra({ extra: true }));
      expect((await make(dir, ["sync"])).code).toBe(0);
      const r = await make(dir, ["check", "NAT=false", `CONTEXT_DIR=${ctxDir()}`, nftArgs()]);
      expect(r.code, r.out).toBe(0);
      expect(totalChanged(r.out)).toBeGreaterThan(0);
      expect(r.out).toContain(`${name(`${u}-c3`)}: create container`);
      expect(await instance(proj(C), name(`${u}-c3`))).toBeUndefined();
      write(join(dir, "infra.yml"), infra());
      expect((await make(dir, ["sync"])).code).toBe(0);
    }, 120_000);

    // Matrix: AP-2-005
    test("a no-op apply-infra ends play 1 on the speculation without starting the reconcile script; with drift, or ANKLUME_NO_SPECULATION=1, the script runs", async () => {
      // A script that cannot start: the apply succeeds only on the speculation.
      const tmp = mkdtempSync(join(dir, "tmp-"));
      const run = (extra: string[], env: Record<string, string> = {}) =>
        make(
          dir,
          ["apply-infra", "NAT=false", "SKIP_SNAPSHOT=1", `CONTEXT_DIR=${ctxDir()}`, ...extra],
          { TMPDIR: tmp, ...env },
        );
      // The speculation repeats the last run's arguments: a real run records them.
      expect((await run([])).code).toBe(0);
      const spec = await run([NO_SCRIPT]);
      expect(spec.code, spec.out).toBe(0);
      expect(totalChanged(spec.out)).toBe(0);
      expect(spec.out).not.toContain(RECONCILE_TASK);
      // Its directory is gone after the run.
      expect(readdirSync(tmp)).toEqual([]);
      const plain = await run([NO_SCRIPT], { ANKLUME_NO_SPECULATION: "1" });
      expect(plain.code).not.toBe(0);
      expect(plain.out).toContain("/nonexistent/reconcile.ts");
      // Drift: the speculation plans a change, leaves no line, and the task runs the script.
      const a1 = name(`${u}-a1`);
      await incusRun(["config", "set", a1, "user.note=drifted-again", "--project", proj(A)]);
      const drift = await run([NO_SCRIPT]);
      expect(drift.code).not.toBe(0);
      expect(drift.out).toContain("/nonexistent/reconcile.ts");
      const repair = await run([]);
      expect(repair.code, repair.out).toBe(0);
      expect(repair.out).toContain("set user.note=declared (was drifted-again)");
    }, 180_000);

    // Matrix: AP-2-001
    test("apply repairs config and bridge drift, unsets removed keys, keeps hand-set keys", async () => {
      const a1 = name(`${u}-a1`);
      await incusRun([
        "config",
        "set",
        a1,
        "user.note=drifted",
        "user.mine=by-hand",
        "--project",
        proj(A),
      ]);
      await incusRun([
        "network",
        "set",
        bridge[B] as string,
        `ipv4.dhcp.ranges=10.231.${s[1]}.50-10.231.${s[1]}.60`,
      ]);
      write(join(dir, "infra.yml"), infra({ dropGone: true }));
      const r = await syncAndApply("apply-infra");
      expect(r.code, r.out).toBe(0);
      expect(totalChanged(r.out)).toBeGreaterThan(0);
      expect(r.out).toContain("set user.note=declared (was drifted)");
      expect(r.out).toContain("unset user.gone");
      expect(r.out).toContain(`bridge ${bridge[B]}: set ipv4.dhcp.ranges`);
      const cfg = (await instance(proj(A), a1))?.config ?? {};
      expect(cfg["user.note"]).toBe("declared");
      expect(cfg["user.gone"]).toBeUndefined();
      expect(cfg["user.mine"]).toBe("by-hand");
      // infra.yml edits: a profile's config and a static IP (a device) follow.
      const tuned = (
        await incusJson(["profile", "list", "--project", proj(A)], v.array(AnySchema))
      ).find((p: { name: string }) => p.name === "tuned");
      expect(tuned.config["limits.cpu"]).toBe("2");
      const b1 = await instance(proj(B), name(`${u}-b1`));
      expect(b1?.devices.eth0?.["ipv4.address"]).toBe(`10.231.${s[1]}.21`);
      expect(b1?.status).toBe("Running");
      expect(r.out).toContain("restart (devices changed)");
      const net = (await incusJson(["network", "list"], v.array(AnySchema))).find(
        (n: { name: string }) => n.name === bridge[B],
      );
      expect(net.config["ipv4.dhcp.ranges"]).toBe(`10.231.${s[1]}.100-10.231.${s[1]}.249`);
    }, 120_000);

    // Matrix: AP-2-002
    test("--tags networks reconciles the bridges only; the other kinds keep their drift", async () => {
      const a1 = name(`${u}-a1`);
      await incusRun(["config", "set", a1, "user.note=drifted-again", "--project", proj(A)]);
      await incusRun([
        "network",
        "set",
        bridge[B] as string,
        `ipv4.dhcp.ranges=10.231.${s[1]}.50-10.231.${s[1]}.60`,
      ]);
      // `make apply` adds no tag of its own: the run's tags are exactly "networks".
      const r = await syncAndApply("apply", ["ARGS=--tags networks"]);
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain(`bridge ${bridge[B]}: set ipv4.dhcp.ranges`);
      expect(r.out, r.out).not.toContain("user.note");
      expect(r.out).toMatch(/changed=1/);
      const net = (await incusJson(["network", "list"], v.array(AnySchema))).find(
        (n: { name: string }) => n.name === bridge[B],
      );
      expect(net.config["ipv4.dhcp.ranges"]).toBe(`10.231.${s[1]}.100-10.231.${s[1]}.249`);
      expect((await instance(proj(A), a1))?.config["user.note"]).toBe("drifted-again");
      // The whole apply then repairs the instance too.
      const all = await syncAndApply("apply-infra");
      expect(all.code, all.out).toBe(0);
      expect((await instance(proj(A), a1))?.config["user.note"]).toBe("declared");
    }, 120_000);

    // Matrix: OR-2-001
    test("removed machines and profiles are reported as orphans, and kept without auto_cleanup", async () => {
      expect((await profileNames(proj(A))).filter((n) => n === "spare" || n === "held")).toEqual([
        "held",
        "spare",
      ]);
      // A protected instance outside the infra still uses "held" once it is no longer declared
      // (protected so that auto_cleanup keeps it, and with it the profile, in the next test).
      await incusRun([
        "create",
        "--empty",
        hand,
        "--project",
        proj(A),
        "--profile",
        "default",
        "--profile",
        "held",
        "-c",
        "security.protection.delete=true",
      ]);
      write(
        join(dir, "infra.yml"),
        infra({ dropGone: true, dropOrphans: true, dropProfiles: true }),
      );
      const r = await syncAndApply("apply-infra");
      expect(r.code, r.out).toBe(0);
      expect(r.out).toMatch(/kind: profile\s+name: spare/);
      expect(r.out).toMatch(/kind: profile\s+name: held/);
      expect(await profileNames(proj(A))).toEqual(expect.arrayContaining(["held", "spare"]));
      expect(r.out).toContain(name(`${u}-a2`));
      expect(r.out).toContain(name(`${u}-b3`));
      expect(r.out).toMatch(/orphans/);
      expect(await instance(proj(A), name(`${u}-a2`))).toBeDefined();
      expect(await instance(proj(B), name(`${u}-b3`))).toBeDefined();
      // The same apply again changes nothing but still has orphans to show: play 1 goes on,
      // and the reconcile task prints the speculation's line (a script that cannot start
      // proves it was not run).
      const again = await syncAndApply("apply-infra", [NO_SCRIPT]);
      expect(again.code, again.out).toBe(0);
      expect(taskOutput(again.out, RECONCILE_TASK), again.out).toMatch(
        /kind: profile\s+name: spare/,
      );
      expect(totalChanged(again.out), again.out).toBe(0);
    }, 120_000);

    // Matrix: OR-2-002
    test("with auto_cleanup an ephemeral orphan and an unused orphan profile are deleted; a protected instance and a used profile are not", async () => {
      write(
        join(dir, "infra.yml"),
        infra({ dropGone: true, dropOrphans: true, autoCleanup: true, dropProfiles: true }),
      );
      const r = await syncAndApply("apply-infra");
      expect(r.code, r.out).toBe(0);
      expect(await instance(proj(A), name(`${u}-a2`))).toBeUndefined();
      expect(await instance(proj(B), name(`${u}-b3`))).toBeDefined();
      expect(r.out).toContain("kept (protected)");
      // Orphan profiles: the unused one is deleted, the one an instance uses is kept.
      expect(r.out).toContain(`${proj(A)}/spare: delete orphan profile (auto_cleanup)`);
      expect(r.out).toContain("kept (in use)");
      const left = await profileNames(proj(A));
      expect(left).not.toContain("spare");
      expect(left).toContain("held");
    }, 120_000);

    // Matrix: OR-3-001
    test("a removed domain: its project and bridge are orphans, kept while a protected instance lives there", async () => {
      write(
        join(dir, "infra.yml"),
        infra({
          dropGone: true,
          dropOrphans: true,
          autoCleanup: true,
          dropC: true,
          dropProfiles: true,
        }),
      );
      // sync-clean removes the domain's inventory file (its protected group_vars stay).
      const clean = await make(dir, ["sync-clean", "YES=1"]);
      expect(clean.code, clean.out).toBe(0);
      const r = await syncAndApply("apply-infra");
      expect(r.code, r.out).toBe(0);
      expect(r.out).toMatch(new RegExp(`kind: project\\s+name: ${proj(C)}`));
      expect(await instance(proj(C), name(`${u}-c1`))).toBeDefined();
      const projects = await incusJson(["project", "list"], v.array(AnySchema));
      expect(projects.some((p: { name: string }) => p.name === proj(C))).toBe(true);
      // Test audit 1.9: the bridge is an orphan too, kept while the instance uses it.
      expect(r.out).toMatch(new RegExp(`kind: network\\s+name: ${bridge[C]}\\s+`));
      const nets = await incusJson(["network", "list"], v.array(AnySchema));
      expect(nets.some((n: { name: string }) => n.name === bridge[C])).toBe(true);
    }, 120_000);

    // Matrix: AP-2-003
    test("apply-limit G=<domain> runs only that domain's hosts", async () => {
      const r = await make(dir, [
        "apply-limit",
        `G=${B}`,
        "NAT=false",
        "SKIP_SNAPSHOT=1",
        `CONTEXT_DIR=${ctxDir()}`,
        nftArgs(),
      ]);
      expect(r.code, r.out).toBe(0);
      const hosts = Object.keys(recap(r.out)).filter((h) => h !== "localhost");
      expect(hosts.length).toBeGreaterThan(0);
      for (const h of hosts) expect(h.includes("-b")).toBe(true);
      expect(totalChanged(r.out)).toBe(0);
    }, 120_000);
  },
);

describe("make apply without a generated inventory", () => {
  // Matrix: AP-007
  test("refuses with a message that says to run make sync", async () => {
    const empty = makeWorkdir("anklume-apply-empty");
    try {
      const r = await make(empty, ["apply"]);
      expect(r.code).not.toBe(0);
      expect(r.out).toContain("run make sync first");
      expect(r.out).not.toContain("PLAY");
    } finally {
      removeWorkdir(empty);
    }
  });
});
