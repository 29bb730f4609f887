/**
 * Validation issues: where (file, YAML path, line), what is wrong, how to fix it.
 * Every check of the generator reports through this shape so all errors can be
 * printed at once and mapped back to source lines.
 */

/** A YAML path: mapping keys and sequence indexes from the document root. */
export type YamlPath = readonly (string | number)[];

/** One problem found in the input. */
export interface Issue {
  severity: "error" | "warning";
  /** Path in the merged infra (e.g. ["domains", "pro", "subnet_id"]). */
  path: YamlPath;
  /** What is wrong, naming the offending value. */
  message: string;
  /** How to fix it. */
  fix?: string;
  /** Point at the key itself rather than its value (unknown keys, duplicates). */
  atKey?: boolean;
  /** Where to point in the source when `path` does not exist there (generated entries). */
  locateAt?: YamlPath;
  /** Filled in by the locator: source file, 1-based line and column. */
  file?: string;
  line?: number;
  col?: number;
}

/** Shorthand to build an error. */
export function err(path: YamlPath, message: string, fix?: string, atKey = false): Issue {
  return { severity: "error", path, message, fix, atKey };
}

/** Shorthand to build a warning. */
export function warn(path: YamlPath, message: string, fix?: string): Issue {
  return { severity: "warning", path, message, fix };
}

/** Render a path as `domains.pro.machines.pro-dev.config["security.nesting"]`. */
export function formatPath(path: YamlPath): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(seg)) out += out === "" ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out === "" ? "(top level)" : out;
}

/** Render one issue as `file:line:col: path: message (fix: …)`. */
export function formatIssue(issue: Issue): string {
  const where = issue.file
    ? `${issue.file}${issue.line ? `:${issue.line}${issue.col ? `:${issue.col}` : ""}` : ""}: `
    : "";
  const fix = issue.fix ? `\n      fix: ${issue.fix}` : "";
  return `${where}${formatPath(issue.path)}: ${issue.message}${fix}`;
}

/** Quote a user value for a message: strings in double quotes, others as YAML would show them. */
export function q(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value === null || value === undefined) return "null";
  if (typeof value === "object") return Array.isArray(value) ? "a list" : "a mapping";
  return String(value);
}

/** Describe a value's type for "expected X, got Y" messages. */
export function typeName(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "boolean") return `the boolean ${value}`;
  if (typeof value === "number") return `the number ${value}`;
  return `the string ${JSON.stringify(value)}`;
}

/** The closest candidate to `word` by edit distance, when it is close enough to be a likely typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] as number;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j] as number;
      prev[j] = Math.min(
        (prev[j] as number) + 1,
        (prev[j - 1] as number) + 1,
        diag + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      diag = tmp;
    }
  }
  return prev[b.length] as number;
}
