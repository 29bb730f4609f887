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
 *                         (asks first on a terminal; protected files are never deleted)
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
 *
 * Environment: ANKLUME_SKIP_HOST_SUBNET_CHECK=1 skips the host subnet check;
 * ANKLUME_CONTEXT_DIR (default /etc/anklume) holds the nesting context;
 * ANKLUME_PROC_DIR (default /proc) and ANKLUME_INCUS (default incus) are the
 * host probes.
 *
 * Exit status: 0 success (warnings and orphans included), 1 invalid input or a
 * refused confirmation (nothing is written), 2 usage error.
 */
import { readdirSync, readFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { paint, parseCli, runMain, topComment, UsageError, writeFd } from "../lib/core/cli.ts";
import { formatIssue, type Issue } from "../lib/core/issues.ts";
// Light modules only at the top: a sync with nothing to do never loads the rest.
import { type LoadedInfra, readInputFiles } from "../lib/sync/infra-load.ts";
import type { Orphan } from "../lib/sync/orphans.ts";
import type { ResourcePolicyInput } from "../lib/sync/resources.ts";
import type { Infra } from "../lib/sync/schema.ts";
import { freshStamp, writeStamp } from "../lib/sync/sync-stamp.ts";

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

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === "object" && x !== null && !Array.isArray(x);

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
  // ANKLUME_TIMING=1 prints how long each phase took (stderr).
  const timing = process.env.ANKLUME_TIMING === "1";
  let mark = performance.now();
  const phase = (name: string) => {
    if (!timing) return;
    const now = performance.now();
    io.stderr(`timing: ${name} ${(now - mark).toFixed(1)} ms\n`);
    mark = now;
  };
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
  const dryRun = Boolean(values["dry-run"]);
  const json = Boolean(values.json);
  const baseDir = values["base-dir"] ?? ".";
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
    written: [],
    unchanged: [],
    orphans: [],
    errors: [],
    warnings: [],
    info: [],
  };
  const finish = (code: number) => {
    flush();
    summary.ok = code === 0;
    if (json) io.stdout(`${JSON.stringify(summary, null, 2)}\n`);
    return code;
  };
  const fail = (errors: Issue[], header: string) => {
    summary.errors.push(...errors);
    io.stderr(`${paint("red", header)}\n`);
    for (const e of errors) io.stderr(`  - ${formatIssue(e)}\n`);
    return finish(1);
  };

  // 0. Nothing changed since the last sync? (lib/sync/sync-stamp.ts)
  const inputFiles = readInputFiles(input);
  const stampInputs = {
    files: inputFiles,
    context: JSON.stringify([
      [process.env.ANKLUME_CONTEXT_DIR ?? "/etc/anklume", ...contextTexts()],
      process.env.ANKLUME_SKIP_HOST_SUBNET_CHECK === "1" ? "skip" : routesText(),
    ]),
  };
  // Resource allocation asks the live host: never trust a stamp for it.
  const cacheable = !inputFiles.some(([, text]) => text.includes("resource_policy"));
  const fresh = cacheable ? freshStamp(baseDir, stampInputs) : undefined;
  if (fresh) {
    summary.mode =
      inputFiles.length === 1 && !input.endsWith("/") && !inputFiles[0]?.[0].endsWith("base.yml")
        ? "file"
        : "directory";
    summary.warnings.push(...fresh.warnings);
    summary.info.push(...fresh.info);
    for (const line of fresh.info) io.stderr(`INFO: ${line}\n`);
    for (const w of fresh.warnings) io.stderr(`${paint("yellow", "WARNING:")} ${formatIssue(w)}\n`);
    out(`${dryRun ? "[DRY-RUN] " : ""}Generating files for ${fresh.domains.length} domain(s)...`);
    summary.unchanged.push(...fresh.files.map((f) => f.path));
    out(`  Unchanged: ${fresh.files.length} file(s)`);
    phase("stamp (nothing changed)");
    return finishWithOrphans(new Set(fresh.domains), new Set(fresh.machines));
  }

  // The full pipeline: load the heavy modules only now.
  const [
    { dumpYaml },
    { enrich },
    { readIfExists, writeIfChanged },
    { hostNetworks, hostResources, nestingPrefix, readNestingContext },
    { LoadError, loadInfra },
    { err },
    { mergeManaged },
    { bridgeName, renderTree },
    { allocate },
    { shapeOk },
    { validateInfra },
  ] = await Promise.all([
    import("../lib/sync/emit.ts"),
    import("../lib/sync/enrich.ts"),
    import("../lib/core/fswrite.ts"),
    import("../lib/sync/host.ts"),
    import("../lib/sync/infra-load.ts"),
    import("../lib/core/issues.ts"),
    import("../lib/sync/managed.ts"),
    import("../lib/sync/render.ts"),
    import("../lib/sync/resources.ts"),
    import("../lib/sync/shape-check.ts"),
    import("../lib/sync/validate.ts"),
  ]);
  phase("import");

  // 1. Load.
  let loaded: LoadedInfra;
  try {
    loaded = await loadInfra(input, new Map(inputFiles));
  } catch (e) {
    if (e instanceof LoadError) return fail(e.issues, `Cannot load ${input}:`);
    throw e;
  }
  summary.mode = loaded.mode;
  const data = loaded.data;
  phase("load");

  // 2. Validate the shape, enrich, validate across entities, allocate resources.
  const context = readNestingContext();
  const global = isObj(data) && isObj(data.global) ? data.global : {};
  const prefix = global.nesting_prefix === false ? "" : nestingPrefix(context.absoluteLevel);
  const skipHostCheck = process.env.ANKLUME_SKIP_HOST_SUBNET_CHECK === "1";
  // A well-shaped file is answered by the compiled check; valibot explains the others.
  const shapeIssues = shapeOk(data) ? [] : (await import("../lib/sync/schema.ts")).checkShape(data);
  const issues: Issue[] = [...loaded.warnings, ...shapeIssues];
  const wellShaped = !issues.some((i) => i.severity === "error");
  phase("schema");
  let infra: Infra | undefined;
  let autoFirewall = false;
  if (wellShaped) {
    const e = enrich(data as Infra);
    infra = e.infra;
    autoFirewall = e.autoFirewall;
    summary.info.push(...e.info);
  }
  const bridges = new Set<string>();
  if (isObj(data) && isObj(data.domains)) {
    for (const [d, dom] of Object.entries(data.domains)) {
      if (isObj(dom) && typeof dom.subnet_id === "number")
        bridges.add(bridgeName(prefix, d, dom.subnet_id));
    }
  }
  issues.push(
    ...validateInfra(infra ?? data, {
      context,
      prefix,
      hostNetworks: skipHostCheck ? null : hostNetworks(),
      ownBridges: bridges,
    }),
  );
  phase("enrich+validate");
  if (infra && !issues.some((i) => i.severity === "error") && infra.global?.resource_policy) {
    const rp = infra.global.resource_policy;
    const machines = Object.values(infra.domains ?? {}).flatMap((d) =>
      Object.entries(d.machines ?? {}).map(([name, m]) => {
        m.config ??= {};
        return { name, config: m.config as Record<string, unknown>, weight: m.weight ?? 1 };
      }),
    );
    const r = allocate(
      rp === true ? {} : (rp as ResourcePolicyInput),
      await hostResources(),
      machines,
    );
    for (const w of r.warnings) {
      issues.push({ ...err(["global", "resource_policy"], w), severity: "warning" });
    }
    if (r.error) {
      issues.push(
        err(
          ["global", "resource_policy"],
          r.error,
          "lower the explicit limits, or set resource_policy.overcommit: true to allow it",
        ),
      );
    }
  }
  if (autoFirewall) {
    for (const i of issues) {
      if (i.path[0] === "domains" && i.path[3] === "sys-firewall") {
        i.locateAt = ["global", "firewall_mode"];
        i.message += " (sys-firewall is auto-created by firewall_mode: vm)";
      }
    }
  }
  if (issues.length > 0) await loaded.locate(issues);
  const errors = issues.filter((i) => i.severity === "error");
  const warnings = issues.filter((i) => i.severity === "warning");
  summary.warnings.push(...warnings);
  for (const line of summary.info) io.stderr(`INFO: ${line}\n`);
  for (const w of warnings) io.stderr(`${paint("yellow", "WARNING:")} ${formatIssue(w)}\n`);
  if (errors.length > 0 || !infra) {
    const files = loaded.mode === "file" ? input : `${input}/`;
    return fail(
      errors,
      `Validation failed: ${errors.length} error(s) in ${files} — nothing was written.`,
    );
  }

  // 3. Nothing to generate?
  const domains = infra.domains ?? {};
  if (Object.keys(domains).length === 0) {
    out("No domains defined. Nothing to generate.");
    return finish(0);
  }

  // 4. Build every file's new content before writing any (a bad file writes nothing).
  const specs = renderTree(infra, prefix);
  // Paths as join(baseDir, rel) prints them, built by concatenation (1,501 joins cost ms).
  const outDir = join(baseDir, "x").slice(0, -1);
  // One listing per folder instead of a failed read per missing file.
  const present = new Set<string>();
  for (const sub of ["inventory", "group_vars", "host_vars"]) {
    try {
      for (const n of readdirSync(`${outDir}${sub}`)) present.add(`${outDir}${sub}/${n}`);
    } catch {
      // A missing folder: every file in it is new.
    }
  }
  phase("render");
  const planned: { path: string; content: string; existing: string | null }[] = [];
  const mergeErrors: Issue[] = [];
  for (const spec of specs) {
    const path = `${outDir}${spec.rel}`;
    let existing: string | null = null;
    try {
      if (present.has(path)) existing = readIfExists(path);
    } catch (e) {
      mergeErrors.push({ ...err([], (e as Error).message), file: path });
      continue;
    }
    const merged = mergeManaged(existing, dumpYaml(spec.data));
    if (!merged.ok) {
      mergeErrors.push({ ...err([], merged.error), file: path });
      continue;
    }
    planned.push({ path, content: merged.content, existing });
  }
  phase("emit+merge");
  if (mergeErrors.length > 0) {
    return fail(
      mergeErrors,
      `Cannot update ${mergeErrors.length} generated file(s) — nothing was written.`,
    );
  }
  out(
    `${dryRun ? "[DRY-RUN] " : ""}Generating files for ${Object.keys(domains).length} domain(s)...`,
  );
  const written = new Map<string, { size: number; mtimeMs: number; ino: number }>();
  for (const p of planned) {
    if (p.content === p.existing) {
      summary.unchanged.push(p.path);
      continue;
    }
    if (!dryRun) {
      writeIfChanged(p.path, p.content, {
        existing: p.existing,
        onStat: (st) => written.set(p.path, st),
      });
    }
    summary.written.push(p.path);
    out(dryRun ? `  [DRY-RUN] Would write: ${p.path}` : `  Written: ${p.path}`);
  }
  if (summary.unchanged.length > 0) out(`  Unchanged: ${summary.unchanged.length} file(s)`);
  phase("write");

  // 5. Orphans, and the stamp for the next sync.
  const machines = new Set<string>();
  for (const d of Object.values(domains))
    for (const m of Object.keys(d.machines ?? {})) machines.add(m);
  if (autoFirewall) machines.add("sys-firewall");
  if (!dryRun) {
    writeStamp(baseDir, stampInputs, {
      paths: planned.map((p) => p.path),
      known: written,
      domains: Object.keys(domains),
      machines: [...machines],
      warnings,
      info: summary.info,
    });
  }
  // Orphans can only be files that were there before and are not generated now.
  const generated = new Set(planned.map((p) => p.path));
  const maybeOrphans = [...present].some((p) => p.endsWith(".yml") && !generated.has(p));
  return finishWithOrphans(new Set(Object.keys(domains)), machines, maybeOrphans);

  async function finishWithOrphans(domainSet: Set<string>, machineSet: Set<string>, look = true) {
    const { findOrphans } = await import("../lib/sync/orphans.ts");
    const orphans = look ? findOrphans(baseDir, domainSet, machineSet) : [];
    const code = await reportOrphans(orphans, summary, out, io, {
      clean: Boolean(values["clean-orphans"]) && !dryRun,
      yes: Boolean(values.yes),
      beforeAsk: flush,
    });
    phase("orphans");
    if (code !== 0) return finish(code);
    if (!dryRun) {
      out("");
      out("Done. Run `make lint` to validate.");
    }
    return finish(0);
  }
}

/** The nesting context files' texts (they change the prefix and the privileged policy). */
function contextTexts(): (string | null)[] {
  const dir = process.env.ANKLUME_CONTEXT_DIR ?? "/etc/anklume";
  return ["absolute_level", "vm_nested", "yolo"].map((f) => {
    try {
      return readFileSync(join(dir, f), "utf8");
    } catch {
      return null;
    }
  });
}

/** The routes the host subnet check reads. */
function routesText(): string {
  try {
    return readFileSync(join(process.env.ANKLUME_PROC_DIR ?? "/proc", "net", "route"), "utf8");
  } catch {
    return "";
  }
}

async function reportOrphans(
  orphans: Orphan[],
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
  if (!opts.yes && process.stdin.isTTY) {
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
    unlinkSync(o.path);
    (summary.orphans[i] as { deleted: boolean }).deleted = true;
    out(`  Deleted: ${o.path}`);
  }
  return 0;
}

if (import.meta.main) await runMain(main, USAGE);
