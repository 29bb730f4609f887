#!/usr/bin/env bun
// Usage: bun scripts/mutation.ts [options]
//
// Mutation testing of the pure core with Stryker (command runner over
// `bun test`): one module at a time, each run with only the tests beside the
// module, concurrency 1, property tests cut to FC_NUM_RUNS runs. Prints the
// score per module: (killed + timeout) / (killed + timeout + survived + no
// coverage). Incremental: Stryker's incremental file per module is kept in
// reports/mutation/ (not committed); when the module's tests change, the
// module's mutants are all run again (Stryker's command runner cannot tell
// which test changed). `make mutation` runs it; figures: docs/development.md.
//
// Options:
//   --modules LIST   comma-separated module names (default: all), e.g. cidr,naming
//   --runs N         fast-check runs per property during the run (default 20)
//   --report-only    print the scores from the last reports, run nothing
//   --force          ignore the incremental file: run every mutant
//   --list           print the module names, their sources and tests
//   -h, --help       show this help
//
// Stryker 10 needs Node >= 22: it runs under Bun here.
// Exit: 0 scores printed, 1 a Stryker run failed or a report is missing, 2 usage error.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { $ } from "zx";
import { paint, parseCli, runMain, say, topComment, UsageError } from "../lib/core/cli.ts";
import {
  formatScores,
  type MutationModule,
  type MutationScore,
  scoreOf,
  selectModules,
  strykerConfig,
} from "../lib/quality/mutation.ts";

const USAGE = topComment(import.meta.url);
const DIR = "reports/mutation";
const STRYKER = "node_modules/@stryker-mutator/core/bin/stryker.js";

/** A hash of the module's tests: when it changes, every mutant runs again. */
function testsHash(m: MutationModule): string {
  const h = createHash("sha256");
  for (const t of m.tests) h.update(readFileSync(t));
  return h.digest("hex");
}

function readScore(m: MutationModule): MutationScore | undefined {
  const path = `${DIR}/${m.name}.json`;
  if (!existsSync(path)) return undefined;
  return scoreOf(JSON.parse(readFileSync(path, "utf8")), m.file);
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(argv, {
    help: { type: "boolean", short: "h" },
    modules: { type: "string" },
    runs: { type: "string" },
    "report-only": { type: "boolean" },
    force: { type: "boolean" },
    list: { type: "boolean" },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const runs = values.runs ?? "20";
  if (!/^[1-9]\d*$/.test(runs))
    throw new UsageError(`--runs needs a positive integer, not "${runs}"`);
  let modules: MutationModule[];
  try {
    modules = selectModules(values.modules);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values.list) {
    for (const m of modules) process.stdout.write(`${m.name}\t${m.file}\t${m.tests.join(" ")}\n`);
    return 0;
  }
  const rows: { name: string; score: MutationScore; minutes?: number }[] = [];
  let failed = false;
  for (const m of modules) {
    let minutes: number | undefined;
    if (!values["report-only"]) {
      if (!existsSync(STRYKER)) {
        say(`${paint("red", "error:")} Cannot run Stryker: ${STRYKER} is missing; run bun install`);
        return 1;
      }
      mkdirSync(DIR, { recursive: true });
      const config = `${DIR}/${m.name}.config.json`;
      const tempDir = join(tmpdir(), `anklume-stryker-${process.pid}`);
      writeFileSync(config, `${JSON.stringify(strykerConfig(m, DIR, tempDir), null, 2)}\n`);
      const hashFile = `${DIR}/${m.name}.tests.sha256`;
      const hash = testsHash(m);
      const stale = !existsSync(hashFile) || readFileSync(hashFile, "utf8").trim() !== hash;
      const force = values.force || stale ? ["--force"] : [];
      say(
        `mutation: ${m.name} (${m.file}; tests: ${m.tests.join(" ")})${force.length ? ", every mutant" : ""}`,
      );
      const start = Date.now();
      const r = await $({
        env: { ...process.env, FC_NUM_RUNS: runs },
        stdio: ["ignore", "inherit", "inherit"],
      })`bun ${STRYKER} run ${config} ${force}`.nothrow();
      minutes = (Date.now() - start) / 60000;
      if (r.exitCode !== 0) {
        say(`${paint("red", "error:")} Stryker failed on ${m.name} (exit ${r.exitCode})`);
        failed = true;
        continue;
      }
      writeFileSync(hashFile, `${hash}\n`);
    }
    const score = readScore(m);
    if (!score) {
      say(
        `${paint("red", "error:")} No report for ${m.name} in ${DIR}: run without --report-only first`,
      );
      failed = true;
      continue;
    }
    rows.push({ name: m.name, score, minutes });
  }
  if (rows.length > 0) process.stdout.write(formatScores(rows));
  return failed ? 1 : 0;
}

if (import.meta.main) await runMain(main, USAGE);
