/**
 * The code audit (SPEC-operations section 16) as pure functions over the
 * project's files: lines per kind, test-to-implementation ratio per module,
 * modules without tests, roles by size, dead code (exports nothing imports,
 * files nothing reaches) and a summary. scripts/code-audit.ts reads the tree
 * and prints the report; docs/quality.md documents the JSON.
 */
import {
  type ExportRef,
  localUses,
  parseExports,
  parseImports,
  resolveSpecifier,
} from "./imports.ts";

/** Version of the JSON report; bumped only when a key changes meaning or goes away. */
export const AUDIT_SCHEMA = 1;

/** Roles over this many lines (YAML and templates) are simplification candidates. */
export const ROLE_LINES_LIMIT = 200;

/** A file of the project: its repo-relative path and text. */
export interface SourceFile {
  path: string;
  text: string;
}

/** The kinds lines are counted by. */
export const KINDS = [
  "ts_impl",
  "ts_test",
  "ts_bench",
  "shell",
  "yaml_roles",
  "yaml_config",
  "docs",
] as const;
export type Kind = (typeof KINDS)[number];

/** Lines of a text, as `wc -l` would count them plus an unterminated last line. */
export function countLines(text: string): number {
  if (text === "") return 0;
  const n = text.split("\n").length;
  return text.endsWith("\n") ? n - 1 : n;
}

const isTest = (p: string) =>
  p.endsWith(".test.ts") || (p.startsWith("tests/") && p.endsWith(".ts"));
const isImpl = (p: string) =>
  (p.startsWith("lib/") || p.startsWith("scripts/")) &&
  p.endsWith(".ts") &&
  !p.endsWith(".test.ts");

/** The kind of a file, or null when no kind counts it. `shell` is decided by the caller. */
export function kindOf(path: string, isShell: boolean): Kind | null {
  if (isShell) return "shell";
  if (path.endsWith(".ts")) {
    if (isTest(path)) return "ts_test";
    if (isImpl(path)) return "ts_impl";
    if (path.startsWith("bench/")) return "ts_bench";
    return null;
  }
  if (path.startsWith("roles/") && /\.(ya?ml|j2)$/.test(path)) return "yaml_roles";
  if (!path.includes("/") && /\.ya?ml$/.test(path)) return "yaml_config";
  if (path.endsWith(".md")) return "docs";
  return null;
}

export interface LineCount {
  total_lines: number;
  file_count: number;
}

/** Lines and files per kind; every kind is present (zero when empty). */
export function lineCounts(files: SourceFile[], shell: Set<string>): Record<Kind, LineCount> {
  const out = Object.fromEntries(
    KINDS.map((k) => [k, { total_lines: 0, file_count: 0 }]),
  ) as Record<Kind, LineCount>;
  for (const f of files) {
    const k = kindOf(f.path, shell.has(f.path));
    if (k === null) continue;
    out[k].total_lines += countLines(f.text);
    out[k].file_count += 1;
  }
  return out;
}

export interface ModuleRatio {
  impl_lines: number;
  test_lines: number;
  /** test_lines / impl_lines, 2 decimals; null for a test-only entry (no implementation). */
  ratio: number | null;
  tests: string[];
}

const stemOf = (p: string) => (p.split("/").pop() ?? p).replace(/\.ts$/, "");

/**
 * Test-to-implementation ratio per module. A module is `lib/**\/x.ts` or
 * `scripts/x.ts` (key: the path without `.ts`). Its tests: `x.test.ts` and
 * `x.*.test.ts` beside it; for a script also `tests/x.test.ts`,
 * `tests/x-*.test.ts` and `tests/x.*.test.ts` (a test goes to the script with
 * the longest matching name), then any tests/ file that names `x.ts` and
 * matched no script by name. Test files that belong to no module are listed
 * under `tests/<name>` with ratio null (integration tests).
 */
export function testRatios(files: SourceFile[]): Record<string, ModuleRatio> {
  const impl = files.filter((f) => isImpl(f.path)).sort((a, b) => a.path.localeCompare(b.path));
  const tests = files.filter((f) => f.path.endsWith(".test.ts"));
  const out: Record<string, ModuleRatio> = {};
  for (const f of impl) {
    out[f.path.replace(/\.ts$/, "")] = {
      impl_lines: countLines(f.text),
      test_lines: 0,
      ratio: 0,
      tests: [],
    };
  }
  const scripts = impl.filter((f) => /^scripts\/[^/]+\.ts$/.test(f.path));
  const assigned = new Set<string>();
  const give = (key: string, t: SourceFile) => {
    const m = out[key];
    if (!m) return;
    m.test_lines += countLines(t.text);
    m.tests.push(t.path);
    assigned.add(t.path);
  };
  for (const t of tests) {
    const dir = t.path.slice(0, t.path.lastIndexOf("/") + 1);
    const tstem = stemOf(t.path).replace(/\.test$/, "");
    if (!t.path.startsWith("tests/")) {
      // Beside the code: x.test.ts or x.<aspect>.test.ts.
      const base = tstem.split(".")[0] as string;
      if (out[`${dir}${base}`]) give(`${dir}${base}`, t);
      continue;
    }
    let best: string | null = null;
    for (const s of scripts) {
      const st = stemOf(s.path);
      if (tstem === st || tstem.startsWith(`${st}-`) || tstem.startsWith(`${st}.`)) {
        if (best === null || st.length > stemOf(best).length) best = s.path;
      }
    }
    if (best !== null) give(best.replace(/\.ts$/, ""), t);
  }
  const byPath = new Map(files.map((f) => [f.path, f.text]));
  for (const t of tests) {
    if (assigned.has(t.path) || !t.path.startsWith("tests/")) continue;
    // The test's text and that of the tests/ helpers it imports (a helper
    // often holds the script's path).
    const helpers = parseImports(t.text)
      .map((i) => resolveSpecifier(t.path, i.from, (p) => byPath.has(p)))
      .filter((p): p is string => p?.startsWith("tests/") === true);
    const text = [t.text, ...helpers.map((h) => byPath.get(h) ?? "")].join("\n");
    for (const s of scripts) {
      const name = `${stemOf(s.path)}.ts`;
      if (new RegExp(`(^|[^\\w-])${name.replace(/[.]/g, "\\.")}`).test(text)) {
        give(s.path.replace(/\.ts$/, ""), t);
      }
    }
  }
  for (const t of tests) {
    if (assigned.has(t.path)) continue;
    out[t.path.replace(/\.test\.ts$/, "")] = {
      impl_lines: 0,
      test_lines: countLines(t.text),
      ratio: null,
      tests: [t.path],
    };
  }
  for (const m of Object.values(out)) {
    if (m.impl_lines > 0) m.ratio = Math.round((m.test_lines / m.impl_lines) * 100) / 100;
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

/** Modules with implementation lines and no test at all, sorted. */
export function untestedModules(ratios: Record<string, ModuleRatio>): string[] {
  return Object.entries(ratios)
    .filter(([, m]) => m.impl_lines > 0 && m.test_lines === 0)
    .map(([k]) => k);
}

export interface RoleSize {
  name: string;
  lines: number;
  files: number;
  simplification_candidate: boolean;
  /** tests/ files that name the role. */
  tests: string[];
}

/** Roles by size (YAML and Jinja templates), largest first, those over the limit flagged. */
export function roleSizes(files: SourceFile[]): RoleSize[] {
  const roles = new Map<string, RoleSize>();
  for (const f of files) {
    const m = /^roles\/([^/]+)\/.+\.(ya?ml|j2)$/.exec(f.path);
    if (!m?.[1]) continue;
    const r = roles.get(m[1]) ?? {
      name: m[1],
      lines: 0,
      files: 0,
      simplification_candidate: false,
      tests: [],
    };
    r.lines += countLines(f.text);
    r.files += 1;
    roles.set(m[1], r);
  }
  const tests = files.filter((f) => f.path.startsWith("tests/") && f.path.endsWith(".ts"));
  for (const r of roles.values()) {
    r.simplification_candidate = r.lines > ROLE_LINES_LIMIT;
    r.tests = tests.filter((t) => new RegExp(`\\b${r.name}\\b`).test(t.text)).map((t) => t.path);
  }
  return [...roles.values()].sort((a, b) => b.lines - a.lines || a.name.localeCompare(b.name));
}

export interface UnusedExport {
  file: string;
  name: string;
  line: number;
}

export interface DeadCode {
  /** Exported, imported by no other file and used nowhere in its own: dead (a script's `main` is its entry point). */
  unused_exports: UnusedExport[];
  /** Exported and imported by no other file, but used in its own: the `export` is not needed. */
  local_only_exports: UnusedExport[];
  /** Imported only by tests and not used in its own file: only tests keep it alive. */
  test_only_exports: UnusedExport[];
  /** Implementation and test-helper files that no entry point reaches through imports. */
  unreached_files: string[];
}

/**
 * Entry points: scripts (not tests), benches, and every test file. A file is
 * reached when an import chain leads to it from an entry point.
 */
export function isEntryPoint(path: string): boolean {
  return (
    /^scripts\/[^/]+\.ts$/.test(path) || path.startsWith("bench/") || path.endsWith(".test.ts")
  );
}

/** Dead code over the project's TypeScript files. */
export function deadCode(files: SourceFile[]): DeadCode {
  const ts = files.filter((f) => f.path.endsWith(".ts"));
  const paths = new Set(ts.map((f) => f.path));
  const exists = (p: string) => paths.has(p);
  const edges = new Map<string, string[]>();
  // file -> name -> importing files
  const used = new Map<string, Map<string, Set<string>>>();
  for (const f of ts) {
    const targets: string[] = [];
    for (const imp of parseImports(f.text)) {
      const to = resolveSpecifier(f.path, imp.from, exists);
      if (to === null) continue;
      targets.push(to);
      const byName = used.get(to) ?? new Map<string, Set<string>>();
      for (const n of imp.names) {
        const s = byName.get(n) ?? new Set<string>();
        s.add(f.path);
        byName.set(n, s);
      }
      used.set(to, byName);
    }
    edges.set(f.path, targets);
  }
  const reached = new Set<string>();
  const stack = ts.map((f) => f.path).filter(isEntryPoint);
  while (stack.length > 0) {
    const p = stack.pop() as string;
    if (reached.has(p)) continue;
    reached.add(p);
    stack.push(...(edges.get(p) ?? []));
  }
  const unused: UnusedExport[] = [];
  const localOnly: UnusedExport[] = [];
  const testOnly: UnusedExport[] = [];
  for (const f of ts) {
    if (!isImpl(f.path) && !f.path.startsWith("tests/")) continue;
    if (f.path.endsWith(".test.ts")) continue;
    const byName = used.get(f.path);
    const all = byName?.get("*");
    for (const e of parseExports(f.text) as ExportRef[]) {
      if (e.name === "main" && f.path.startsWith("scripts/")) continue;
      const users = new Set([...(byName?.get(e.name) ?? []), ...(all ?? [])]);
      const ref = { file: f.path, name: e.name, line: e.line };
      const local = localUses(f.text, e.name) > 0;
      if (users.size === 0) (local ? localOnly : unused).push(ref);
      else if (isImpl(f.path) && !local && [...users].every(isTest)) testOnly.push(ref);
    }
  }
  const unreached = ts
    .map((f) => f.path)
    .filter((p) => (isImpl(p) || p.startsWith("tests/")) && !reached.has(p))
    .sort();
  return {
    unused_exports: unused,
    local_only_exports: localOnly,
    test_only_exports: testOnly,
    unreached_files: unreached,
  };
}

export interface AuditSummary {
  total_implementation_lines: number;
  total_test_lines: number;
  total_role_lines: number;
  total_shell_lines: number;
  total_doc_lines: number;
  overall_test_to_impl_ratio: number;
  modules: number;
  untested_modules: number;
  roles: number;
  simplification_candidates: number;
  unused_exports: number;
  local_only_exports: number;
  test_only_exports: number;
  unreached_files: number;
}

export interface AuditReport {
  schema: number;
  project_dir: string;
  summary: AuditSummary;
  line_counts: Record<Kind, LineCount>;
  test_ratios: Record<string, ModuleRatio>;
  untested_modules: string[];
  roles: RoleSize[];
  dead_code: DeadCode & { shell_unused_variables: string[] };
}

/** The whole report. `shellUnused` are shellcheck SC2034 findings, as lines. */
export function audit(
  projectDir: string,
  files: SourceFile[],
  shell: Set<string>,
  shellUnused: string[],
): AuditReport {
  const lines = lineCounts(files, shell);
  const ratios = testRatios(files);
  const untested = untestedModules(ratios);
  const roles = roleSizes(files);
  const dead = deadCode(files);
  const impl = lines.ts_impl.total_lines + lines.shell.total_lines;
  const test = lines.ts_test.total_lines;
  return {
    schema: AUDIT_SCHEMA,
    project_dir: projectDir,
    summary: {
      total_implementation_lines: impl,
      total_test_lines: test,
      total_role_lines: lines.yaml_roles.total_lines,
      total_shell_lines: lines.shell.total_lines,
      total_doc_lines: lines.docs.total_lines,
      overall_test_to_impl_ratio: impl === 0 ? 0 : Math.round((test / impl) * 100) / 100,
      modules: Object.values(ratios).filter((m) => m.impl_lines > 0).length,
      untested_modules: untested.length,
      roles: roles.length,
      simplification_candidates: roles.filter((r) => r.simplification_candidate).length,
      unused_exports: dead.unused_exports.length,
      local_only_exports: dead.local_only_exports.length,
      test_only_exports: dead.test_only_exports.length,
      unreached_files: dead.unreached_files.length,
    },
    line_counts: lines,
    test_ratios: ratios,
    untested_modules: untested,
    roles,
    dead_code: { ...dead, shell_unused_variables: shellUnused },
  };
}

const RULE = "=".repeat(60);

/** The terminal report: 60-character rules and one section per part, as v1's. */
export function formatReport(r: AuditReport, only?: "dead-code"): string {
  const out: string[] = [];
  const section = (title: string) => out.push("", RULE, title, RULE);
  const deadSection = () => {
    section("DEAD CODE DETECTION");
    const d = r.dead_code;
    out.push(`Exports nothing imports or uses (${d.unused_exports.length}):`);
    for (const e of d.unused_exports) out.push(`  ${e.file}:${e.line}  ${e.name}`);
    out.push(`Exports used only in their own file (${d.local_only_exports.length}):`);
    for (const e of d.local_only_exports) out.push(`  ${e.file}:${e.line}  ${e.name}`);
    out.push(`Files nothing reaches (${d.unreached_files.length}):`);
    for (const f of d.unreached_files) out.push(`  ${f}`);
    out.push(`Exports only tests use (${d.test_only_exports.length}):`);
    for (const e of d.test_only_exports) out.push(`  ${e.file}:${e.line}  ${e.name}`);
    out.push(
      `Shell variables assigned and never used, SC2034 (${d.shell_unused_variables.length}):`,
    );
    for (const l of d.shell_unused_variables) out.push(`  ${l}`);
  };
  if (only === "dead-code") {
    deadSection();
    return `${out.join("\n").trimStart()}\n`;
  }
  const s = r.summary;
  out.push(RULE, `CODE AUDIT: ${r.project_dir}`, RULE);
  section("SUMMARY");
  out.push(
    `Implementation lines (TypeScript + shell): ${s.total_implementation_lines}`,
    `Test lines:                                ${s.total_test_lines}`,
    `Test-to-implementation ratio:              ${s.overall_test_to_impl_ratio.toFixed(2)}`,
    `Role lines (YAML + templates):             ${s.total_role_lines}`,
    `Modules: ${s.modules}, without a test: ${s.untested_modules}`,
    `Roles: ${s.roles}, over ${ROLE_LINES_LIMIT} lines: ${s.simplification_candidates}`,
    `Dead code: ${s.unused_exports} unused export(s), ${s.unreached_files} unreached file(s);`,
    `  ${s.local_only_exports} export(s) used only in their file, ${s.test_only_exports} used only by tests`,
  );
  section("LINE COUNTS BY CATEGORY");
  for (const k of KINDS) {
    const c = r.line_counts[k];
    out.push(
      `  ${k.padEnd(14)} ${String(c.total_lines).padStart(7)} lines  ${String(c.file_count).padStart(4)} files`,
    );
  }
  section("TEST-TO-IMPLEMENTATION RATIO PER MODULE");
  out.push(
    `  ${"module".padEnd(36)} ${"impl".padStart(6)} ${"test".padStart(6)} ${"ratio".padStart(9)}`,
  );
  for (const [k, m] of Object.entries(r.test_ratios)) {
    const ratio = m.ratio === null ? "test-only" : m.ratio.toFixed(2);
    const flag = m.impl_lines > 0 && m.test_lines === 0 ? "  <-- no test" : "";
    out.push(
      `  ${k.padEnd(36)} ${String(m.impl_lines).padStart(6)} ${String(m.test_lines).padStart(6)} ${ratio.padStart(9)}${flag}`,
    );
  }
  section(`MODULES WITHOUT TEST COVERAGE (${r.untested_modules.length})`);
  for (const m of r.untested_modules) out.push(`  ${m}`);
  section("ROLES BY SIZE");
  for (const role of r.roles) {
    const flag = role.simplification_candidate ? "  ** SIMPLIFICATION CANDIDATE" : "";
    const tested = role.tests.length > 0 ? "" : "  (no test names it)";
    out.push(
      `  ${role.name.padEnd(28)} ${String(role.lines).padStart(6)} lines ${String(role.files).padStart(3)} files${flag}${tested}`,
    );
  }
  deadSection();
  return `${out.join("\n")}\n`;
}
