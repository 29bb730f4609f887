/**
 * scripts/snap.ts and `make snap*` on the real daemon: three busybox
 * containers in two projects of their own, all deleted in afterAll.
 * Each test takes the snapshots it uses and writes the files it checks, so
 * any test runs alone (`-t`) or in any order.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import {
  createProject,
  destroy,
  fingerprint,
  launch,
  run,
  sh,
  snapshotsOf,
  testImage,
} from "./fixtures/snap-fixture.ts";
import { incusOrSkip, uniq } from "./helpers.ts";

setDefaultTimeout(120_000);
const live = await incusOrSkip("tests/snap.test.ts");
const u = uniq();
const P1 = `snt${u}a`;
const P2 = `snt${u}b`;
// A and B are unique; C shares A's short name under another prefix and project.
const A = { name: `001-sa${u}`, project: P1, short: `sa${u}` };
const B = { name: `001-sb${u}`, project: P2, short: `sb${u}` };
const C = { name: `002-sa${u}`, project: P2 };
const SNAP = ["bun", "scripts/snap.ts"];
const makeCmd = (...args: string[]) => ["make", "--no-print-directory", ...args];

const WRITE =
  "mkdir -p /data/sub && echo one > /data/a && echo two > /data/sub/b && echo keep > /data/c";
const MUTATE =
  "echo changed > /data/a && rm /data/sub/b && echo new > /data/new && rm -r /data/sub";

beforeAll(async () => {
  if (!live) return;
  const image = await testImage();
  await createProject(P1);
  await createProject(P2);
  await Promise.all([
    launch(image, A.name, P1),
    launch(image, B.name, P2),
    launch(image, C.name, P2),
  ]);
  await sh(A.name, P1, "mkdir -p /data");
}, 180_000);

afterAll(async () => {
  if (!live) return;
  await destroy(
    [
      [A.name, P1],
      [B.name, P2],
      [C.name, P2],
    ],
    [P1, P2],
  );
}, 120_000);

/** Take a snapshot through the script; fail the test when it does not succeed. */
async function snapOf(name: string, snap: string, project?: string): Promise<void> {
  const r = await run([...SNAP, "create", name, snap, ...(project ? ["--project", project] : [])]);
  if (r.code !== 0) throw new Error(`snap create ${name} ${snap} failed: ${r.stderr}`);
}

describe.if(live)("snap on the real daemon", () => {
  // Matrix: SN-001
  test("make snap + make snap-restore bring back exactly the files of the snapshot", async () => {
    await sh(A.name, P1, WRITE);
    const before = await fingerprint(A.name, P1);
    const snap = await run(makeCmd("snap", `I=${A.name}`, "S=round"));
    expect(snap.code).toBe(0);
    expect(snap.stderr).toContain(`project ${P1}`);
    expect(await snapshotsOf(A.name, P1)).toContain("round");
    await sh(A.name, P1, MUTATE);
    expect(await fingerprint(A.name, P1)).not.toBe(before);
    const restore = await run(makeCmd("snap-restore", `I=${A.name}`, "S=round"));
    expect(restore.code).toBe(0);
    expect(await fingerprint(A.name, P1)).toBe(before);
  });

  // Matrix: SN-002
  test("a short name from infra.yml finds the prefixed instance in its project; default name snap-<ts>", async () => {
    const before = await snapshotsOf(B.name, P2);
    const r = await run(makeCmd("snap", `I=${B.short}`));
    expect(r.code).toBe(0);
    const added = (await snapshotsOf(B.name, P2)).filter((s) => !before.includes(s));
    expect(added).toHaveLength(1);
    expect(added[0]).toMatch(/^snap-\d{8}-\d{6}$/);
    expect(r.stderr).toContain(`Done: ${B.name}/${added[0]}`);
  });

  // Matrix: SN-003
  test("list --json of one instance and the table of all instances show both projects", async () => {
    await snapOf(A.name, "listed");
    await snapOf(B.name, "listed-b");
    const one = await run([...SNAP, "list", B.short, "--json"]);
    expect(one.code).toBe(0);
    const rows = JSON.parse(one.stdout) as {
      instance: string;
      project: string;
      snapshot: string;
    }[];
    expect(rows.every((r) => r.instance === B.name && r.project === P2)).toBe(true);
    expect(rows.map((r) => r.snapshot)).toContain("listed-b");
    const table = await run(makeCmd("snap-list"));
    expect(table.code).toBe(0);
    expect(table.stdout.split("\n")[0]).toMatch(/^INSTANCE\s+PROJECT\s+SNAPSHOT\s+CREATED/);
    expect(table.stdout).toMatch(new RegExp(`${A.name}\\s+${P1}\\s+listed\\s+\\d{4}-`));
    // C never gets a snapshot in this file.
    expect(table.stdout).toMatch(new RegExp(`${C.name}\\s+${P2}\\s+\\(no snapshots\\)`));
  });

  // Matrix: SN-004
  test("make snap-delete removes only the named snapshot", async () => {
    await snapOf(A.name, "kept");
    await snapOf(A.name, "todelete");
    const before = await snapshotsOf(A.name, P1);
    const r = await run(makeCmd("snap-delete", `I=${A.name}`, "S=todelete"));
    expect(r.code).toBe(0);
    expect(await snapshotsOf(A.name, P1)).toEqual(before.filter((s) => s !== "todelete"));
    expect(await snapshotsOf(A.name, P1)).toContain("kept");
  });

  describe("self, with the hostname lookup faked through ANKLUME_HOSTNAME", () => {
    const self = { ANKLUME_HOSTNAME: A.name };

    test("create self snapshots the instance named like this host", async () => {
      const r = await run([...SNAP, "create", "self", "selfsnap"], self);
      expect(r.code).toBe(0);
      expect(await snapshotsOf(A.name, P1)).toContain("selfsnap");
    });

    // Matrix: SN-2-001
    test("restore self answered 'no' aborts with exit 1 and changes nothing", async () => {
      await snapOf(A.name, "self-no");
      await sh(A.name, P1, "echo after > /data/after");
      const before = await fingerprint(A.name, P1);
      const r = await run([...SNAP, "restore", "self", "self-no"], self, "no\n");
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("Type 'yes' to confirm");
      expect(r.stderr).toContain("Aborted.");
      expect(await fingerprint(A.name, P1)).toBe(before);
    });

    // Matrix: SN-2-001
    test("restore self with stdin closed (no answer) aborts with exit 1", async () => {
      await snapOf(A.name, "self-eof");
      await sh(A.name, P1, "echo after > /data/after");
      const before = await fingerprint(A.name, P1);
      const r = await run([...SNAP, "restore", "self", "self-eof"], self);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("Aborted.");
      expect(await fingerprint(A.name, P1)).toBe(before);
    });

    test("restore self answered 'yes' restores", async () => {
      await sh(A.name, P1, "mkdir -p /data && rm -f /data/after");
      await snapOf(A.name, "self-yes");
      await sh(A.name, P1, "echo after > /data/after");
      const r = await run([...SNAP, "restore", "self", "self-yes"], self, "yes\n");
      expect(r.code).toBe(0);
      expect(await sh(A.name, P1, "test -e /data/after && echo present || echo absent")).toBe(
        "absent\n",
      );
    });

    // Matrix: SN-2-002
    test("restore of this instance by its name also asks; --force and FORCE=1 do not", async () => {
      await sh(A.name, P1, "mkdir -p /data && rm -f /data/after");
      await snapOf(A.name, "self-force");
      await sh(A.name, P1, "echo after > /data/after");
      const asked = await run(
        [...SNAP, "restore", A.short, "self-force", "--project", P1],
        self,
        "nope\n",
      );
      expect(asked.code).toBe(1);
      expect(asked.stderr).toContain("Type 'yes' to confirm");
      expect(await sh(A.name, P1, "ls /data")).toContain("after");
      const forced = await run([...SNAP, "restore", "--force", "self", "self-force"], self);
      expect(forced.code).toBe(0);
      expect(forced.stderr).not.toContain("confirm");
      expect(await sh(A.name, P1, "ls /data")).not.toContain("after");
      await sh(A.name, P1, "echo after > /data/after");
      const make = await run(makeCmd("snap-restore", "I=self", "S=self-force", "FORCE=1"), self);
      expect(make.code).toBe(0);
      expect(await sh(A.name, P1, "ls /data")).not.toContain("after");
    });

    test("restoring another instance than this one does not ask", async () => {
      await snapOf(B.name, "other");
      const r = await run([...SNAP, "restore", B.name, "other"], self);
      expect(r.code).toBe(0);
      expect(r.stderr).not.toContain("confirm");
    });

    // Matrix: SN-010
    test("self on a host that is not an instance is a clear error", async () => {
      const r = await run([...SNAP, "create", "self"], {
        ANKLUME_HOSTNAME: `not-an-instance-${u}`,
      });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`"not-an-instance-${u}" is not an Incus instance`);
    });
  });

  describe("bad input: a clear message, a non-zero exit, nothing changed", () => {
    const snapState = async () =>
      JSON.stringify(
        await Promise.all([
          snapshotsOf(A.name, P1),
          snapshotsOf(B.name, P2),
          snapshotsOf(C.name, P2),
        ]),
      );

    // Matrix: SN-005
    test("unknown instance", async () => {
      const state = await snapState();
      const r = await run(makeCmd("snap", `I=nosuch${u}`));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`Cannot find instance "nosuch${u}"`);
      expect(await snapState()).toBe(state);
    });

    // Matrix: SN-005
    test("unknown snapshot lists the available ones", async () => {
      await snapOf(A.name, "avail");
      const state = await snapState();
      const r = await run(makeCmd("snap-restore", `I=${A.name}`, "S=nosuch"));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('Cannot restore snapshot "nosuch"');
      expect(r.stderr).toMatch(/available: [^\n]*\bavail\b/);
      const d = await run([...SNAP, "delete", A.name, "nosuch"]);
      expect(d.code).toBe(1);
      expect(d.stderr).toContain('Cannot delete snapshot "nosuch"');
      expect(await snapState()).toBe(state);
    });

    // Matrix: SN-006
    test("an existing snapshot name is refused on create", async () => {
      await snapOf(A.name, "dup");
      const state = await snapState();
      const r = await run([...SNAP, "create", A.name, "dup"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("already exists");
      expect(await snapState()).toBe(state);
    });

    // Matrix: SN-007
    test("an ambiguous short name lists the candidates", async () => {
      const state = await snapState();
      const r = await run([...SNAP, "create", A.short, "amb"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${A.name} (project ${P1})`);
      expect(r.stderr).toContain(`${C.name} (project ${P2})`);
      const scoped = await run([...SNAP, "list", A.short, "--project", P2, "--json"]);
      expect(scoped.code).toBe(0);
      expect(JSON.parse(scoped.stdout)[0].instance).toBe(C.name);
      expect(await snapState()).toBe(state);
    });

    // Matrix: SN-008
    test("missing arguments exit 2, in the script and in make", async () => {
      const state = await snapState();
      for (const args of [
        [],
        ["create"],
        ["restore", A.name],
        ["delete", A.name],
        ["bogus"],
        ["list", "--nope"],
      ]) {
        const r = await run([...SNAP, ...args]);
        expect(r.code).toBe(2);
        expect(r.stderr).toContain("error:");
      }
      for (const args of [["snap"], ["snap-restore", `I=${A.name}`], ["snap-delete", "S=x"]]) {
        const r = await run(makeCmd(...args));
        expect(r.code).not.toBe(0);
        expect(r.stderr).toMatch(/needs I=<instance\|self>/);
      }
      expect(await snapState()).toBe(state);
    });

    // Matrix: SN-009
    test("--dry-run changes nothing: no snapshot taken or deleted, and restore leaves the files written since", async () => {
      await sh(A.name, P1, "mkdir -p /data && rm -f /data/dry");
      await snapOf(A.name, "dryround");
      await sh(A.name, P1, "echo x > /data/dry");
      const files = await fingerprint(A.name, P1);
      const state = await snapState();
      for (const args of [
        ["create", A.name, "drysnap"],
        ["restore", A.name, "dryround"],
        ["delete", A.name, "dryround"],
      ]) {
        const r = await run([...SNAP, ...args, "--dry-run"]);
        expect(r.code).toBe(0);
        expect(r.stderr).toContain("[dry-run]");
      }
      // A restore that really ran would have deleted /data/dry.
      expect(await sh(A.name, P1, "cat /data/dry")).toBe("x\n");
      expect(await fingerprint(A.name, P1)).toBe(files);
      expect(await snapState()).toBe(state);
    });
  });
});

// Test audit 1.11: the help is checked against what a user needs from it, not
// against the script's own source. No daemon needed.
test("--help exits 0 and names every command with its arguments, every option and the exit codes", async () => {
  const r = await run([...SNAP, "--help"]);
  expect(r.code).toBe(0);
  expect(r.stderr).toBe("");
  const help = r.stdout;
  expect(help).toMatch(/^Usage: snap\.ts <command>/);
  for (const line of [
    /^ {2}create {2}<instance\|self> \[name\] .*snap-YYYYMMDD-HHMMSS/m,
    /^ {2}restore <instance\|self> <name> /m,
    /^ {2}list {4}\[instance\|self\] /m,
    /^ {2}delete {2}<instance\|self> <name> /m,
    /^ {2}--project <p> /m,
    /^ {2}--force .*restore/m,
    /^ {2}--json .*list/m,
    /^ {2}--dry-run /m,
    /^ {2}-h, --help /m,
    /0 success, 1 failure or aborted confirmation, 2 usage error/,
  ]) {
    expect(help).toMatch(line);
  }
  // The example of an instance name, real and short.
  expect(help).toContain("001-pro-dev");
  expect(help).toContain("`self`");
});
