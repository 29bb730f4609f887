/**
 * What a TypeScript file imports and exports, read from its text (no type
 * checker): enough for the code audit's dead-code report, which needs the
 * relative imports between the project's own files and the names they use.
 */
import { posix } from "node:path";

/** One import of a file: the specifier and the names it takes ("*" for all). */
export interface ImportRef {
  from: string;
  names: string[];
}

/** One exported name and the line it is declared on. */
export interface ExportRef {
  name: string;
  line: number;
}

/**
 * Blank out comments (keeping line breaks), with a small scanner that knows
 * strings: a `/*` inside a line comment or a string is not a comment. Quoted
 * strings end at their line's end, so a quote in a regex literal cannot
 * swallow the rest of the file.
 */
export function stripComments(text: string): string {
  let out = "";
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i] as string;
    const d = text[i + 1];
    if (c === "/" && d === "/") {
      while (i < n && text[i] !== "\n") i++;
    } else if (c === "/" && d === "*") {
      const end = text.indexOf("*/", i + 2);
      const stop = end < 0 ? n : end + 2;
      out += text.slice(i, stop).replace(/[^\n]/g, " ");
      i = stop;
    } else if (c === '"' || c === "'" || c === "`") {
      let j = i + 1;
      while (j < n && text[j] !== c && (c === "`" || text[j] !== "\n"))
        j += text[j] === "\\" ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** The names in an import/export clause `{ a, b as c, type d }`: the source side. */
function clauseNames(clause: string, side: "source" | "local"): string[] {
  return clause
    .split(",")
    .map((s) => s.trim().replace(/^type\s+/, ""))
    .filter((s) => s !== "")
    .map((s) => {
      const [src, local] = s.split(/\s+as\s+/);
      return ((side === "source" ? src : (local ?? src)) ?? "").trim();
    });
}

/** Every static import and re-export of a file, and `import("x")` with a literal specifier. */
export function parseImports(text: string): ImportRef[] {
  const src = stripComments(text);
  const out: ImportRef[] = [];
  const stmt =
    /\b(import|export)\s+(type\s+)?([^;'"]*?)\s*from\s*["']([^"']+)["']|\bimport\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/g;
  for (const m of src.matchAll(stmt)) {
    if (m[5] !== undefined) {
      out.push({ from: m[5], names: [] });
      continue;
    }
    if (m[6] !== undefined) {
      out.push({ from: m[6], names: ["*"] });
      continue;
    }
    const clause = (m[3] ?? "").trim();
    const from = m[4] as string;
    const names: string[] = [];
    const braces = /\{([^}]*)\}/.exec(clause);
    if (braces) names.push(...clauseNames(braces[1] as string, "source"));
    if (/\*/.test(clause)) names.push("*");
    const def = clause.replace(/\{[^}]*\}/, "").replace(/\*\s*as\s+\w+/, "");
    if (m[1] === "import" && /^\s*\w+/.test(def) && !/^\s*,?\s*$/.test(def)) {
      names.push("default");
    }
    out.push({ from, names });
  }
  return out;
}

/** Every name a file exports (declarations and `export { ... }` lists), with its line. */
export function parseExports(text: string): ExportRef[] {
  const src = stripComments(text);
  const lines = src.split("\n");
  const out: ExportRef[] = [];
  const decl =
    /^\s*export\s+(?:declare\s+)?(?:default\s+)?(?:async\s+)?(?:abstract\s+)?(function\*?|const|let|var|class|interface|type|enum|namespace)\s+([A-Za-z_$][\w$]*)/;
  lines.forEach((l, i) => {
    const m = decl.exec(l);
    if (m?.[2]) out.push({ name: m[2], line: i + 1 });
    const list = /^\s*export\s+(?:type\s+)?\{([^}]*)\}\s*(?:from\s|;|$)/.exec(l);
    if (list?.[1] && !/\bfrom\s/.test(l)) {
      for (const n of clauseNames(list[1], "local")) out.push({ name: n, line: i + 1 });
    }
  });
  return out;
}

/** Resolve a relative specifier from `file` (repo-relative) to a repo path, or null for a package. */
export function resolveSpecifier(
  file: string,
  spec: string,
  exists: (p: string) => boolean,
): string | null {
  if (!spec.startsWith(".")) return null;
  const base = posix.normalize(posix.join(posix.dirname(file), spec));
  for (const c of [base, `${base}.ts`, `${base}/index.ts`]) if (exists(c)) return c;
  return null;
}

/** How often `name` appears in a file besides its one declaration (comments ignored). */
export function localUses(text: string, name: string): number {
  const src = stripComments(text).replace(/^\s*import\s[^;]*;/gm, "");
  const n =
    src.match(new RegExp(`(?<![\\w$.])${name.replace(/\$/g, "\\$")}(?![\\w$])`, "g"))?.length ?? 0;
  return Math.max(0, n - 1);
}
