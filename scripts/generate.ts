#!/usr/bin/env bun
/**
 * Usage: generate.ts [options] <infra_file>
 *
 * Turn infra.yml (or an infra/ directory) into the Ansible tree.
 *
 *   <infra_file>          infra.yml, or an infra/ directory (base.yml, domains/*.yml,
 *                         policies.yml)
 *   --dry-run             validate and show what would change; write and delete nothing
 *   --clean-orphans       delete generated files that infra.yml no longer describes
 *                         (asks first; without a terminal it needs --yes; protected
 *                         files are never deleted)
 *   -y, --yes             do not ask before deleting orphans
 *   --json                print a JSON summary on stdout (written, unchanged, orphans,
 *                         errors, warnings)
 *   --base-dir DIR        root of the generated tree (default: .)
 *   -h, --help            show this help
 *
 * Writes inventory/<domain>.yml, group_vars/all.yml, group_vars/<domain>.yml and
 * host_vars/<machine>.yml. Only the block between `# === MANAGED BY infra.yml ===`
 * and `# === END MANAGED ===` is generated; everything else in a file is yours
 * and is kept byte for byte. A file is rewritten only when its content changes.
 * Every changed file is first written to a temp file; they are renamed into place
 * only once all are written and none changed since it was read. One sync at a
 * time writes a tree (a `.anklume-sync.lock` file in DIR; another sync waits up
 * to ANKLUME_LOCK_TIMEOUT seconds, default 30). Input files are read only when
 * they are regular files of at most 16 MiB, in UTF-8.
 *
 * Environment: ANKLUME_SKIP_HOST_SUBNET_CHECK=1 skips the host subnet check;
 * ANKLUME_CONTEXT_DIR (default /etc/anklume) holds the nesting context;
 * ANKLUME_PROC_DIR (default /proc) and ANKLUME_INCUS (default incus) are the
 * host probes.
 *
 * Exit status: 0 success (warnings and orphans included), 1 invalid input or a
 * refused confirmation (nothing is written), 2 usage error.
 */
import { unlinkSync } from "node:fs";
import process from "node:process";
import { paint, parseCli, runMain, topComment, UsageError, writeFd } from "../lib/core/cli.ts";
import { errorCount, formatIssue, type Issue } from "../lib/core/issues.ts";
import type { FileOrphan } from "../lib/sync/orphans.ts";
import { sync } from "../lib/sync/sync.ts";

const USAGE =
  "Usage: generate.ts [--dry-run] [--clean-orphans] [--yes] [--json] [--base-dir DIR] <infra_file>";

/** The JSON summary printed by --json. */
interface Summary {
  ok: boolean;
  input: string;
  mode?: "file" | "directory";
  dry_run: boolean;
  written: string[];
  unchanged: string[];
  orphans: { path: string; protected: boolean; deleted: boolean; reason?: string }[];
  errors: Issue[];
  warnings: Issue[];
  info: string[];
}

async function ask(question: string): Promise<string> {
  const { createInterface } = await import("node:readline");
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return await new Promise<string>((resolve) => {
      rl.question(question, resolve);
      rl.on("close", () => resolve(""));
    });
  } finally {
    rl.close();
  }
}

/** Where output goes; tests pass their own to call main() in-process. */
export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}
const processIo: Io = {
  stdout: (t) => writeFd(1, t),
  stderr: (t) => writeFd(2, t),
};

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const { values, positionals } = parseCli(argv, {
    "dry-run": { type: "boolean" },
    "clean-orphans": { type: "boolean" },
    yes: { type: "boolean", short: "y" },
    json: { type: "boolean" },
    "base-dir": { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    io.stdout(`${topComment(import.meta.url)}\n`);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new UsageError(
      positionals.length === 0 ? "missing <infra_file>" : `unexpected argument "${positionals[1]}"`,
    );
  }
  const input = positionals[0] as string;
  if (input.trim() === "")
    throw new UsageError("<infra_file> is empty; pass infra.yml or an infra/ directory");
  const dryRun = Boolean(values["dry-run"]);
  const json = Boolean(values.json);
  const baseDir = values["base-dir"] ?? ".";
  // ANKLUME_TIMING=1 prints how long each step took (stderr).
  let mark = performance.now();
  const onStep = (name: string) => {
    const now = performance.now();
    io.stderr(`timing: ${name} ${(now - mark).toFixed(1)} ms\n`);
    mark = now;
  };
  let r: Awaited<ReturnType<typeof sync>>;
  try {
    r = await sync(input, {
      dryRun,
      baseDir,
      onStep: process.env.ANKLUME_TIMING === "1" ? onStep : undefined,
    });
  } catch (e) {
    // Unexpected: still one clear line, and --json still prints its summary.
    const message = (e as Error)?.message ?? String(e);
    if (json) {
      const summary = {
        ok: false,
        input,
        dry_run: dryRun,
        written: [],
        unchanged: [],
        orphans: [],
      };
      const errors = [{ severity: "error", path: [], message }];
      io.stdout(`${JSON.stringify({ ...summary, errors, warnings: [], info: [] }, null, 2)}\n`);
    }
    throw e;
  }

  // stdout lines are collected and written at once (1,501 "Written:" lines cost 15 ms one by one).
  let pending = "";
  const flush = () => {
    if (pending !== "") io.stdout(pending);
    pending = "";
  };
  const out = (line: string) => {
    if (!json) pending += `${line}\n`;
  };
  const summary: Summary = {
    ok: false,
    input,
    dry_run: dryRun,
    written: r.written,
    unchanged: r.unchanged,
    orphans: [],
    errors: r.errors,
    warnings: r.warnings,
    info: r.info,
  };
  if (r.mode) summary.mode = r.mode; // last, where the JSON has always had it
  const finish = (code: number) => {
    flush();
    summary.ok = code === 0;
    if (json) io.stdout(`${JSON.stringify(summary, null, 2)}\n`);
    return code;
  };
  const fail = (header: string) => {
    io.stderr(`${paint("red", header)}\n`);
    for (const e of r.errors) io.stderr(`  - ${formatIssue(e)}\n`);
    return finish(1);
  };

  if (r.failed === "load") return fail(`Cannot load ${input}:`);
  for (const line of r.info) io.stderr(`INFO: ${line}\n`);
  for (const w of r.warnings) io.stderr(`${paint("yellow", "WARNING:")} ${formatIssue(w)}\n`);
  if (r.failed === "validation") {
    const files = r.mode === "file" ? input : `${input}/`;
    return fail(
      `Validation failed: ${errorCount(r.errors)} error(s) in ${files} — nothing was written.`,
    );
  }
  if (r.domains.length === 0) {
    out("No domains defined. Nothing to generate.");
    return finish(0);
  }
  if (r.failed === "merge") {
    return fail(`Cannot update ${r.errors.length} generated file(s) — nothing was written.`);
  }
  for (const t of r.removedTemps) {
    io.stderr(`INFO: removed ${t}, a temporary file left by an interrupted sync\n`);
  }
  if (r.failed === "write") {
    for (const path of r.written) out(`  Written: ${path}`);
    return fail(
      r.written.length === 0
        ? "Cannot write the generated files — nothing was written."
        : `Cannot write every generated file — only the ${r.written.length} file(s) listed as Written were written; fix the cause and run it again.`,
    );
  }
  out(`${dryRun ? "[DRY-RUN] " : ""}Generating files for ${r.domains.length} domain(s)...`);
  for (const path of r.written) {
    out(dryRun ? `  [DRY-RUN] Would write: ${path}` : `  Written: ${path}`);
  }
  if (r.unchanged.length > 0) out(`  Unchanged: ${r.unchanged.length} file(s)`);

  const code = await reportOrphans(r.orphans, summary, out, io, {
    clean: Boolean(values["clean-orphans"]) && !dryRun,
    yes: Boolean(values.yes),
    beforeAsk: flush,
  });
  if (code !== 0) return finish(code);
  if (!dryRun) {
    out("");
    out("Done. Run `make lint` to validate.");
  }
  return finish(0);
}

async function reportOrphans(
  orphans: FileOrphan[],
  summary: Summary,
  out: (line: string) => void,
  io: Io,
  opts: { clean: boolean; yes: boolean; beforeAsk: () => void },
): Promise<number> {
  for (const o of orphans) {
    summary.orphans.push({
      path: o.path,
      protected: o.protected,
      deleted: false,
      reason: o.reason,
    });
  }
  if (orphans.length === 0) return 0;
  out("");
  out(`Orphan files (${orphans.length}):`);
  for (const o of orphans) {
    out(
      o.protected
        ? `  PROTECTED (${o.reason ?? "ephemeral=false"}): ${o.path} — manual removal required`
        : `  ORPHAN: ${o.path}`,
    );
  }
  if (!opts.clean) return 0;
  const deletable = orphans.filter((o) => !o.protected);
  if (deletable.length === 0) return 0;
  if (!opts.yes && !process.stdin.isTTY) {
    // No one to ask: deleting without a question would lose what the user kept there.
    opts.beforeAsk();
    io.stderr(
      `Refusing to delete ${deletable.length} orphan file(s) without a confirmation: standard input is not a terminal; add --yes to delete them.\n`,
    );
    return 1;
  }
  if (!opts.yes) {
    opts.beforeAsk();
    const answer = (await ask(`Delete ${deletable.length} orphan file(s)? [y/N] `))
      .trim()
      .toLowerCase();
    if (answer !== "y" && answer !== "yes") {
      io.stderr("Aborted: no orphan file was deleted.\n");
      return 1;
    }
  }
  for (const [i, o] of orphans.entries()) {
    if (o.protected) {
      out(`  Skipped (protected): ${o.path}`);
      continue;
    }
    try {
      unlinkSync(o.path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      io.stderr(`error: Cannot delete ${o.path}: ${code}; check the permissions of its folder\n`);
      return 1;
    }
    (summary.orphans[i] as { deleted: boolean }).deleted = true;
    out(`  Deleted: ${o.path}`);
  }
  return 0;
}

if (import.meta.main) await runMain(main, USAGE);
