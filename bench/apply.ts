#!/usr/bin/env bun
// Benchmark `make apply-infra` on the real daemon against two floors, in one run.
//
// Infra: D domains x M busybox containers (default 3x6 = 18), NAT=false,
// SKIP_SNAPSHOT=1, project_name bap<id>, base_subnet 10.234 (no test uses
// either). Figures, each the median of its runs:
//   launch floor     plain shell doing the same bare Incus work: per domain
//                    (domains side by side, xargs -P <parallel>) project create
//                    with anklume's features, bridge create with anklume's
//                    config, default-profile eth0 + root devices, image copy
//                    into the project (--mode relay); then every container
//                    with `incus launch` through `xargs -P <parallel>`. Timed:
//                    setup + launch (both printed), nothing read or planned.
//   first apply      `make apply-infra` on a fresh infra (after `make sync`,
//                    untimed): plan, projects, bridges, profiles, images,
//                    instances (init, start, nesting context).
//   empty-play floor `ansible-playbook` of an empty play (hosts: all,
//                    gather_facts: false, connection: local, no tasks) over the
//                    same generated inventory, group_vars and ansible.cfg.
//   no-op apply      `make apply-infra` again on the applied infra, each run
//                    followed by one of the empty play (same load); the Incus
//                    calls of the last one are counted (reads, of them the
//                    socket GETs, and writes) through ANKLUME_INCUS_LOG, where
//                    lib/incus/client.ts logs every call; and in how many
//                    runs play 1 ended on its `meta` task (the speculation's
//                    line used, no reconcile task run).
//   speculation      `reconcile.ts speculate` alone (what the Make target
//                    starts beside ansible-playbook), 3 runs after the no-ops.
// Ratios: first apply / launch floor and no-op / empty-play floor (goal <= 1.3).
// Everything created (projects, bridges, instances, images, profiles) is
// deleted at the end, on failure and on SIGINT/SIGTERM.
//
// Usage: bun bench/apply.ts [--size DxM] [--first N] [--noop N] [--parallel P]
//   --size      domains x containers per domain (default 3x6)
//   --first     first-apply runs, each paired with a launch-floor run (default 1)
//   --noop      no-op runs and empty-play runs (default 3)
//   --parallel  the floor's job limit; also passed to anklume when given
//               (default: incus_instances_parallel's default, lib/apply/desired.ts)
// BENCH_PROFILE=1 prints Ansible's per-task timings of the last no-op run.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { parse } from "yaml";
import { $ } from "zx";
import { DEFAULT_PARALLEL } from "../lib/apply/desired.ts";
import { bridgeConfig, DEFAULT_FEATURES, defaultProfileDevices } from "../lib/apply/kinds.ts";
import { INFRA_KEY } from "../lib/apply/reconcile.ts";
import { listInstances } from "../lib/incus/objects.ts";
import {
  ansibleOnPath,
  benchImage,
  cleanupInfra,
  freeSubnets,
  make,
  makeWorkdir,
  median,
  removeWorkdir,
  timed,
  totalChanged,
} from "./infra.ts";

const READ_VERBS = new Set(["list", "show", "info", "query", "get", "GET"]);

/** A read is a call whose verb (first non-flag word after the object) only reads. */
export function isRead(args: string[]): boolean {
  const words = args.filter((a) => !a.startsWith("-"));
  return words.slice(0, 3).some((w) => READ_VERBS.has(w));
}

/** One shell word, single-quoted. */
const sq = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
const kv = (c: Record<string, string>) => Object.entries(c).map(([k, x]) => `${k}=${x}`);

const { values } = parseArgs({
  options: {
    size: { type: "string", default: "3x6" },
    first: { type: "string", default: "1" },
    noop: { type: "string", default: "3" },
    parallel: { type: "string" },
  },
});
const [DOMAINS, PER] = (values.size ?? "").split("x").map(Number) as [number, number];
const FIRST_RUNS = Number(values.first);
const NOOP_RUNS = Number(values.noop);
const PARALLEL = values.parallel ? Number(values.parallel) : DEFAULT_PARALLEL;
for (const [k, n] of Object.entries({ DOMAINS, PER, FIRST_RUNS, NOOP_RUNS, PARALLEL })) {
  if (!Number.isInteger(n) || n < 1) {
    console.error(`bench/apply.ts: ${k} must be a positive integer (see --help in the header)`);
    process.exit(2);
  }
}

ansibleOnPath();
const IMAGE = benchImage();
const id = Math.random().toString(36).slice(2, 6);
const dir = makeWorkdir(`anklume-bench-apply-${DOMAINS}x${PER}`);
const floorId = `bench-floor-${id}`;
let infraId = ""; // known after make sync: nesting prefix + project_name
const sh = $({ quiet: true, nothrow: true, cwd: dir });

let cleaning: Promise<void> | undefined;
function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    await cleanupInfra(floorId);
    if (infraId) await cleanupInfra(infraId);
    removeWorkdir(dir);
  })();
  return cleaning;
}
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    console.error(`\n${sig}: cleaning up...`);
    cleanupAll().finally(() => process.exit(130));
  });
}

/** Instances in Running state in projects marked with this infra id, out of `want`. */
async function expectRunning(projects: string[], want: number, what: string): Promise<void> {
  const set = new Set(projects);
  const all = (await listInstances()).filter((i) => set.has(i.project));
  const running = all.filter((i) => i.status === "Running").length;
  if (running !== want) throw new Error(`${what}: ${running} of ${want} containers running`);
}

/** The launch floor's scripts: one setup script per domain, then one launch line per container. */
function writeFloorScripts(prefix: string, subnets: number[]) {
  const projects: string[] = [];
  const setups: string[] = [];
  const launches: string[] = [];
  for (let d = 0; d < DOMAINS; d++) {
    const project = `bfl${id}d${d}`;
    const bridge = `bfl${id}n${d}`;
    projects.push(project);
    const gw = `10.234.${subnets[d]}.254`;
    const p = `--project ${sq(project)}`;
    const feats = kv({ ...DEFAULT_FEATURES, [INFRA_KEY]: floorId }).map((x) => `-c ${sq(x)}`);
    const devs = defaultProfileDevices(bridge, "default", true);
    const lines = [
      "set -e",
      `incus project create ${sq(project)} ${feats.join(" ")} -q`,
      `incus network create ${sq(bridge)} ${kv(bridgeConfig(gw, false, floorId))
        .map(sq)
        .join(" ")} -q`,
      ...Object.entries(devs).map(
        ([name, dev]) =>
          `incus profile device add default ${name} ${sq(dev.type ?? "")} ${kv(
            Object.fromEntries(Object.entries(dev).filter(([k]) => k !== "type")),
          )
            .map(sq)
            .join(" ")} ${p} -q`,
      ),
      `incus image copy ${sq(IMAGE)} local: --project default --target-project ${sq(project)} --alias ${sq(IMAGE)} --mode relay -q`,
    ];
    const file = join(dir, `floor-setup-${d}.sh`);
    writeFileSync(file, `${lines.join("\n")}\n`);
    setups.push(file);
    for (let m = 0; m < PER; m++) launches.push(`${project} ${prefix}b${id}-${d}-${m}`);
  }
  writeFileSync(join(dir, "floor-setups.txt"), `${setups.join("\n")}\n`);
  writeFileSync(join(dir, "floor-launches.txt"), `${launches.join("\n")}\n`);
  return projects;
}

async function launchFloor(prefix: string, subnets: number[]) {
  const projects = writeFloorScripts(prefix, subnets);
  try {
    const setup = await timed(() => sh`xargs -P ${PARALLEL} -n 1 bash < floor-setups.txt`);
    if (setup.value.exitCode !== 0) throw new Error(`floor setup: ${setup.value.stderr}`);
    const launch = await timed(
      () =>
        sh`xargs -P ${PARALLEL} -n 2 sh -c ${`exec incus launch ${sq(IMAGE)} "$1" --project "$0" -q`} < floor-launches.txt`,
    );
    if (launch.value.exitCode !== 0) throw new Error(`floor launch: ${launch.value.stderr}`);
    await expectRunning(projects, DOMAINS * PER, "launch floor");
    return { setup: setup.s, launch: launch.s, total: setup.s + launch.s };
  } finally {
    await cleanupInfra(floorId);
  }
}

function writeInfra(subnets: number[]): void {
  let yml = `project_name: bap${id}\nglobal:\n  base_subnet: "10.234"\n  default_os_image: ${IMAGE}\ndomains:\n`;
  for (let d = 0; d < DOMAINS; d++) {
    yml += `  b${id}d${d}:\n    subnet_id: ${subnets[d]}\n    ephemeral: true\n    machines:\n`;
    for (let m = 0; m < PER; m++) yml += `      b${id}-${d}-${m}: {}\n`;
  }
  writeFileSync(join(dir, "infra.yml"), yml);
  writeFileSync(
    join(dir, "bench-empty-play.yml"),
    "---\n- name: Empty play\n  hosts: all\n  connection: local\n  gather_facts: false\n  tasks: []\n",
  );
}

const s1 = (x: number) => `${x.toFixed(1)} s`;
const s2 = (x: number) => `${x.toFixed(2)} s`;
const runs = (xs: number[], f: (x: number) => string) => `[${xs.map(f).join(", ")}]`;
const ratio = (a: number, b: number) => {
  const r = a / b;
  return `${r.toFixed(2)}x (goal <= 1.3x: ${r <= 1.3 ? "met" : "NOT met"})`;
};

try {
  const subnets = await freeSubnets("10.234", 2 * DOMAINS);
  writeInfra(subnets.slice(0, DOMAINS));
  const sync = await make(dir, ["sync"]);
  if (sync.code !== 0) throw new Error(`make sync: ${sync.out}`);
  const gv = parse(readFileSync(join(dir, "group_vars", `b${id}d0.yml`), "utf8"));
  const prefix = (gv.incus_project as string).slice(0, -`b${id}d0`.length);
  infraId = `${prefix}bap${id}`;
  const projects = Array.from({ length: DOMAINS }, (_, d) => `${prefix}b${id}d${d}`);
  const applyArgs = ["apply-infra", "NAT=false", "SKIP_SNAPSHOT=1", `CONTEXT_DIR=${dir}`];
  if (values.parallel) applyArgs.push(`ARGS=-e incus_instances_parallel=${PARALLEL}`);

  console.log(
    `apply benchmark: ${DOMAINS} domains x ${PER} containers (${DOMAINS * PER}), image ${IMAGE}, NAT=false, SKIP_SNAPSHOT=1, parallel ${PARALLEL}; first apply x${FIRST_RUNS}, no-op x${NOOP_RUNS}; load average ${loadavg()
      .map((x) => x.toFixed(1))
      .join(" ")} on this host`,
  );
  const floors: { setup: number; launch: number; total: number }[] = [];
  const firsts: number[] = [];
  for (let r = 0; r < FIRST_RUNS; r++) {
    if (r > 0) await cleanupInfra(infraId);
    floors.push(await launchFloor(prefix, subnets.slice(DOMAINS)));
    const first = await timed(() => make(dir, applyArgs));
    if (first.value.code !== 0) throw new Error(`first apply: ${first.value.out}`);
    await expectRunning(projects, DOMAINS * PER, "first apply");
    firsts.push(first.s);
  }

  const log = join(dir, "incus.log");
  const env: Record<string, string> = { ANKLUME_INCUS_LOG: log };
  if (process.env.BENCH_PROFILE === "1")
    env.ANSIBLE_CALLBACKS_ENABLED = "ansible.posix.profile_tasks";
  // No-op and empty play alternate, so that both see the same load of this
  // shared machine (its load moves by the second).
  const noops: number[] = [];
  const empties: number[] = [];
  let noopOut = "";
  let endedEarly = 0;
  for (let r = 0; r < NOOP_RUNS; r++) {
    writeFileSync(log, "");
    const noop = await timed(() => make(dir, applyArgs, env));
    if (noop.value.code !== 0) throw new Error(`no-op apply: ${noop.value.out}`);
    noops.push(noop.s);
    noopOut = noop.value.out;
    // Play 1 ended on its `meta` task (the speculation's line was used, no
    // worker forked) unless the reconcile task ran: told apart, a slow no-op
    // says which path it took (docs/apply.md, the anomaly of some runs).
    if (!noopOut.includes("TASK [Incus reconcile | Reconcile ")) endedEarly++;
    const e = await timed(() => sh`ansible-playbook bench-empty-play.yml`);
    if (e.value.exitCode !== 0) throw new Error(`empty play: ${e.value.stdout}${e.value.stderr}`);
    empties.push(e.s);
  }
  if (process.env.BENCH_PROFILE === "1") console.error(noopOut.slice(noopOut.lastIndexOf("=====")));
  // The speculation alone (what `make` starts beside ansible-playbook), timed
  // after the no-op runs: a slow no-op whose play 1 still ended on its meta
  // task waited for it, or not (docs/apply.md, the anomaly of some runs).
  const specDir = join(dir, "speculation");
  const speculations: number[] = [];
  for (let r = 0; r < 3; r++) {
    mkdirSync(specDir, { recursive: true });
    const t = await timed(
      () => sh`bun scripts/reconcile.ts speculate --base-dir ${dir} --out ${specDir}`,
    );
    const quiet = existsSync(join(specDir, "quiet"));
    rmSync(specDir, { recursive: true, force: true });
    if (t.value.exitCode !== 0 || !quiet)
      throw new Error(`speculation: no quiet line for the no-op (${t.value.stderr.trim()})`);
    speculations.push(t.s);
  }
  const calls = readFileSync(log, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as string[]);
  const reads = calls.filter(isRead).length;
  const gets = calls.filter((c) => c[0] === "GET").length;

  const floor = median(floors.map((f) => f.total));
  const first = median(firsts);
  const empty = median(empties);
  const noop = median(noops);
  const rows: [string, string, string][] = [
    [
      "launch floor (shell, setup + launch)",
      s1(floor),
      `${runs(
        floors.map((f) => f.total),
        s1,
      )} setup ${s1(median(floors.map((f) => f.setup)))} + launch ${s1(median(floors.map((f) => f.launch)))}`,
    ],
    ["anklume first apply", s1(first), runs(firsts, s1)],
    ["  first / launch floor", ratio(first, floor), ""],
    [
      "  first / launch part only",
      `${(first / median(floors.map((f) => f.launch))).toFixed(2)}x`,
      "",
    ],
    ["empty-play floor (ansible-playbook)", s2(empty), runs(empties, s2)],
    [
      "anklume no-op apply",
      s2(noop),
      `${runs(noops, s2)} changed ${totalChanged(noopOut)}, Incus calls ${reads} reads (${gets} on the socket) + ${calls.length - reads} writes; play 1 ended by its meta task in ${endedEarly} of ${noops.length}`,
    ],
    ["  no-op / empty-play floor", ratio(noop, empty), ""],
    [
      "speculation alone (in a no-op apply)",
      s2(median(speculations)),
      `${runs(speculations, s2)} reconcile.ts speculate, after the no-op runs`,
    ],
  ];
  for (const [a, b, c] of rows) console.log(`${a.padEnd(38)} ${b.padEnd(30)} ${c}`.trimEnd());
} catch (e) {
  console.error(`bench/apply.ts failed: ${e instanceof Error ? e.message : e}`);
  process.exitCode = 1;
} finally {
  await cleanupAll();
}
