/**
 * Parse YAML fast, yet exactly as PyYAML (YAML 1.1) would read it, with
 * source positions for error messages.
 *
 * Two paths give the same value:
 * - fast: Bun's built-in parser (~5 ms for 7,700 lines), used only when a
 *   one-pass scan (`plainBlockYaml`, private in _fast/plain-yaml.ts) proves the text is plain block YAML whose
 *   scalars read the same under YAML 1.1 and 1.2 and whose mappings hold no
 *   duplicate key — the cases where Bun's parser (YAML 1.2, last key wins)
 *   could differ;
 * - exact: the `yaml` package's document API in YAML 1.1 mode (~200 ms cold
 *   on the same file), also the only path under Deno, and the source of line
 *   numbers (`Locator`), built only when there is something to report.
 * The `yaml` package itself is imported only when the exact path runs (its
 * import alone costs ~15 ms, half a no-op sync).
 */
import process from "node:process";
import type { Node } from "yaml";
import type { Issue, YamlPath } from "../core/issues.ts";
import { plainBlockYaml } from "./_fast/plain-yaml.ts";

/** The result of parsing one file. */
export type ParseResult = { ok: true; value: unknown } | { ok: false; issues: Issue[] };

type FastParser = (text: string) => unknown;

function bunYaml(): FastParser | undefined {
  const g = globalThis as { Bun?: { YAML?: { parse?: FastParser } } };
  return g.Bun?.YAML?.parse;
}

type YamlModule = typeof import("yaml");
let yamlModule: YamlModule | undefined;
async function loadYaml(): Promise<YamlModule> {
  yamlModule ??= await import("yaml");
  return yamlModule;
}

/** Parse YAML text; `file` is used in error messages. */
export async function parseYaml(text: string, file: string): Promise<ParseResult> {
  const fast = process.env.ANKLUME_YAML_EXACT === "1" ? undefined : bunYaml();
  if (fast && plainBlockYaml(text)) {
    try {
      return { ok: true, value: fast(text) ?? null };
    } catch {
      // Fall through: the exact parser explains the error with a line number.
    }
  }
  return parseExact(text, file);
}

/** The deepest nesting read (infra.yml needs about 8 levels): deeper is refused, never a stack overflow. */
export const MAX_DEPTH = 100;

// PyYAML's implicit int and float patterns (resolver.py): a plain scalar that the
// `yaml` package reads as a number but PyYAML does not (2e0, 08, ".") stays a string.
const PY_INT =
  /^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$/;
const PY_FLOAT =
  /^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;

/** Parse with the `yaml` package in YAML 1.1 mode, reporting errors with positions. */
export async function parseExact(text: string, file: string): Promise<ParseResult> {
  const y = await loadYaml();
  const lineCounter = new y.LineCounter();
  const at = (offset: number, message: string, fix: string): Issue => {
    const pos = lineCounter.linePos(offset);
    return { ...syntaxIssue(file, message), fix, line: pos.line, col: pos.col };
  };
  let doc: ReturnType<typeof y.parseDocument>;
  try {
    doc = y.parseDocument(text, {
      version: "1.1",
      uniqueKeys: true,
      lineCounter,
      prettyErrors: false,
      logLevel: "error", // no Node warning on stderr: every problem is reported as an Issue
    });
  } catch (e) {
    return { ok: false, issues: [syntaxIssue(file, readableError(e))] };
  }
  if (doc.errors.length > 0) {
    return {
      ok: false,
      issues: doc.errors.slice(0, 10).map((e) => {
        if (e.code === "DUPLICATE_KEY") {
          return at(
            e.pos[0],
            "this key appears twice in the same mapping",
            "keep one of the two entries (YAML would silently drop the other)",
          );
        }
        if (e.code === "MULTIPLE_DOCS") {
          return at(
            e.pos[0],
            "the file holds more than one YAML document (a second '---' line)",
            "keep one document: remove this '---' line and merge what follows, or move it to a file of its own",
          );
        }
        const msg = readableError(e);
        const fix = msg.includes("nests too deeply")
          ? "flatten it: infra.yml needs only a few levels of mappings and lists"
          : "fix the YAML syntax at this line (indentation, quotes, colons)";
        return at(e.pos[0], msg, fix);
      }),
    };
  }
  // What PyYAML refuses although the `yaml` package only warns.
  const issues: Issue[] = [];
  for (const w of doc.warnings) {
    if (w.code === "TAG_RESOLVE_FAILED") {
      issues.push(
        at(
          w.pos[0],
          `unknown tag (${w.message.replace(/^Unresolved tag: /, "").split("\n")[0]})`,
          "remove the tag: anklume reads plain YAML values (quote the value if it starts with '!')",
        ),
      );
    } else if (w.code === "BAD_DIRECTIVE") {
      issues.push(
        at(w.pos[0], `${w.message.split("\n")[0]}`, "remove the %YAML line, or write %YAML 1.1"),
      );
    }
  }
  issues.push(...walk(y, doc.contents, at));
  if (text.includes("\t")) issues.push(...tabIssues(y, doc, text, at));
  if (issues.length > 0) return { ok: false, issues: issues.slice(0, 10) };
  try {
    return { ok: true, value: doc.toJS({ maxAliasCount: 1000 }) ?? null };
  } catch (e) {
    if (/alias count/i.test(String((e as Error)?.message))) {
      const issue = syntaxIssue(
        file,
        "its aliases (*name) expand to too much data (an alias of aliases of aliases…)",
      );
      return {
        ok: false,
        issues: [
          { ...issue, fix: "write the values out, or use fewer nested anchors and aliases" },
        ],
      };
    }
    return { ok: false, issues: [syntaxIssue(file, readableError(e))] };
  }
}

/** An error's message without the library's advice (or a stack overflow's wording). */
function readableError(e: unknown): string {
  if (e instanceof RangeError || /call stack/i.test(String((e as Error)?.message))) {
    return `the YAML nests too deeply to be read (anklume reads at most ${MAX_DEPTH} levels)`;
  }
  const msg = String((e as Error)?.message ?? e).split("\n")[0] ?? "";
  return msg.replace(/; please use YAML\.\w+\(\)/, "");
}

type At = (offset: number, message: string, fix: string) => Issue;

/**
 * One pass over the document's nodes, without recursion: refuse nesting
 * deeper than MAX_DEPTH and keys that are mappings or lists (`? [a, b]`), and
 * read numbers as PyYAML does.
 */
function walk(y: YamlModule, root: unknown, at: At): Issue[] {
  const issues: Issue[] = [];
  const stack: [unknown, number][] = [[root, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop() as [unknown, number];
    if (y.isScalar(node)) {
      if (typeof node.value === "number" && node.type === "PLAIN") {
        const src = (node as { source?: string }).source;
        if (typeof src === "string" && !PY_INT.test(src) && !PY_FLOAT.test(src)) node.value = src;
      }
      continue;
    }
    if (!y.isMap(node) && !y.isSeq(node)) continue;
    if (depth >= MAX_DEPTH) {
      issues.push(
        at(
          node.range?.[0] ?? 0,
          `the YAML nests deeper than ${MAX_DEPTH} levels`,
          "flatten it: infra.yml needs only a few levels of mappings and lists",
        ),
      );
      return issues;
    }
    for (const item of node.items) {
      if (y.isPair(item)) {
        if (y.isMap(item.key) || y.isSeq(item.key)) {
          issues.push(
            at(
              (item.key as Node).range?.[0] ?? 0,
              "a mapping or a list is used as a key ('? [a, b]' or '? {a: 1}')",
              "use a plain name as the key",
            ),
          );
          continue;
        }
        stack.push([item.key, depth + 1], [item.value, depth + 1]);
      } else {
        stack.push([item, depth + 1]);
      }
    }
  }
  return issues;
}

/**
 * PyYAML refuses a tab anywhere but inside a quoted or block scalar or a
 * comment (`key:<TAB>value`, a tab in a plain value, tab indentation).
 */
function tabIssues(y: YamlModule, doc: { contents: unknown }, text: string, at: At): Issue[] {
  const spans: [number, number][] = [];
  y.visit(doc as Parameters<typeof y.visit>[0], {
    Scalar(_k, n) {
      if (n.type !== "PLAIN" && n.range) spans.push([n.range[0], n.range[1]]);
    },
  });
  spans.sort((a, b) => a[0] - b[0]);
  const inSpan = (i: number) => spans.some(([s, e]) => i >= s && i < e);
  for (let i = text.indexOf("\t"); i !== -1; i = text.indexOf("\t", i + 1)) {
    if (inSpan(i)) continue;
    // In a comment: a '#' earlier on the line, at its start or after a blank, outside any scalar.
    const lineStart = text.lastIndexOf("\n", i) + 1;
    let comment = false;
    for (let j = text.indexOf("#", lineStart); j !== -1 && j < i; j = text.indexOf("#", j + 1)) {
      if ((j === lineStart || /[ \t]/.test(text[j - 1] as string)) && !inSpan(j)) {
        comment = true;
        break;
      }
    }
    if (comment) continue;
    return [
      at(
        i,
        "a tab character where YAML allows only spaces (after a colon, in indentation, or in a plain value)",
        "replace the tab with spaces, or quote the value if the tab belongs to it",
      ),
    ];
  }
  return [];
}

function syntaxIssue(file: string, message: string): Issue {
  return {
    severity: "error",
    path: [],
    message: `cannot read YAML: ${message}`,
    fix: "fix the YAML syntax",
    file,
  };
}

/** Build a Locator for a text (it parses again: call it only when there is something to report). */
export async function createLocator(text: string): Promise<Locator> {
  return new Locator(text, await loadYaml());
}

/** Maps YAML paths of one file to lines and columns. */
export class Locator {
  private readonly doc: ReturnType<YamlModule["parseDocument"]>;
  private readonly lines: InstanceType<YamlModule["LineCounter"]>;
  private readonly y: YamlModule;

  constructor(text: string, y: YamlModule) {
    this.y = y;
    this.lines = new y.LineCounter();
    this.doc = y.parseDocument(text, {
      version: "1.1",
      uniqueKeys: false,
      lineCounter: this.lines,
    });
  }

  /** Line and column of the value at `path` (or of its key), or of the deepest existing parent. */
  locate(path: YamlPath, atKey = false): { line: number; col: number } | undefined {
    const { isMap, isPair, isSeq } = this.y;
    let node: unknown = this.doc.contents;
    let keyNode: unknown;
    for (const seg of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && this.keyText(p.key) === String(seg));
        if (!pair) break;
        keyNode = pair.key;
        node = pair.value ?? pair.key;
      } else if (isSeq(node) && typeof seg === "number" && seg < node.items.length) {
        keyNode = undefined;
        node = node.items[seg];
      } else {
        break;
      }
    }
    const target = (atKey && keyNode ? keyNode : node) as Node | undefined;
    const offset = target?.range?.[0];
    if (offset === undefined) return undefined;
    return this.lines.linePos(offset);
  }

  private keyText(key: unknown): string {
    return this.y.isScalar(key) ? String(key.value) : String(key);
  }
}
