#!/usr/bin/env bun
// Benchmark `make apply-infra` on the real daemon: for 3 domains x 3 and
// 3 x 6 busybox containers, time a first apply and a no-op re-apply, and count
// the `incus` calls of the no-op (read and write apart) through a PATH shim
// that logs every call. Prints the figures and the ratios to v1's.
//
// Usage: bun bench/apply.ts [--sizes 3x3,3x6]
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { $ } from "zx";
import {
  cleanupInfra,
  freeSubnets,
  make,
  makeWorkdir,
  removeWorkdir,
  testImage,
  totalChanged,
} from "../tests/apply-helpers.ts";

const V1 = { "3x3": { first: 82, noop: 44 }, "3x6": { first: 160, noop: 92 } } as Record<
  string,
  { first: number; noop: number }
>;
const READ_VERBS = new Set(["list", "show", "info", "query", "get"]);

/** A read is a call whose verb (first non-flag word after the object) only reads. */
export function isRead(args: string[]): boolean {
  const words = args.filter((a) => !a.startsWith("-"));
  return words.slice(0, 3).some((w) => READ_VERBS.has(w));
}

async function run(domains: number, perDomain: number) {
  const id = Math.random().toString(36).slice(2, 6);
  const dir = makeWorkdir(`anklume-bench-apply-${domains}x${perDomain}`);
  const subnets = await freeSubnets("10.232", domains);
  const image = await testImage();
  let yml = `project_name: bn${id}\nglobal:\n  base_subnet: "10.232"\n  default_os_image: ${image}\ndomains:\n`;
  for (let d = 0; d < domains; d++) {
    yml += `  b${id}d${d}:\n    subnet_id: ${subnets[d]}\n    ephemeral: true\n    machines:\n`;
    for (let m = 0; m < perDomain; m++) yml += `      b${id}-${d}-${m}: {}\n`;
  }
  writeFileSync(join(dir, "infra.yml"), yml);
  const shim = join(dir, "shim");
  mkdirSync(shim);
  const log = join(dir, "incus.log");
  const real = (await $`command -v incus`).stdout.trim();
  writeFileSync(
    join(shim, "incus"),
    `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\nexec '${real}' "$@"\n`,
  );
  chmodSync(join(shim, "incus"), 0o755);
  // BENCH_PROFILE=1 prints Ansible's per-task timings of the no-op run.
  const env: Record<string, string> = { PATH: `${shim}:${process.env.PATH}` };
  if (process.env.BENCH_PROFILE === "1")
    env.ANSIBLE_CALLBACKS_ENABLED = "ansible.posix.profile_tasks";
  const args = ["apply-infra", "NAT=false", "SKIP_SNAPSHOT=1", `CONTEXT_DIR=${dir}`];
  const gv = () => parse(readFileSync(join(dir, "group_vars", `b${id}d0.yml`), "utf8"));
  try {
    const sync = await make(dir, ["sync"]);
    if (sync.code !== 0) throw new Error(sync.out);
    const prefix = (gv().incus_project as string).slice(0, -`b${id}d0`.length);
    const t0 = performance.now();
    const first = await make(dir, args, env);
    const t1 = performance.now();
    if (first.code !== 0) throw new Error(first.out);
    writeFileSync(log, "");
    const t2 = performance.now();
    const noop = await make(dir, args, env);
    const t3 = performance.now();
    if (noop.code !== 0) throw new Error(noop.out);
    if (process.env.BENCH_PROFILE === "1")
      console.error(noop.out.slice(noop.out.lastIndexOf("=====")));
    const calls = readFileSync(log, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => l.split(" "));
    const reads = calls.filter(isRead).length;
    await cleanupInfra(`${prefix}bn${id}`);
    return {
      first: (t1 - t0) / 1000,
      noop: (t3 - t2) / 1000,
      noopChanged: totalChanged(noop.out),
      reads,
      writes: calls.length - reads,
    };
  } finally {
    removeWorkdir(dir);
  }
}

const sizesArg = process.argv.indexOf("--sizes");
const sizes = (sizesArg > 0 ? (process.argv[sizesArg + 1] ?? "") : "3x3,3x6").split(",");
console.log(
  "size  machines  first(s)  no-op(s)  no-op/first  changed  incus reads  incus writes  v1 first/no-op  speed-up first/no-op",
);
for (const size of sizes) {
  const [d, m] = size.split("x").map(Number) as [number, number];
  const r = await run(d, m);
  const v1 = V1[size];
  console.log(
    [
      size.padEnd(5),
      String(d * m).padStart(8),
      r.first.toFixed(1).padStart(9),
      r.noop.toFixed(1).padStart(9),
      (r.noop / r.first).toFixed(2).padStart(12),
      String(r.noopChanged).padStart(8),
      String(r.reads).padStart(12),
      String(r.writes).padStart(13),
      (v1 ? `${v1.first}/${v1.noop}` : "-").padStart(15),
      (v1 ? `${(v1.first / r.first).toFixed(1)}x/${(v1.noop / r.noop).toFixed(1)}x` : "-").padStart(
        22,
      ),
    ].join(" "),
  );
}
