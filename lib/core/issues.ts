/**
 * Validation issues: where (file, YAML path, line), what is wrong, how to fix it.
 * Every check of the generator reports through this shape so all errors can be
 * printed at once and mapped back to source lines.
 */

/** A YAML path: mapping keys and sequence indexes from the document root. */
export type YamlPath = readonly (string | number)[];

/** One problem found in the input. */
export interface Issue {
  /** info: a note that changes nothing (e.g. a key of another v1 tool, accepted and ignored). */
  severity: "error" | "warning" | "info";
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
  /** Set on the one line that stands for errors left out (capIssues): how many. */
  more?: number;
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

/** Shorthand to build an info note (pointing at the key). */
export function info(path: YamlPath, message: string): Issue {
  return { severity: "info", path, message, atKey: true };
}

/** Echoed user text is cut to this many characters (a 1 MB name is not printed whole). */
export const ECHO_MAX = 80;

/** Cut `text` to `max` characters, ending with "…" when it was longer. */
export function truncate(text: string, max = ECHO_MAX): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** Render a path as `domains.pro.machines.pro-dev.config["security.nesting"]` (long keys cut). */
export function formatPath(path: YamlPath): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (seg.length <= ECHO_MAX && /^[A-Za-z0-9_-]+$/.test(seg))
      out += out === "" ? seg : `.${seg}`;
    else out += `[${JSON.stringify(truncate(seg))}]`;
  }
  return out === "" ? "(top level)" : out;
}

/** Render one issue as `file:line:col: path: message (fix: …)`. */
export function formatIssue(issue: Issue): string {
  if (issue.more !== undefined) return issue.message;
  const where = issue.file
    ? `${issue.file}${issue.line ? `:${issue.line}${issue.col ? `:${issue.col}` : ""}` : ""}: `
    : "";
  const fix = issue.fix ? `\n      fix: ${issue.fix}` : "";
  return `${where}${formatPath(issue.path)}: ${issue.message}${fix}`;
}

/** At most this many errors (and as many warnings) are reported; the rest are counted. */
export const MAX_REPORTED = 100;

/**
 * The first `max` errors and `max` warnings, in order; when errors were left
 * out, a last error line `… and N more errors` (its `more` holds N).
 */
export function capIssues(issues: readonly Issue[], max = MAX_REPORTED): Issue[] {
  const out: Issue[] = [];
  let errors = 0;
  let warnings = 0;
  for (const i of issues) {
    if (i.severity === "error" ? errors++ < max : warnings++ < max) out.push(i);
  }
  if (errors > max) {
    const more = errors - max;
    out.push({
      severity: "error",
      path: [],
      message: `… and ${more} more error${more === 1 ? "" : "s"} (only the first ${max} are listed; fix these and sync again)`,
      more,
    });
  }
  return out;
}

/** How many errors `issues` stand for (a `… and N more` line counts N). */
export function errorCount(issues: readonly Issue[]): number {
  let n = 0;
  for (const i of issues) if (i.severity === "error") n += i.more ?? 1;
  return n;
}

/** Quote a user value for a message: strings in double quotes (long ones cut), others as YAML would show them. */
export function q(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(truncate(value));
  if (value === null || value === undefined) return "null";
  if (typeof value === "object") return typeName(value);
  return String(value);
}

/** An unquoted YAML date (`2024-01-01`), as the YAML reader gives it: `2024-01-01` or its ISO time. */
export function dateText(d: Date): string {
  if (Number.isNaN(d.getTime())) return "an invalid date";
  const iso = d.toISOString();
  return iso.endsWith("T00:00:00.000Z") ? iso.slice(0, 10) : iso;
}

/**
 * A YAML mapping as the readers give it: a plain object. Not a list, and not a
 * date or binary data (`2024-01-01`, `!!binary`), which are objects too.
 */
export function isMapping(x: unknown): x is Record<string, unknown> {
  if (typeof x !== "object" || x === null || Array.isArray(x)) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

/** Describe a value's type for "expected X, got Y" messages. */
export function typeName(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (Array.isArray(value)) return "a list";
  if (value instanceof Date) return `the date ${dateText(value)} (an unquoted date)`;
  if (value instanceof Uint8Array) return "binary data (a !!binary value)";
  if (typeof value === "object") return isMapping(value) ? "a mapping" : "a value of another type";
  if (typeof value === "boolean") return `the boolean ${value}`;
  if (typeof value === "number") return `the number ${value}`;
  return `the string ${JSON.stringify(truncate(String(value)))}`;
}

/** Names longer than this get no "did you mean" (the edit distance would cost too much). */
const CLOSEST_MAX = 64;

/**
 * The closest candidate to `word` by edit distance, when it is close enough to be
 * a likely typo. Bounded: no suggestion for a word over 64 characters, candidates
 * whose length alone rules them out are skipped, and each distance stops early.
 */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  if (word.length > CLOSEST_MAX) return undefined;
  const w = word.toLowerCase();
  const limit = Math.max(2, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestD = limit + 1;
  for (const c of candidates) {
    if (Math.abs(c.length - w.length) >= bestD) continue;
    const d = editDistance(w, c.toLowerCase(), bestD - 1);
    if (d < bestD) {
      bestD = d;
      best = c;
      if (d === 0) break;
    }
  }
  return best;
}

/** Levenshtein distance of a and b, or `bound + 1` as soon as it must exceed `bound`. */
function editDistance(a: string, b: string, bound: number): number {
  if (Math.abs(a.length - b.length) > bound) return bound + 1;
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] as number;
    prev[0] = i;
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j] as number;
      const d = Math.min(
        (prev[j] as number) + 1,
        (prev[j - 1] as number) + 1,
        diag + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      prev[j] = d;
      if (d < rowMin) rowMin = d;
      diag = tmp;
    }
    if (rowMin > bound) return bound + 1;
  }
  return prev[b.length] as number;
}
