#!/usr/bin/env bun
// Usage: bun scripts/smoke.ts [options]
//
// Try the whole toolchain on this host (SPEC-operations section 18), with
// each step able to fail (decision 12):
//   1. make sync-dry    the generator reads the real infra.yml
//   2. make check       check-mode apply of the generated tree (needs make sync)
//   3. make lint        every validator
//   4. make snap-list   the snapshot tooling answers
//   5. incus list --all-projects --format json answers a JSON list
// Each step prints a header and PASS or FAIL (with the end of its output);
// every selected step runs even after a failure; a summary line closes the
// run. `make smoke [STEPS=]` runs it.
//
// Options:
//   --steps LIST      the steps to run, e.g. 1,3-5 (default: all five)
//   --root DIR        the project (where make runs; default: the current directory)
//   --infra PATH      the infra.yml (or infra/) for steps 1 and 2 (default:
//                     the Makefile's choice, infra/ or infra.yml)
//   -v, --verbose     print every step's whole output
//   -h, --help        show this help
//
// Exit: 0 every step passed, 1 any failed, 2 usage error.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import { $ } from "zx";
import { paint, parseCli, runMain, say, topComment, UsageError } from "../lib/core/cli.ts";
import { incusRaw } from "../lib/incus/client.ts";
import {
  parseSteps,
  type SmokeStep,
  type StepResult,
  smokeSummary,
  stepHeader,
  tail,
} from "../lib/quality/smoke.ts";

const USAGE = topComment(import.meta.url);

/** Run a make target in `root`; the exit code decides. */
async function makeStep(
  root: string,
  target: string,
  infra: string | undefined,
): Promise<{ ok: boolean; out: string; code: number }> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // Not the outer make's flags (`make -n smoke` must not turn the steps into dry runs of make).
  delete env.MAKEFLAGS;
  delete env.MFLAGS;
  delete env.MAKELEVEL;
  const vars = infra !== undefined ? [`INFRA_SRC=${infra}`] : [];
  const p = await $({
    cwd: root,
    env,
    quiet: true,
    nothrow: true,
    stdio: ["ignore", "pipe", "pipe"],
  })`make --no-print-directory ${target} ${vars}`.timeout("1800s");
  const code = p.exitCode ?? 1;
  return { ok: code === 0, out: `${p.stdout}${p.stderr}`, code };
}

/** Step 5: Incus answers `list --all-projects --format json` with a JSON list. */
async function incusStep(): Promise<{ ok: boolean; detail: string; out: string }> {
  const r = await incusRaw(["list", "--all-projects", "--format", "json"], { timeout: "60s" });
  if (r.exitCode !== 0) {
    return {
      ok: false,
      detail: `incus list failed (exit ${r.exitCode}); is the daemon running? (make dev-incus starts it)`,
      out: r.stderr,
    };
  }
  try {
    const list = JSON.parse(r.stdout);
    if (!Array.isArray(list)) throw new Error("not a list");
    return { ok: true, detail: `Incus answers: ${list.length} instance(s)`, out: "" };
  } catch (e) {
    return {
      ok: false,
      detail: `incus list did not answer a JSON list (${(e as Error).message})`,
      out: r.stdout,
    };
  }
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(argv, {
    help: { type: "boolean", short: "h" },
    steps: { type: "string" },
    root: { type: "string" },
    infra: { type: "string" },
    verbose: { type: "boolean", short: "v" },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  let steps: SmokeStep[];
  try {
    steps = parseSteps(values.steps);
  } catch (e) {
    throw new UsageError(`--steps: ${(e as Error).message}`);
  }
  const root = resolve(values.root ?? ".");
  if (steps.some((s) => s.target !== null) && !existsSync(join(root, "Makefile"))) {
    say(
      `${paint("red", "error:")} Cannot run the smoke steps in "${root}": no Makefile there; pass --root DIR`,
    );
    return 1;
  }
  const infra = values.infra !== undefined ? resolve(values.infra) : undefined;
  const results: StepResult[] = [];
  for (const step of steps) {
    say(stepHeader(step));
    let ok: boolean;
    let detail: string;
    let out: string;
    if (step.target === null) {
      ({ ok, detail, out } = await incusStep());
    } else {
      const r = await makeStep(root, step.target, step.n <= 2 ? infra : undefined);
      ok = r.ok;
      out = r.out;
      detail = ok ? step.why : `make ${step.target} exited ${r.code}`;
    }
    if (values.verbose || !ok) {
      const shown = values.verbose ? out.trimEnd().replace(/^/gm, "    ") : tail(out);
      if (shown.trim() !== "") say(shown);
    }
    say(ok ? `${paint("green", "PASS:")} ${detail}` : `${paint("red", "FAIL:")} ${detail}`);
    results.push({ step, ok, detail });
  }
  const { line, ok } = smokeSummary(results);
  say(ok ? paint("green", line) : paint("red", line));
  return ok ? 0 : 1;
}

if (import.meta.main) await runMain(main, USAGE);
