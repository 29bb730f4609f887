#!/usr/bin/env bun
/*
Usage: bun bench/snapshots.ts [--runs N]   (default 5)

Time `snapshot-apply.ts create` (the whole process, as make apply runs it)
for 6 and 18 running busybox containers, one at a time (--jobs 1) versus
concurrently (default --jobs 4), and print both and the ratio, with the
number of incus calls per run. Everything it creates (a project, 18
containers, a temporary tree) is deleted at the end.
v1 reference on these machines: snap.sh took 0.2 s per container one at a
time (3 incus calls each); its pre-apply step took 1.1 s and snapshotted nothing.
*/
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { incusAvailable } from "../lib/incus/client.ts";
import {
  createProject,
  destroy,
  launch,
  run,
  testImage,
  writeTree,
} from "../tests/fixtures/snap-fixture.ts";

const runsArg = process.argv.indexOf("--runs");
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;
if (!(await incusAvailable())) {
  console.error("bench/snapshots.ts: no Incus daemon answers; start one first");
  process.exit(1);
}

const u = Math.random().toString(36).slice(2, 7);
const project = `001-bsnap${u}`;
const small = `bsnap${u}six`;
const rest = `bsnap${u}more`;
const names = Array.from({ length: 18 }, (_, i) => `001-bsnap${u}-${String(i).padStart(2, "0")}`);
const work = mkdtempSync(join(tmpdir(), "bench-snap-"));
const base = join(work, "tree");
const log = join(work, "incus.log");

writeTree(base, [
  {
    name: small,
    project,
    machines: Object.fromEntries(names.slice(0, 6).map((n) => [n.slice(4), n])),
  },
  { name: rest, project, machines: Object.fromEntries(names.slice(6).map((n) => [n.slice(4), n])) },
]);

async function timeCreate(jobs: number, limit?: string): Promise<{ s: number; calls: number }> {
  writeFileSync(log, "");
  const args = ["bun", "scripts/snapshot-apply.ts", "create", "--jobs", String(jobs)];
  if (limit) args.push("--limit", limit);
  const t = performance.now();
  const r = await run(args, {
    ANKLUME_BASE_DIR: base,
    ANKLUME_SNAPSHOT_STATE_DIR: join(work, "state"),
    ANKLUME_INCUS_LOG: log,
  });
  const s = (performance.now() - t) / 1000;
  if (r.code !== 0 || !r.stderr.includes("0 failed"))
    throw new Error(`create failed:\n${r.stderr}`);
  const calls = readFileSync(log, "utf8").split("\n").filter(Boolean).length;
  return { s, calls };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

try {
  const image = await testImage();
  console.error(`setting up 18 containers (${image}) in project ${project}...`);
  await createProject(project);
  for (let i = 0; i < names.length; i += 6) {
    await Promise.all(names.slice(i, i + 6).map((n) => launch(image, n, project)));
  }
  console.log(
    `snapshot-apply create, ${RUNS} runs each, interleaved (whole process, dir storage driver)`,
  );
  console.log(
    "containers  one-at-a-time median (min)  concurrent(4) median (min)  ratio  incus calls",
  );
  for (const [count, limit] of [
    [6, small],
    [18, undefined],
  ] as const) {
    const seq: number[] = [];
    const conc: number[] = [];
    let calls = 0;
    for (let r = 0; r < RUNS; r++) {
      seq.push((await timeCreate(1, limit)).s);
      const c = await timeCreate(4, limit);
      conc.push(c.s);
      calls = c.calls;
    }
    const a = median(seq);
    const b = median(conc);
    const f = (x: number) => `${x.toFixed(2)}s`;
    console.log(
      `${String(count).padStart(10)}  ${`${f(a)} (${f(Math.min(...seq))})`.padStart(26)}  ` +
        `${`${f(b)} (${f(Math.min(...conc))})`.padStart(26)}  ${(a / b).toFixed(2).padStart(4)}x  ${String(calls).padStart(11)}`,
    );
  }
  console.log(
    "v1 reference: 0.2 s/container one at a time with 3 incus calls each; its pre-apply step snapshotted nothing",
  );
} finally {
  await destroy(
    names.map((n) => [n, project] as [string, string]),
    [project],
  );
  rmSync(work, { recursive: true, force: true });
}
