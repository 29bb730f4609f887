/**
 * `make sync` as one function: infra.yml (or an infra/ directory) in, the
 * Ansible tree (inventory/, group_vars/, host_vars/) out, with the steps
 * docs/architecture.md numbers: stamp, load, shape, enrich, validate, allocate,
 * locate, render, merge, write, stamp, orphans. scripts/generate.ts keeps argv,
 * printing and the orphan prompt.
 *
 * Only light modules are imported at the top: when the stamp says nothing
 * changed, the rest (validator, renderer, emitter…) is never loaded.
 *
 * @example
 * const r = await sync("infra.yml", { dryRun: true });
 * if (r.failed) console.error(r.errors);
 */
import { readdirSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { type StagedWrite, staleTempFile } from "../core/fswrite.ts";
import type { Issue } from "../core/issues.ts";
import { generatorContext, readContextFiles } from "../core/nesting.ts";
import { freshStamp, type StampedFile, stampInputs, writeStamp } from "./_fast/stamp.ts";
import { readRoutes } from "./host.ts";
import { LoadError, type LoadedInfra, loadInfra, readInputFiles } from "./infra-load.ts";
import type { FileOrphan } from "./orphans.ts";
import type { FileSpec } from "./render.ts";
import type { ResourcePolicyInput } from "./resources.ts";
import type { Infra } from "./schema.ts";

/** How to sync. */
export interface SyncOptions {
  /** Validate and compute everything; write no file and no stamp. */
  dryRun?: boolean;
  /** Root of the generated tree (default "."). */
  baseDir?: string;
  /** Called at the end of each step with its name (ANKLUME_TIMING=1 prints them). */
  onStep?: (name: string) => void;
}

/** What a sync did. Paths are `join(baseDir, rel)` as printed. */
export interface SyncResult {
  /** The step that stopped the sync (nothing was written), or undefined. */
  failed?: "load" | "validation" | "merge" | "write";
  /** How the input was read (unknown when it could not be loaded). */
  mode?: "file" | "directory";
  errors: Issue[];
  warnings: Issue[];
  /** INFO lines (what enrichment added). */
  info: string[];
  /** The domains generated; empty when infra.yml defines none (nothing to generate). */
  domains: string[];
  /** Files written (with dryRun: that would be written), in generation order; on a failed write, those renamed into place before it (none, unless a rename failed). */
  written: string[];
  unchanged: string[];
  /** Generated files that infra.yml no longer describes, sorted; none deleted here. */
  orphans: FileOrphan[];
  /** Temp files that interrupted syncs had left in the tree, removed by this one. */
  removedTemps: string[];
  /** True when the stamp answered: nothing changed since the last sync. */
  fromStamp: boolean;
}

const isError = (i: Issue) => i.severity === "error";

/** Run the generator's pipeline on `input`. Throws only on unexpected failures. */
export async function sync(input: string, opts: SyncOptions = {}): Promise<SyncResult> {
  const { dryRun = false, baseDir = ".", onStep = () => {} } = opts;
  const result: SyncResult = {
    errors: [],
    warnings: [],
    info: [],
    domains: [],
    written: [],
    unchanged: [],
    orphans: [],
    removedTemps: [],
    fromStamp: false,
  };

  // 1. Stamp: nothing changed since the last sync? (lib/sync/_fast/stamp.ts)
  let inputFiles: [string, string][];
  try {
    inputFiles = readInputFiles(input);
  } catch (e) {
    if (!(e instanceof LoadError)) throw e;
    result.failed = "load";
    result.errors = e.issues;
    return result;
  }
  const nesting = readContextFiles();
  const routes = process.env.ANKLUME_SKIP_HOST_SUBNET_CHECK === "1" ? null : readRoutes();
  const stampIn = stampInputs(inputFiles, nesting, routes === null ? "skip" : routes);
  // Resource allocation asks the live host: never trust a stamp for it.
  const cacheable = !inputFiles.some(([, text]) => text.includes("resource_policy"));
  const fresh = cacheable ? freshStamp(baseDir, stampIn) : undefined;
  if (fresh) {
    result.fromStamp = true;
    result.mode =
      inputFiles.length === 1 && !input.endsWith("/") && !inputFiles[0]?.[0].endsWith("base.yml")
        ? "file"
        : "directory";
    result.warnings.push(...fresh.warnings);
    result.info.push(...fresh.info);
    result.domains = fresh.domains;
    result.unchanged = fresh.files.map((f) => f.path);
    if (!dryRun) removeStaleTemps(result, listTree(join(baseDir, "x").slice(0, -1)).staleTemps);
    onStep("stamp (nothing changed)");
    result.orphans = await findOrphans(baseDir, fresh.domains, fresh.machines);
    onStep("orphans");
    return result;
  }
  const m = await loadSteps();
  onStep("import");

  // 2. Load.
  let loaded: LoadedInfra;
  try {
    loaded = await loadInfra(input, new Map(inputFiles));
  } catch (e) {
    if (!(e instanceof LoadError)) throw e;
    result.failed = "load";
    result.errors = e.issues;
    return result;
  }
  result.mode = loaded.mode;
  const data = loaded.data;
  onStep("load");

  // 3. Shape (a well-shaped file never loads valibot: lib/sync/shape-check.ts).
  const issues: Issue[] = [...loaded.warnings, ...(await m.shape.checkShape(data))];
  // Keys of other v1 tools (file_portal…): accepted, one info line each (foreign.ts).
  issues.push(...m.foreign.foreignKeyNotes(data));
  onStep("schema");

  // 4. Enrich (only a well-shaped infra).
  let infra: Infra | undefined;
  let autoFirewall = false;
  if (!issues.some(isError)) {
    const e = m.enrich.enrich(data as Infra);
    infra = e.infra;
    autoFirewall = e.autoFirewall;
    result.info.push(...e.info);
  }

  // 5. Cross-entity rules, on the enriched infra or else on the raw data (every error at once).
  const context = generatorContext(nesting);
  // Read off the raw data: the prefix is needed even when the shape is wrong.
  const noPrefix =
    (data as { global?: { nesting_prefix?: unknown } } | null)?.global?.nesting_prefix === false;
  const prefix = noPrefix ? "" : m.naming.nestingPrefix(context.absoluteLevel);
  const hostNetworks = routes === null ? null : m.host.parseRoutes(routes);
  issues.push(...m.validate.validateInfra(infra ?? data, { context, prefix, hostNetworks }));
  onStep("enrich+validate");

  // 6. Allocate resources (resource_policy), on a valid infra only.
  if (infra?.global?.resource_policy && !issues.some(isError)) {
    issues.push(...(await allocateResources(m, infra)));
  }

  // 7. Locate every issue (file, line, column); any error stops here, nothing written.
  if (autoFirewall) {
    for (const i of issues) {
      if (i.path[0] === "domains" && i.path[3] === "sys-firewall") {
        i.locateAt = ["global", "firewall_mode"];
        i.message += " (sys-firewall is auto-created by firewall_mode: vm)";
      }
    }
  }
  // At most 100 errors and 100 warnings are reported, the rest counted (issue 9, D13).
  const reported = m.issues.capIssues(issues);
  if (reported.length > 0) await loaded.locate(reported);
  result.errors = reported.filter(isError);
  result.warnings = reported.filter((i) => i.severity === "warning");
  for (const i of reported) if (i.severity === "info") result.info.push(m.issues.formatIssue(i));
  if (result.errors.length > 0 || !infra) {
    result.failed = "validation";
    return result;
  }
  result.domains = Object.keys(infra.domains ?? {});
  if (result.domains.length === 0) return result;

  // 8. Lock the tree (two syncs of one tree never mix), then render every file, emit and
  // merge it before writing any (a bad file writes nothing).
  let release = () => {};
  if (!dryRun) {
    try {
      release = await m.fswrite.lockTree(baseDir, lockTimeoutMs());
    } catch (e) {
      return failWrite(result, m, baseDir, e);
    }
  }
  try {
    return await writeTree(m, result, {
      baseDir,
      dryRun,
      onStep,
      stampIn,
      infra,
      prefix,
      autoFirewall,
    });
  } finally {
    release();
  }
}

/** ANKLUME_LOCK_TIMEOUT (seconds, default 30): how long a sync waits for another one on the same tree. */
function lockTimeoutMs(): number {
  const s = Number(process.env.ANKLUME_LOCK_TIMEOUT);
  return Number.isFinite(s) && s >= 0 ? s * 1000 : 30_000;
}

function failWrite(result: SyncResult, m: Steps, file: string, e: unknown): SyncResult {
  result.failed = "write";
  result.errors = [{ ...m.issues.err([], (e as Error).message ?? String(e)), file }];
  return result;
}

/** Steps 8-11 (under the tree's lock): render, merge, write, stamp, orphans. */
async function writeTree(
  m: Steps,
  result: SyncResult,
  ctx: {
    baseDir: string;
    dryRun: boolean;
    onStep: (name: string) => void;
    stampIn: ReturnType<typeof stampInputs>;
    infra: Infra;
    prefix: string;
    autoFirewall: boolean;
  },
): Promise<SyncResult> {
  const { baseDir, dryRun, onStep, stampIn, infra, prefix, autoFirewall } = ctx;
  const domains = infra.domains ?? {};
  // Paths as join(baseDir, rel) prints them, built by concatenation (1,501 joins cost ms).
  const outDir = join(baseDir, "x").slice(0, -1);
  const { present, staleTemps } = listTree(outDir);
  if (!dryRun) removeStaleTemps(result, staleTemps);
  const specs = m.render.renderTree(infra, prefix);
  onStep("render");
  const { planned, errors } = mergeFiles(m, specs, outDir, present);
  onStep("emit+merge");
  if (errors.length > 0) {
    result.failed = "merge";
    result.errors = errors;
    return result;
  }

  // 9. Write the files whose content changed: check every folder, write every temp file,
  // check that no file changed since it was read, then rename them all. A failure before
  // the renames writes nothing.
  const stats = new Map<string, Omit<StampedFile, "path">>();
  const changed: Planned[] = [];
  for (const p of planned) {
    if (p.content === p.existing) result.unchanged.push(p.path);
    else changed.push(p);
  }
  const dirs = new Set(
    changed.map((p) => (p.path.includes("/") ? p.path.slice(0, p.path.lastIndexOf("/")) : ".")),
  );
  const problems = m.fswrite.checkWritableDirs(dirs);
  if (problems.length > 0) {
    result.failed = "write";
    result.errors = problems.map(([dir, msg]) => ({ ...m.issues.err([], msg), file: dir }));
    return result;
  }
  if (dryRun) {
    for (const p of changed) result.written.push(p.path);
  } else {
    const staged: StagedWrite[] = [];
    try {
      for (const p of changed) {
        const onStat = (st: Omit<StampedFile, "path">) => stats.set(p.path, st);
        staged.push(m.fswrite.stageWrite(p.path, p.content, p.existing, { onStat }));
      }
    } catch (e) {
      for (const st of staged) m.fswrite.discardWrite(st);
      return failWrite(result, m, changed[staged.length]?.path ?? baseDir, e);
    }
    const edited = staged.filter((st) => !m.fswrite.unchangedSinceRead(st));
    if (edited.length > 0) {
      for (const st of staged) m.fswrite.discardWrite(st);
      result.failed = "write";
      result.errors = edited.map((st) => ({
        ...m.issues.err(
          [],
          "this file changed while anklume was updating it; it was not overwritten (your edit is kept)",
          "run the command again once nothing else writes to the generated files",
        ),
        file: st.path,
      }));
      return result;
    }
    for (const [i, st] of staged.entries()) {
      try {
        m.fswrite.commitWrite(st);
      } catch (e) {
        for (const rest of staged.slice(i + 1)) m.fswrite.discardWrite(rest);
        return failWrite(result, m, st.path, e);
      }
      result.written.push(st.path);
    }
  }
  onStep("write");

  // 10. Stamp for the next sync.
  const machines = new Set<string>();
  for (const d of Object.values(domains)) {
    for (const name of Object.keys(d.machines ?? {})) machines.add(name);
  }
  if (autoFirewall) machines.add("sys-firewall");
  if (!dryRun) {
    writeStamp(baseDir, stampIn, {
      paths: planned.map((p) => p.path),
      known: stats,
      domains: result.domains,
      machines: [...machines],
      warnings: result.warnings,
      info: result.info,
    });
  }

  // 11. Orphans: only files that were there before and are not generated now can be one.
  const generated = new Set(planned.map((p) => p.path));
  if ([...present].some((p) => p.endsWith(".yml") && !generated.has(p))) {
    result.orphans = await findOrphans(baseDir, result.domains, [...machines]);
  }
  onStep("orphans");
  return result;
}

/** The modules of the full pipeline, loaded side by side (a sync the stamp answers never needs them). */
async function loadSteps() {
  const [
    emit,
    enrich,
    fswrite,
    host,
    issues,
    managed,
    naming,
    render,
    resources,
    shape,
    validate,
    foreign,
  ] = await Promise.all([
    import("./emit.ts"),
    import("./enrich.ts"),
    import("../core/fswrite.ts"),
    import("./host.ts"),
    import("../core/issues.ts"),
    import("./managed.ts"),
    import("../core/naming.ts"),
    import("./render.ts"),
    import("./resources.ts"),
    import("./shape-check.ts"),
    import("./validate.ts"),
    import("./foreign.ts"),
  ]);
  return {
    emit,
    enrich,
    fswrite,
    host,
    issues,
    managed,
    naming,
    render,
    resources,
    shape,
    validate,
    foreign,
  };
}
type Steps = Awaited<ReturnType<typeof loadSteps>>;

/** Step 6: share the host's CPU and memory among the machines (fills their `config`). */
async function allocateResources(m: Steps, infra: Infra): Promise<Issue[]> {
  const policy = infra.global?.resource_policy;
  const machines = Object.values(infra.domains ?? {}).flatMap((d) =>
    Object.entries(d.machines ?? {}).map(([name, mach]) => {
      mach.config ??= {};
      return { name, config: mach.config as Record<string, unknown>, weight: mach.weight ?? 1 };
    }),
  );
  const r = m.resources.allocate(
    policy === true ? {} : (policy as ResourcePolicyInput),
    await m.host.hostResources(
      (infra.global?.incus_remote as string | undefined) || process.env.INCUS_REMOTE,
    ),
    machines,
  );
  const at = ["global", "resource_policy"];
  const out: Issue[] = r.warnings.map((w) => ({ ...m.issues.err(at, w), severity: "warning" }));
  if (r.error) {
    const fix = "lower the explicit limits, or set resource_policy.overcommit: true to allow it";
    out.push(m.issues.err(at, r.error, fix));
  }
  return out;
}

/** Remove the temp files of killed syncs (anklume's own name pattern, their process gone). */
function removeStaleTemps(result: SyncResult, staleTemps: string[]): void {
  for (const t of staleTemps) {
    try {
      unlinkSync(t);
      result.removedTemps.push(t);
    } catch {
      // gone already, or not ours to remove: harmless
    }
  }
}

/**
 * The files already in the tree (one listing per folder instead of a failed read per
 * new file), and the temp files that killed syncs left there.
 */
function listTree(outDir: string): { present: Set<string>; staleTemps: string[] } {
  const present = new Set<string>();
  const staleTemps: string[] = [];
  for (const sub of ["inventory", "group_vars", "host_vars"]) {
    try {
      for (const n of readdirSync(`${outDir}${sub}`)) {
        present.add(`${outDir}${sub}/${n}`);
        if (n.endsWith(".tmp") && staleTempFile(n)) staleTemps.push(`${outDir}${sub}/${n}`);
      }
    } catch {
      // A missing folder: every file in it is new.
    }
  }
  return { present, staleTemps };
}

interface Planned {
  path: string;
  content: string;
  existing: string | null;
}

/** Step 8: each file's new content, its managed block emitted and merged into what is there. */
function mergeFiles(
  m: Steps,
  specs: FileSpec[],
  outDir: string,
  present: ReadonlySet<string>,
): { planned: Planned[]; errors: Issue[] } {
  const planned: Planned[] = [];
  const errors: Issue[] = [];
  for (const spec of specs) {
    const path = `${outDir}${spec.rel}`;
    let existing: string | null = null;
    try {
      if (present.has(path)) existing = m.fswrite.readIfExists(path);
    } catch (e) {
      errors.push({ ...m.issues.err([], (e as Error).message), file: path });
      continue;
    }
    const merged = m.managed.mergeManaged(existing, m.emit.dumpYaml(spec.data));
    if (!merged.ok) {
      errors.push({ ...m.issues.err([], merged.error), file: path });
      continue;
    }
    planned.push({ path, content: merged.content, existing });
  }
  return { planned, errors };
}

async function findOrphans(
  baseDir: string,
  domains: string[],
  machines: string[],
): Promise<FileOrphan[]> {
  const { findOrphans } = await import("./orphans.ts");
  return findOrphans(baseDir, new Set(domains), new Set(machines));
}
