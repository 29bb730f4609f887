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

/** Parse with the `yaml` package in YAML 1.1 mode, reporting errors with positions. */
export async function parseExact(text: string, file: string): Promise<ParseResult> {
  const { LineCounter, parseDocument } = await loadYaml();
  const lineCounter = new LineCounter();
  let doc: ReturnType<typeof parseDocument>;
  try {
    doc = parseDocument(text, {
      version: "1.1",
      uniqueKeys: true,
      lineCounter,
      prettyErrors: false,
    });
  } catch (e) {
    return { ok: false, issues: [syntaxIssue(file, (e as Error).message)] };
  }
  if (doc.errors.length > 0) {
    return {
      ok: false,
      issues: doc.errors.slice(0, 10).map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        const msg = e.message.split("\n")[0] ?? e.message;
        const dup = e.code === "DUPLICATE_KEY";
        return {
          ...syntaxIssue(file, dup ? "this key appears twice in the same mapping" : msg),
          fix: dup
            ? "keep one of the two entries (YAML would silently drop the other)"
            : "fix the YAML syntax at this line (indentation, quotes, colons)",
          line: pos.line,
          col: pos.col,
        };
      }),
    };
  }
  try {
    return { ok: true, value: doc.toJS({ maxAliasCount: 1000 }) ?? null };
  } catch (e) {
    return { ok: false, issues: [syntaxIssue(file, (e as Error).message)] };
  }
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
