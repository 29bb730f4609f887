import { afterAll, beforeEach, expect, test } from "bun:test";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sync } from "./sync.ts";

const root = mkdtempSync(join(tmpdir(), "anklume-sync-"));
const saved = { ...process.env };
process.env.ANKLUME_CONTEXT_DIR = join(root, "no-context");
process.env.ANKLUME_CACHE_DIR = join(root, "cache");
process.env.ANKLUME_SKIP_HOST_SUBNET_CHECK = "1";
// bun runs every test file in one process: put the environment back afterwards.
afterAll(() => {
  for (const k of [
    "ANKLUME_CONTEXT_DIR",
    "ANKLUME_CACHE_DIR",
    "ANKLUME_SKIP_HOST_SUBNET_CHECK",
    "ANKLUME_PROC_DIR",
  ]) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
  rmSync(root, { recursive: true, force: true });
});

const INFRA = `project_name: p
global:
  base_subnet: "10.100"
domains:
  lab:
    subnet_id: 3
    machines:
      lab-a: { ip: "10.100.3.10" }
      lab-b: { ip: "10.100.3.120" }
`;

let n = 0;
let dir = "";
beforeEach(() => {
  dir = join(root, `w${n++}`);
  mkdirSync(dir);
  writeFileSync(join(dir, "infra.yml"), INFRA);
});
const run = (opts: Parameters<typeof sync>[1] = {}) =>
  sync(join(dir, "infra.yml"), { baseDir: dir, ...opts });
const files = (sub: string) => (existsSync(join(dir, sub)) ? readdirSync(join(dir, sub)) : []);

test("sync writes the tree, in generation order, then the stamp answers the next one", async () => {
  const first = await run();
  expect(first.failed).toBeUndefined();
  expect(first.fromStamp).toBe(false);
  expect(first.mode).toBe("file");
  expect(first.domains).toEqual(["lab"]);
  expect(first.written.map((p) => p.slice(dir.length + 1))).toEqual([
    "group_vars/all.yml",
    "inventory/lab.yml",
    "group_vars/lab.yml",
    "host_vars/lab-a.yml",
    "host_vars/lab-b.yml",
  ]);
  expect(first.warnings.map((w) => [w.path.join("."), w.line])).toEqual([
    ["domains.lab.machines.lab-b.ip", 9],
  ]);
  expect(readFileSync(join(dir, "host_vars/lab-a.yml"), "utf8")).toContain(
    "instance_name: 001-lab-a",
  );
  const second = await run();
  expect(second.fromStamp).toBe(true);
  expect(second.written).toEqual([]);
  expect(second.unchanged).toEqual(first.written);
  expect(second.warnings).toEqual(first.warnings);
});

test("a dry run computes everything and writes neither a file nor a stamp", async () => {
  const dry = await run({ dryRun: true });
  expect(dry.written).toHaveLength(5);
  expect(files("host_vars")).toEqual([]);
  const real = await run();
  expect(real.fromStamp).toBe(false);
  expect(real.written).toEqual(dry.written);
});

test("a file that cannot be loaded fails at load, with no mode", async () => {
  const r = await sync(join(dir, "missing.yml"), { baseDir: dir });
  expect(r.failed).toBe("load");
  expect(r.mode).toBeUndefined();
  expect(r.errors[0]?.message).toContain("cannot find");
});

test("shape and cross-entity errors are all reported, located, and nothing is written", async () => {
  writeFileSync(
    join(dir, "infra.yml"),
    `${INFRA}  other:\n    subnet_id: 3\n    machnes: {}\n`.replace("10.100.3.10", "10.100.4.10"),
  );
  const r = await run();
  expect(r.failed).toBe("validation");
  expect(r.errors.map((e) => [e.path.join("."), e.line])).toEqual([
    ["domains.other.machnes", 12],
    ["domains.lab.machines.lab-a.ip", 8],
    ["domains.other.subnet_id", 11],
  ]);
  expect(files("inventory")).toEqual([]);
});

test("an infra without domains has nothing to generate", async () => {
  writeFileSync(join(dir, "infra.yml"), "project_name: p\nglobal: {}\ndomains: {}\n");
  const r = await run();
  expect(r.failed).toBeUndefined();
  expect(r.domains).toEqual([]);
  expect(r.written).toEqual([]);
});

test("a file whose managed block cannot be merged fails the sync before any write", async () => {
  mkdirSync(join(dir, "host_vars"));
  const block = "# === MANAGED BY infra.yml ===\n# === END MANAGED ===\n";
  writeFileSync(join(dir, "host_vars/lab-b.yml"), `${block}${block}`);
  const r = await run();
  expect(r.failed).toBe("merge");
  expect(r.errors[0]?.file).toBe(join(dir, "host_vars/lab-b.yml"));
  expect(files("inventory")).toEqual([]);
});

test("orphans are found (sorted, protection read) but never deleted", async () => {
  await run();
  writeFileSync(join(dir, "host_vars/old.yml"), "instance_ephemeral: false\n");
  writeFileSync(join(dir, "inventory/gone.yml"), "all: {}\n");
  for (const r of [await run(), await run()]) {
    expect(r.orphans.map((o) => [o.path.slice(dir.length + 1), o.protected])).toEqual([
      ["host_vars/old.yml", true],
      ["inventory/gone.yml", false],
    ]);
  }
  expect(files("inventory")).toContain("gone.yml");
});

test("the steps are reported in the documented order", async () => {
  const steps: string[] = [];
  await run({ onStep: (s) => steps.push(s) });
  expect(steps).toEqual([
    "import",
    "load",
    "schema",
    "enrich+validate",
    "render",
    "emit+merge",
    "write",
    "orphans",
  ]);
  steps.length = 0;
  await run({ onStep: (s) => steps.push(s) });
  expect(steps).toEqual(["stamp (nothing changed)", "orphans"]);
});

test("the nesting context sets the prefix, and a changed context is never answered by the stamp", async () => {
  const ctx = join(root, `ctx${n}`);
  mkdirSync(ctx);
  process.env.ANKLUME_CONTEXT_DIR = ctx;
  try {
    await run();
    writeFileSync(join(ctx, "absolute_level"), "2\n");
    const r = await run();
    expect(r.fromStamp).toBe(false);
    // Only the files that name Incus objects change: group_vars/lab.yml and the host_vars.
    expect(r.written.map((p) => p.slice(dir.length + 1))).toEqual([
      "group_vars/lab.yml",
      "host_vars/lab-a.yml",
      "host_vars/lab-b.yml",
    ]);
    expect(readFileSync(join(dir, "host_vars/lab-a.yml"), "utf8")).toContain(
      "instance_name: 002-lab-a",
    );
  } finally {
    process.env.ANKLUME_CONTEXT_DIR = join(root, "no-context");
  }
});

test("the host subnet check reads the routes once and skips anklume's own bridges", async () => {
  const proc = join(root, `proc${n}`);
  mkdirSync(join(proc, "net"), { recursive: true });
  const route = (ifname: string, dest: string, mask: string) =>
    `${ifname}\t${dest}\t00000000\t0001\t0\t0\t0\t${mask}\t0\t0\t0\n`;
  const header =
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n";
  writeFileSync(join(proc, "net/route"), header + route("001-net-lab", "0003640A", "00FFFFFF"));
  process.env.ANKLUME_PROC_DIR = proc;
  delete process.env.ANKLUME_SKIP_HOST_SUBNET_CHECK;
  try {
    expect((await run()).failed).toBeUndefined();
    writeFileSync(join(proc, "net/route"), header + route("wlan0", "0000640A", "0000FFFF"));
    const r = await run();
    expect(r.failed).toBe("validation");
    expect(r.errors[0]?.message).toContain("SUBNET CONFLICT");
  } finally {
    process.env.ANKLUME_SKIP_HOST_SUBNET_CHECK = "1";
  }
});

test("D16: a file edited between its read and the rename is not overwritten; nothing is written", async () => {
  expect((await sync(join(dir, "infra.yml"), { baseDir: dir })).failed).toBeUndefined();
  writeFileSync(join(dir, "infra.yml"), INFRA.replace("10.100.3.10", "10.100.3.11"));
  const file = join(dir, "host_vars/lab-a.yml");
  const other = join(dir, "group_vars/lab.yml");
  const before = readFileSync(other, "utf8");
  const onStep = (step: string) => {
    // After every file was read and merged, before any write: the user edits one.
    if (step === "emit+merge") writeFileSync(file, `${readFileSync(file, "utf8")}my_notes: 1\n`);
  };
  const r = await sync(join(dir, "infra.yml"), { baseDir: dir, onStep });
  expect(r.failed).toBe("write");
  expect(r.errors[0]?.file).toBe(file);
  expect(r.errors[0]?.message).toContain("changed while anklume was updating it");
  expect(r.written).toEqual([]);
  expect(readFileSync(file, "utf8")).toContain("my_notes: 1");
  expect(readFileSync(file, "utf8")).toContain("10.100.3.10");
  expect(readFileSync(other, "utf8")).toBe(before);
  expect(readdirSync(join(dir, "host_vars")).filter((n) => n.endsWith(".tmp"))).toEqual([]);
  // The next sync takes the edit in.
  const again = await sync(join(dir, "infra.yml"), { baseDir: dir });
  expect(again.failed).toBeUndefined();
  expect(readFileSync(file, "utf8")).toContain("my_notes: 1");
  expect(readFileSync(file, "utf8")).toContain("10.100.3.11");
});

test("D5: a folder that cannot take files is found before any write; nothing is written", async () => {
  expect((await sync(join(dir, "infra.yml"), { baseDir: dir })).failed).toBeUndefined();
  rmSync(join(dir, "host_vars"), { recursive: true });
  writeFileSync(join(dir, "host_vars"), "oops\n");
  writeFileSync(join(dir, "infra.yml"), INFRA.replaceAll("10.100", "10.200"));
  const r = await sync(join(dir, "infra.yml"), { baseDir: dir });
  expect(r.failed).toBe("write");
  expect(r.errors[0]?.message).toContain("is a file, not a directory");
  expect(r.written).toEqual([]);
  for (const f of ["group_vars/all.yml", "group_vars/lab.yml", "inventory/lab.yml"]) {
    expect(readFileSync(join(dir, f), "utf8")).not.toContain("10.200");
  }
});

test("D15: temp files of a killed sync are removed; other files and live writers' ones are kept", async () => {
  mkdirSync(join(dir, "host_vars"));
  const dead = ".lab-a.yml.9999999.1d.tmp"; // pid above any pid_max: that process is gone
  const live = `.lab-b.yml.${process.pid}.3.tmp`;
  const mine = [".notes.yml.tmp", "lab-a.yml.9999999.1.tmp", ".x.txt.9999999.1.tmp"];
  for (const n of [dead, live, ...mine]) writeFileSync(join(dir, "host_vars", n), "x");
  const r = await sync(join(dir, "infra.yml"), { baseDir: dir });
  expect(r.removedTemps).toEqual([join(dir, "host_vars", dead)]);
  const left = readdirSync(join(dir, "host_vars")).filter((n) => n.endsWith(".tmp"));
  expect(left.sort()).toEqual([live, ...mine].sort());
  // Also when the stamp answers (nothing changed).
  writeFileSync(join(dir, "host_vars", dead), "x");
  const again = await sync(join(dir, "infra.yml"), { baseDir: dir });
  expect(again.removedTemps).toEqual([join(dir, "host_vars", dead)]);
});
