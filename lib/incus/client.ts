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
  logCall(args);
  const bin = process.env.ANKLUME_INCUS ?? "incus";
  // Without input, stdin is /dev/null: `incus ... create` reads YAML from a
  // non-terminal stdin and would wait forever on an inherited open pipe.
  const stdio: ["pipe" | "ignore", "pipe", "pipe"] = [
    opts.input === undefined ? "ignore" : "pipe",
    "pipe",
    "pipe",
  ];
  let p = $({ quiet: true, nothrow: true, input: opts.input, stdio })`${bin} ${args}`;
  if (opts.timeout) p = p.timeout(opts.timeout as `${number}s`);
  const out = await p;
  return { exitCode: out.exitCode ?? 1, stdout: out.stdout, stderr: out.stderr };
}

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
