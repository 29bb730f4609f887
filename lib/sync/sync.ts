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
import { readdirSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import type { Issue } from "../core/issues.ts";
import { generatorContext, readContextFiles } from "../core/nesting.ts";
import { freshStamp, stampInputs, writeStamp } from "./_fast/stamp.ts";
import { readRoutes } from "./host.ts";
import { LoadError, type LoadedInfra, loadInfra, readInputFiles } from "./infra-load.ts";
import type { FileOrphan } from "./orphans.ts";
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
  failed?: "load" | "validation" | "merge";
  /** How the input was read (unknown when it could not be loaded). */
  mode?: "file" | "directory";
  errors: Issue[];
  warnings: Issue[];
  /** INFO lines (what enrichment added). */
  info: string[];
  /** The domains generated; empty when infra.yml defines none (nothing to generate). */
  domains: string[];
  /** Files written (with dryRun: that would be written), in generation order. */
  written: string[];
  unchanged: string[];
  /** Generated files that infra.yml no longer describes, sorted; none deleted here. */
  orphans: FileOrphan[];
  /** True when the stamp answered: nothing changed since the last sync. */
  fromStamp: boolean;
}

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === "object" && x !== null && !Array.isArray(x);
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
    fromStamp: false,
  };

  // 1. Stamp: nothing changed since the last sync? (lib/sync/_fast/stamp.ts)
  const inputFiles = readInputFiles(input);
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
    onStep("stamp (nothing changed)");
    result.orphans = await findOrphans(baseDir, fresh.domains, fresh.machines);
    onStep("orphans");
    return result;
  }

  // The full pipeline: load the heavy modules only now.
  const [
    { dumpYaml },
    { enrich },
    { readIfExists, writeIfChanged },
    { hostResources, parseRoutes },
    { err },
    { mergeManaged },
    { nestingPrefix },
    { renderTree },
    { allocate },
    { checkShape },
    { validateInfra },
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
  ]);
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
  const issues: Issue[] = [...loaded.warnings, ...(await checkShape(data))];
  onStep("schema");

  // 4. Enrich (only a well-shaped infra).
  let infra: Infra | undefined;
  let autoFirewall = false;
  if (!issues.some(isError)) {
    const e = enrich(data as Infra);
    infra = e.infra;
    autoFirewall = e.autoFirewall;
    result.info.push(...e.info);
  }

  // 5. Cross-entity rules, on the enriched infra or else on the raw data (every error at once).
  const context = generatorContext(nesting);
  const global = isObj(data) && isObj(data.global) ? data.global : {};
  const prefix = global.nesting_prefix === false ? "" : nestingPrefix(context.absoluteLevel);
  issues.push(
    ...validateInfra(infra ?? data, {
      context,
      prefix,
      hostNetworks: routes === null ? null : parseRoutes(routes),
    }),
  );
  onStep("enrich+validate");

  // 6. Allocate resources (resource_policy), on a valid infra only.
  const policy = infra?.global?.resource_policy;
  if (infra && policy && !issues.some(isError)) {
    const machines = Object.values(infra.domains ?? {}).flatMap((d) =>
      Object.entries(d.machines ?? {}).map(([name, m]) => {
        m.config ??= {};
        return { name, config: m.config as Record<string, unknown>, weight: m.weight ?? 1 };
      }),
    );
    const r = allocate(
      policy === true ? {} : (policy as ResourcePolicyInput),
      await hostResources(),
      machines,
    );
    const at = ["global", "resource_policy"];
    for (const w of r.warnings) issues.push({ ...err(at, w), severity: "warning" });
    if (r.error) {
      const fix = "lower the explicit limits, or set resource_policy.overcommit: true to allow it";
      issues.push(err(at, r.error, fix));
    }
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
  if (issues.length > 0) await loaded.locate(issues);
  result.errors = issues.filter(isError);
  result.warnings = issues.filter((i) => i.severity === "warning");
  if (result.errors.length > 0 || !infra) {
    result.failed = "validation";
    return result;
  }
  const domains = infra.domains ?? {};
  result.domains = Object.keys(domains);
  if (result.domains.length === 0) return result;

  // 8. Render every file, emit and merge it before writing any (a bad file writes nothing).
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
  onStep("render");
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
  onStep("emit+merge");
  if (mergeErrors.length > 0) {
    result.failed = "merge";
    result.errors = mergeErrors;
    return result;
  }

  // 9. Write the files whose content changed (temp file and rename).
  const stats = new Map<string, { size: number; mtimeMs: number; ino: number }>();
  for (const p of planned) {
    if (p.content === p.existing) {
      result.unchanged.push(p.path);
      continue;
    }
    if (!dryRun) {
      writeIfChanged(p.path, p.content, {
        existing: p.existing,
        onStat: (st) => stats.set(p.path, st),
      });
    }
    result.written.push(p.path);
  }
  onStep("write");

  // 10. Stamp for the next sync.
  const machines = new Set<string>();
  for (const d of Object.values(domains)) {
    for (const m of Object.keys(d.machines ?? {})) machines.add(m);
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

async function findOrphans(
  baseDir: string,
  domains: string[],
  machines: string[],
): Promise<FileOrphan[]> {
  const { findOrphans } = await import("./orphans.ts");
  return findOrphans(baseDir, new Set(domains), new Set(machines));
}
