/**
 * The one module that runs `incus`. Reads are always `--format json`, parsed
 * through a valibot schema; writes go through `incusRun`. Every call can be
 * counted (ANKLUME_INCUS_LOG, used by benchmarks) and the binary overridden
 * (ANKLUME_INCUS, default `incus`).
 */
import { appendFileSync } from "node:fs";
import process from "node:process";
import * as v from "valibot";
import { $ } from "zx";

/** The result of one incus call. */
export interface IncusResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** An incus call that failed; its message holds the command and incus's stderr. */
export class IncusError extends Error {
  constructor(
    readonly args: string[],
    readonly result: IncusResult,
  ) {
    super(`incus ${args.join(" ")} failed (exit ${result.exitCode}): ${result.stderr.trim()}`);
  }
}

function logCall(args: string[]): void {
  const log = process.env.ANKLUME_INCUS_LOG;
  if (log) appendFileSync(log, `${JSON.stringify(args)}\n`);
}

/** Run incus with arguments; never throws for a non-zero exit (check `exitCode`). */
export async function incusRaw(
  args: string[],
  opts: { input?: string; timeout?: string } = {},
): Promise<IncusResult> {
  const bin = process.env.ANKLUME_INCUS ?? "incus";
  // Without input, stdin is /dev/null: `incus ... create` reads YAML from a
  // non-terminal stdin and would wait forever on an inherited open pipe.
  const stdio: ["pipe" | "ignore", "pipe", "pipe"] = [
    opts.input === undefined ? "ignore" : "pipe",
    "pipe",
    "pipe",
  ];
  for (let attempt = 1; ; attempt++) {
    logCall(args);
    let p = $({ quiet: true, nothrow: true, input: opts.input, stdio })`${bin} ${args}`;
    if (opts.timeout) p = p.timeout(opts.timeout as `${number}s`);
    const out = await p;
    const r = { exitCode: out.exitCode ?? 1, stdout: out.stdout, stderr: out.stderr };
    if (r.exitCode === 0 || attempt >= VETH_RACE_TRIES || !VETH_RACE.test(r.stderr)) return r;
    await new Promise((res) => setTimeout(res, 200 * attempt));
  }
}

/**
 * Incus's own race: to change or delete a bridge it reads every link of the
 * host to find the bridge's ports, and fails when a veth of some other
 * instance disappears in between ("Failed to delete bridge children
 * interfaces: ... link show vethXXXX ... does not exist"). Nothing was
 * changed; the same call succeeds once the other instance is gone, so it is
 * tried again, a bounded number of times.
 */
const VETH_RACE = /Failed to run: ip -d -j link show veth[0-9a-f]+: exit status 1/;
const VETH_RACE_TRIES = 4;

/** Run incus; throw an IncusError when it fails. */
export async function incusRun(args: string[], opts: { input?: string; timeout?: string } = {}) {
  const r = await incusRaw(args, opts);
  if (r.exitCode !== 0) throw new IncusError(args, r);
  return r;
}

/** Run a read-only incus command with `--format json` and parse it through a schema. */
export async function incusJson<S extends v.GenericSchema>(
  args: string[],
  schema: S,
): Promise<v.InferOutput<S>> {
  const full = [...args, "--format", "json"];
  const r = await incusRun(full);
  let data: unknown;
  try {
    data = JSON.parse(r.stdout);
  } catch {
    throw new Error(`incus ${full.join(" ")} did not print JSON: ${r.stdout.slice(0, 200)}`);
  }
  const parsed = v.safeParse(schema, data);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const where = issue.path?.map((p) => String(p.key)).join(".") ?? "(root)";
    throw new Error(`incus ${full.join(" ")}: unexpected JSON at ${where}: ${issue.message}`);
  }
  return parsed.output;
}

/** True when the incus daemon answers. */
export async function incusAvailable(): Promise<boolean> {
  try {
    const r = await incusRaw(["query", "/1.0"], { timeout: "10s" });
    return r.exitCode === 0;
  } catch {
    return false;
  }
}
