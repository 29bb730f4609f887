#!/usr/bin/env bun
/*
Usage: bun bench/provision.ts [--keep]

Benchmark of provisioning (make bench-provision): 3 Debian containers
(anklume-debian12) with base_system, on a bridge without NAT, apt through the
host package cache (bootstrap.sh --dev starts it). Prints, in one run, the
infrastructure-only figures beside the provisioning ones: first and no-op
`make apply-infra`, first and no-op `make apply-provision`, and a no-op
`make apply` (the three plays, without the pre-apply snapshot). One round: a
first provisioning installs packages, so it cannot be repeated on the same
containers.

  --keep   leave the containers in Incus (default: delete them at the end)
*/
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { parse } from "yaml";
import { topComment } from "../lib/core/cli.ts";
import {
  ansibleOnPath,
  cleanupInfra,
  freeSubnets,
  make,
  makeWorkdir,
  removeWorkdir,
  timed,
  totalChanged,
} from "./infra.ts";

const { values } = parseArgs({
  options: { keep: { type: "boolean" }, help: { type: "boolean", short: "h" } },
});
if (values.help) {
  process.stdout.write(`${topComment(import.meta.url)}\n`);
  process.exit(0);
}
ansibleOnPath();

const tag = Math.random().toString(36).slice(2, 7);
const dom = `bp${tag}`;
const dir = makeWorkdir("anklume-bench-provision");
let infraId = "";
const rows: [string, number, number][] = [];

async function step(label: string, args: string[]): Promise<void> {
  const r = await timed(() => make(dir, [...args, "NAT=false", "SKIP_SNAPSHOT=1"]));
  if (r.value.code !== 0) throw new Error(`${label} failed:\n${r.value.out.slice(-3000)}`);
  rows.push([label, r.s, totalChanged(r.value.out)]);
  process.stderr.write(`${label}: ${r.s.toFixed(1)} s\n`);
}

try {
  const [sid] = await freeSubnets("10.236", 1);
  writeFileSync(
    join(dir, "infra.yml"),
    `project_name: bench-provision-${tag}
global:
  base_subnet: "10.236"
  default_os_image: anklume-debian12
  package_cache: true
domains:
  ${dom}:
    subnet_id: ${sid}
    ephemeral: true
    machines:
${[1, 2, 3].map((i) => `      ${dom}-${i}: {roles: [base_system]}`).join("\n")}
`,
  );
  const sync = await make(dir, ["sync"]);
  if (sync.code !== 0) throw new Error(`make sync failed:\n${sync.out}`);
  const gv = parse(readFileSync(join(dir, "group_vars", `${dom}.yml`), "utf8"));
  infraId = `${String(gv.incus_project).slice(0, -dom.length)}bench-provision-${tag}`;

  await step("apply-infra, first (3 containers)", ["apply-infra"]);
  await step("apply-provision, first (base_system)", ["apply-provision"]);
  await step("apply-infra, no-op", ["apply-infra"]);
  await step("apply-provision, no-op", ["apply-provision"]);
  // Play 3 has not run yet: its first run writes the ruleset. Not timed.
  const warm = await make(dir, ["apply", "NAT=false", "SKIP_SNAPSHOT=1"]);
  if (warm.code !== 0) throw new Error(`make apply failed:\n${warm.out.slice(-3000)}`);
  await step("apply (3 plays), no-op", ["apply"]);

  const w = Math.max(...rows.map((r) => r[0].length));
  console.log(`\nProvisioning 3 Debian containers with base_system (apt through the host cache)`);
  console.log(`${"step".padEnd(w)}  seconds  changed`);
  for (const [label, s, changed] of rows) {
    console.log(`${label.padEnd(w)}  ${s.toFixed(1).padStart(7)}  ${String(changed).padStart(7)}`);
  }
  const get = (l: string) => rows.find((r) => r[0].startsWith(l))?.[1] ?? Number.NaN;
  console.log(
    `\nratios: first provisioning / first infra = ${(get("apply-provision, first") / get("apply-infra, first")).toFixed(1)}x; ` +
      `no-op provisioning / no-op infra = ${(get("apply-provision, no-op") / get("apply-infra, no-op")).toFixed(1)}x`,
  );
} finally {
  if (!values.keep && infraId) await cleanupInfra(infraId);
  removeWorkdir(dir);
}
