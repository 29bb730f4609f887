/**
 * The behaviour matrix (tests/behavior_matrix.yml): its schema, the
 * `// Matrix: ID` references found in tests, and coverage per capability and
 * depth. Pure: scripts/matrix-coverage.ts reads the files.
 */
import * as v from "valibot";
import { parse } from "yaml";

const CellSchema = v.strictObject({
  id: v.string(),
  action: v.pipe(v.string(), v.minLength(1)),
  expected: v.pipe(v.string(), v.minLength(1)),
  deterministic: v.boolean(),
});

const CapabilitySchema = v.strictObject({
  prefix: v.pipe(v.string(), v.regex(/^[A-Z]{2}$/, "a prefix is two capital letters")),
  description: v.pipe(v.string(), v.minLength(1)),
  depth_1: v.optional(v.array(CellSchema)),
  depth_2: v.optional(v.array(CellSchema)),
  depth_3: v.optional(v.array(CellSchema)),
});

const MatrixSchema = v.strictObject({
  capabilities: v.record(v.pipe(v.string(), v.regex(/^[a-z][a-z0-9_]*$/)), CapabilitySchema),
});

export type Matrix = v.InferOutput<typeof MatrixSchema>;
export type Cell = v.InferOutput<typeof CellSchema>;
export const DEPTHS = ["depth_1", "depth_2", "depth_3"] as const;
export type Depth = (typeof DEPTHS)[number];

/** The id a cell of `prefix` at `depth` must have the shape of. */
function idShape(prefix: string, depth: Depth): RegExp {
  const mid = depth === "depth_1" ? "" : `${depth.slice(-1)}-`;
  return new RegExp(`^${prefix}-${mid}\\d{3}$`);
}

/** A matrix that cannot be used: every problem, one line each. */
export class MatrixError extends Error {
  constructor(readonly problems: string[]) {
    super(`the behaviour matrix is invalid:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  }
}

/** Parse and check a matrix: schema, id shape per prefix and depth, unique ids and prefixes. */
export function parseMatrix(text: string, source = "tests/behavior_matrix.yml"): Matrix {
  let doc: unknown;
  try {
    doc = parse(text, { uniqueKeys: true });
  } catch (e) {
    throw new MatrixError([`${source}: ${(e as Error).message.split("\n")[0]}`]);
  }
  const r = v.safeParse(MatrixSchema, doc);
  if (!r.success) {
    throw new MatrixError(
      r.issues.map((i) => `${source}: ${v.getDotPath(i) ?? "(top)"}: ${i.message}`),
    );
  }
  const problems: string[] = [];
  const ids = new Map<string, string>();
  const prefixes = new Map<string, string>();
  for (const [name, cap] of Object.entries(r.output.capabilities)) {
    const other = prefixes.get(cap.prefix);
    if (other) problems.push(`${name}: prefix ${cap.prefix} is also ${other}'s`);
    prefixes.set(cap.prefix, name);
    for (const d of DEPTHS) {
      for (const cell of cap[d] ?? []) {
        if (!idShape(cap.prefix, d).test(cell.id)) {
          const want = d === "depth_1" ? `${cap.prefix}-NNN` : `${cap.prefix}-${d.slice(-1)}-NNN`;
          problems.push(`${name}.${d}: id "${cell.id}" should look like ${want}`);
        }
        const seen = ids.get(cell.id);
        if (seen) problems.push(`${name}.${d}: id "${cell.id}" is used twice (also in ${seen})`);
        ids.set(cell.id, `${name}.${d}`);
      }
    }
  }
  if (problems.length > 0) throw new MatrixError(problems);
  return r.output;
}

/** One `Matrix:` reference in a test file. */
export interface MatrixRef {
  id: string;
  file: string;
  line: number;
}

/** `// Matrix: A-001, B-2-003` (or `# Matrix:` in YAML), anywhere on a line. */
const REF = /(?:\/\/|#)\s*Matrix:\s*([\w-]+(?:\s*,\s*[\w-]+)*)/g;

/** Every reference in one file's text. */
export function findRefs(file: string, text: string): MatrixRef[] {
  const out: MatrixRef[] = [];
  text.split("\n").forEach((l, i) => {
    for (const m of l.matchAll(REF)) {
      for (const id of (m[1] as string).split(",")) out.push({ id: id.trim(), file, line: i + 1 });
    }
  });
  return out;
}

export interface DepthCoverage {
  total: number;
  covered: number;
  uncovered: string[];
}

export interface UncoveredCell {
  id: string;
  capability: string;
  depth: Depth;
  action: string;
  expected: string;
}

export interface Coverage {
  schema: 1;
  total: number;
  covered: number;
  /** covered / total × 100, unrounded (0 for an empty matrix). */
  percent: number;
  capabilities: Record<string, Partial<Record<Depth, DepthCoverage>>>;
  uncovered: UncoveredCell[];
  /** References to ids the matrix does not have: errors. */
  unknown: MatrixRef[];
  /** id -> "file:line" of every test that names it. */
  references: Record<string, string[]>;
}

/** Coverage of the matrix by the references. */
export function coverage(matrix: Matrix, refs: MatrixRef[]): Coverage {
  const byId = new Map<string, string[]>();
  for (const r of refs) byId.set(r.id, [...(byId.get(r.id) ?? []), `${r.file}:${r.line}`]);
  const known = new Set<string>();
  const caps: Coverage["capabilities"] = {};
  const uncovered: UncoveredCell[] = [];
  let total = 0;
  let covered = 0;
  for (const name of Object.keys(matrix.capabilities).sort()) {
    const cap = matrix.capabilities[name] as Matrix["capabilities"][string];
    caps[name] = {};
    for (const d of DEPTHS) {
      const cells = cap[d] ?? [];
      if (cells.length === 0) continue;
      const c: DepthCoverage = { total: cells.length, covered: 0, uncovered: [] };
      for (const cell of cells) {
        known.add(cell.id);
        if (byId.has(cell.id)) c.covered++;
        else {
          c.uncovered.push(cell.id);
          uncovered.push({ id: cell.id, capability: name, depth: d, ...pick(cell) });
        }
      }
      total += c.total;
      covered += c.covered;
      (caps[name] as Record<Depth, DepthCoverage>)[d] = c;
    }
  }
  const references: Record<string, string[]> = {};
  for (const id of [...byId.keys()].sort()) {
    if (known.has(id)) references[id] = byId.get(id) as string[];
  }
  return {
    schema: 1,
    total,
    covered,
    percent: total === 0 ? 0 : (covered / total) * 100,
    capabilities: caps,
    uncovered,
    unknown: refs.filter((r) => !known.has(r.id)),
    references,
  };
}

function pick(c: Cell): { action: string; expected: string } {
  return { action: c.action, expected: c.expected };
}

/** The text table: capability, depth, total, covered, percent; then TOTAL, uncovered and unknown ids. */
export function formatCoverage(c: Coverage, threshold: number): string {
  const out: string[] = [];
  const row = (a: string, b: string, t: string, cov: string, p: string) =>
    `${a.padEnd(25)}${b.padEnd(10)}${t.padStart(6)}${cov.padStart(8)}${p.padStart(6)}`;
  const pct = (n: number, d: number) => `${d === 0 ? 0 : Math.round((n / d) * 100)}%`;
  out.push(row("Capability", "Depth", "Total", "Covered", "%"), "-".repeat(60));
  for (const [name, depths] of Object.entries(c.capabilities)) {
    for (const d of DEPTHS) {
      const x = depths[d];
      if (!x) continue;
      out.push(
        row(name, d.replace("_", " "), String(x.total), String(x.covered), pct(x.covered, x.total)),
      );
    }
  }
  out.push(
    "-".repeat(60),
    row("TOTAL", "", String(c.total), String(c.covered), pct(c.covered, c.total)),
  );
  if (c.uncovered.length > 0) {
    out.push("", `Uncovered cells (${c.uncovered.length}):`);
    for (const u of c.uncovered) out.push(`  ${u.id.padEnd(9)} ${u.action}`);
  }
  if (c.unknown.length > 0) {
    out.push("", `Unknown matrix references (not in the matrix): ${c.unknown.length}`);
    for (const u of c.unknown) out.push(`  ${u.id} at ${u.file}:${u.line}`);
  }
  out.push("", verdict(c, threshold).line);
  return `${out.join("\n")}\n`;
}

/** Whether the run passes: no unknown reference, and coverage at least the threshold (unrounded). */
export function verdict(c: Coverage, threshold: number): { ok: boolean; line: string } {
  const shown = Math.round(c.percent);
  if (c.unknown.length > 0) {
    return {
      ok: false,
      line: `FAIL: ${c.unknown.length} reference(s) to cells the matrix does not have; add the cells to tests/behavior_matrix.yml or fix the ids`,
    };
  }
  if (c.percent < threshold) {
    return { ok: false, line: `FAIL: Coverage ${shown}% < threshold ${threshold}%` };
  }
  return { ok: true, line: `OK: Coverage ${shown}% >= threshold ${threshold}%` };
}
