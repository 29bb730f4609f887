/**
 * The pure part of `make lint` (scripts/lint.ts): which validators exist,
 * which files each one reads, the Makefile's targets, shellcheck's findings
 * mapped back to Makefile recipes, and the summary line.
 */
import { parse } from "yaml";

/** Every validator, in the order `make lint` runs them. */
export const VALIDATORS = ["ts", "ansible", "yaml", "shell", "syntax", "md"] as const;
export type Validator = (typeof VALIDATORS)[number];

/** What each validator runs, for --help and docs. */
export const VALIDATOR_TOOLS: Record<Validator, string> = {
  ts: "Biome (lint + format) and tsc --noEmit (strict)",
  ansible: "ansible-lint, production profile (.ansible-lint)",
  yaml: "yamllint --strict (.yamllint.yml)",
  shell: "shellcheck on every shell file and on the Makefile's recipes",
  syntax: "ansible-playbook --syntax-check of every playbook",
  md: "markdownlint (optional: skipped when absent)",
};

/** Directories no validator walks into: not ours, or generated. */
export const SKIP_DIRS = new Set([
  "node_modules",
  ".git",
  ".ansible",
  ".cache",
  ".venv",
  "dist",
  "reports",
  "inventory",
  "group_vars",
  "host_vars",
  "roles_custom",
  "logs",
]);

/** True when a file is a shell script: a `.sh`/`.bash` name or a sh/bash/dash shebang. */
export function isShellScript(name: string, firstLine: string): boolean {
  if (/\.(sh|bash)$/.test(name)) return true;
  return /^#!\s*(\S*\/)?(env\s+)?(ba|da|k)?sh(\s|$)/.test(firstLine);
}

/** The shell files among `files` (path → first line), sorted. */
export function shellFiles(files: Map<string, string>): string[] {
  return [...files]
    .filter(([path, first]) => isShellScript(path.split("/").pop() ?? path, first))
    .map(([path]) => path)
    .sort();
}

/**
 * The explicit targets of a Makefile, in order: rule heads `a b: deps` whose
 * names are plain words (no pattern `%`, no `$(...)`, no special `.TARGET`);
 * variable assignments (`:=`, `::=`, `?=`) are not rules.
 */
export function makeTargets(makefile: string): string[] {
  const out: string[] = [];
  for (const line of makefile.split("\n")) {
    if (line.startsWith("\t") || line.startsWith("#")) continue;
    const m = /^([A-Za-z0-9_./ -]+?)\s*::?(?![=:])/.exec(line);
    if (!m?.[1]) continue;
    if (/^\s*(export|override|define|ifeq|ifneq|ifdef|ifndef)\b/.test(line)) continue;
    for (const name of m[1].trim().split(/\s+/)) {
      if (name.startsWith(".") || name.includes("%") || out.includes(name)) continue;
      out.push(name);
    }
  }
  return out;
}

/**
 * The recipe commands in `make -n` output: each line is one command, a line
 * ending in a backslash continues into the next (make keeps the backslash).
 */
export function dryRunCommands(output: string): string[] {
  const cmds: string[] = [];
  let cur: string[] = [];
  for (const line of output.split("\n")) {
    if (cur.length === 0 && line.trim() === "") continue;
    cur.push(line);
    if (!line.endsWith("\\")) {
      cmds.push(cur.join("\n"));
      cur = [];
    }
  }
  if (cur.length > 0) cmds.push(cur.join("\n"));
  return cmds;
}

/** One shellcheck finding (`-f gcc`: `file:line:col: level: message [SCnnnn]`). */
export interface ShellFinding {
  file: string;
  line: number;
  col: number;
  level: string;
  message: string;
}

/** Parse shellcheck's gcc format; lines that are not findings are ignored. */
export function parseShellcheckGcc(text: string): ShellFinding[] {
  const out: ShellFinding[] = [];
  for (const l of text.split("\n")) {
    const m = /^(.+?):(\d+):(\d+): (\w+): (.*)$/.exec(l);
    if (!m) continue;
    out.push({
      file: m[1] as string,
      line: Number(m[2]),
      col: Number(m[3]),
      level: m[4] as string,
      message: m[5] as string,
    });
  }
  return out;
}

/** A Makefile recipe command as shellcheck saw it, and where it came from. */
export interface RecipeSnippet {
  target: string;
  command: string;
}

/** Lines of the snippet file that precede the command (the shebang and a comment). */
export const SNIPPET_HEADER_LINES = 2;

/** The file shellcheck reads for one recipe command. */
export function snippetText(s: RecipeSnippet): string {
  return `#!/bin/bash\n# Makefile target ${s.target}\n${s.command}\n`;
}

/** A finding in a recipe snippet, told as the Makefile target and the command's own line. */
export function describeRecipeFinding(s: RecipeSnippet, f: ShellFinding): string {
  const line = f.line - SNIPPET_HEADER_LINES;
  const text = s.command.split("\n")[line - 1]?.trim() ?? "";
  return `Makefile: recipe of target '${s.target}', command line ${line}: ${f.level}: ${f.message}\n    ${text}`;
}

/**
 * Distinct recipe commands over all targets: a command printed for several
 * targets (a prerequisite's recipe, a shared macro) is checked once, under
 * the first target that printed it.
 */
export function distinctSnippets(perTarget: [string, string[]][]): RecipeSnippet[] {
  const seen = new Set<string>();
  const out: RecipeSnippet[] = [];
  for (const [target, cmds] of perTarget) {
    for (const command of cmds) {
      if (seen.has(command)) continue;
      seen.add(command);
      out.push({ target, command });
    }
  }
  return out;
}

/**
 * True when a YAML text is an Ansible playbook: a list of plays, each a
 * mapping with `hosts` or `import_playbook`. Unparsable text is not one (yamllint
 * reports it).
 */
export function isPlaybook(text: string): boolean {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch {
    return false;
  }
  if (!Array.isArray(doc) || doc.length === 0) return false;
  return doc.every(
    (p) =>
      p !== null &&
      typeof p === "object" &&
      ("hosts" in p || "import_playbook" in p || "ansible.builtin.import_playbook" in p),
  );
}

/** The outcome of one validator. */
export interface LintResult {
  validator: Validator;
  status: "ok" | "fail" | "skipped";
  detail: string;
}

/** Parse validator names from the command line; unknown ones are returned apart. */
export function selectValidators(names: string[]): { selected: Validator[]; unknown: string[] } {
  if (names.length === 0 || names.includes("all"))
    return { selected: [...VALIDATORS], unknown: [] };
  const known = new Set<string>(VALIDATORS);
  const unknown = names.filter((n) => !known.has(n));
  const selected = VALIDATORS.filter((v) => names.includes(v));
  return { selected, unknown };
}

/** The closing report: one line per validator, then the verdict. */
export function summarize(results: LintResult[]): { text: string; failed: number } {
  const failed = results.filter((r) => r.status === "fail").length;
  const lines = results.map(
    (r) => `  ${r.validator.padEnd(8)} ${r.status.toUpperCase().padEnd(8)} ${r.detail}`,
  );
  const verdict =
    failed === 0
      ? `lint: all ${results.length - results.filter((r) => r.status === "skipped").length} validator(s) passed`
      : `lint: ${failed} of ${results.length} validator(s) failed`;
  return { text: `${lines.join("\n")}\n${verdict}`, failed };
}
