#!/usr/bin/env bun
// Usage: bun scripts/lint.ts [VALIDATOR...] [options]
//
// Run anklume's validators (SPEC-operations section 9) and report each one's
// result; `make lint` runs them all, `make lint-<name>` one. Validators:
//   ts       Biome (lint + format check) and tsc --noEmit (strict)
//   ansible  ansible-lint, production profile (.ansible-lint), 0 violations
//   yaml     yamllint --strict with .yamllint.yml, every YAML file we own
//   shell    shellcheck on every shell file (a .sh name or a sh/bash shebang)
//            and on every Makefile recipe, as `make -n` expands it
//   syntax   ansible-playbook --syntax-check of every playbook (top-level
//            *.yml holding a list of plays)
//   md       markdownlint-cli2 or markdownlint on every *.md; optional:
//            skipped, with a message, when neither is installed
// No VALIDATOR (or "all") runs them all, in that order.
//
// Options:
//   --root DIR   the project tree to check (default: the current directory)
//   --json       print [{validator, status, detail}] on stdout
//   -h, --help   show this help
//
// Tools are looked up in $ANKLUME_VENV/bin (default /opt/anklume/venv, where
// bootstrap.sh installs ansible-lint and yamllint), then node_modules/.bin,
// then PATH. A missing required tool fails its validator.
// Exit: 0 every validator passed (or was skipped), 1 any failed, 2 usage error.
import { Buffer } from "node:buffer";
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { $ } from "zx";
import { paint, parseCli, runMain, say, topComment, UsageError } from "../lib/core/cli.ts";
import {
  describeRecipeFinding,
  distinctSnippets,
  dryRunCommands,
  isPlaybook,
  type LintResult,
  makeTargets,
  parseShellcheckGcc,
  SKIP_DIRS,
  selectValidators,
  shellFiles,
  snippetText,
  summarize,
  VALIDATOR_TOOLS,
  VALIDATORS,
  type Validator,
} from "../lib/quality/lint.ts";
import { walkFiles } from "../lib/quality/walk.ts";

const USAGE = topComment(import.meta.url);
const HERE = dirname(dirname(fileURLToPath(import.meta.url)));

/** The directories searched for a tool, in order. */
function toolDirs(root: string): string[] {
  const venv = process.env.ANKLUME_VENV ?? "/opt/anklume/venv";
  return [
    join(venv, "bin"),
    join(root, "node_modules", ".bin"),
    join(HERE, "node_modules", ".bin"),
    ...(process.env.PATH ?? "").split(delimiter).filter((d) => d !== ""),
  ];
}

/** The path of a tool, or null when it is nowhere. */
function findTool(root: string, name: string): string | null {
  for (const d of toolDirs(root)) {
    const p = join(d, name);
    if (existsSync(p)) return p;
  }
  return null;
}

/** The environment of every tool: the venv first on PATH (ansible-lint runs ansible-playbook). */
function toolEnv(root: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: toolDirs(root).join(delimiter) };
  // A validator started by `make lint` must not inherit the outer make's flags.
  delete env.MAKEFLAGS;
  delete env.MAKELEVEL;
  delete env.MFLAGS;
  return env;
}

interface Run {
  code: number;
  out: string;
}

/** Run a tool in `root`, capturing its output (never throws on a non-zero exit). */
async function run(
  root: string,
  cmd: string,
  args: string[],
  extraEnv: Record<string, string> = {},
): Promise<Run> {
  const p = await $({
    cwd: root,
    env: { ...toolEnv(root), ...extraEnv },
    quiet: true,
    nothrow: true,
    stdio: ["ignore", "pipe", "pipe"],
  })`${cmd} ${args}`.timeout("600s");
  return {
    code: p.exitCode ?? 1,
    out: `${p.stdout}${p.stderr}`.trimEnd().replace(/^(\s*\n)+/, ""),
  };
}

/** Print a tool's output, indented, to stderr. */
function show(out: string): void {
  if (out !== "") say(out.replace(/^/gm, "    "));
}

function missing(v: Validator, tool: string, hint: string): LintResult {
  say(`    ${tool} is not installed; ${hint}`);
  return { validator: v, status: "fail", detail: `${tool} not found (${hint})` };
}

const VENV_HINT = "run bash bootstrap.sh (it installs it into the Ansible venv)";

async function lintTs(root: string): Promise<LintResult> {
  const biome = findTool(root, "biome");
  const tsc = findTool(root, "tsc");
  if (biome === null) return missing("ts", "biome", "run bun install");
  if (tsc === null) return missing("ts", "tsc", "run bun install");
  const b = await run(root, biome, ["check", "."]);
  show(b.out);
  const t = await run(root, tsc, ["--noEmit"]);
  show(t.out);
  const failed = [b.code !== 0 ? "biome" : "", t.code !== 0 ? "tsc" : ""].filter(Boolean);
  return {
    validator: "ts",
    status: failed.length ? "fail" : "ok",
    detail: failed.length ? `${failed.join(" and ")} failed` : "biome and tsc clean",
  };
}

async function lintAnsible(root: string): Promise<LintResult> {
  const tool = findTool(root, "ansible-lint");
  if (tool === null) return missing("ansible", "ansible-lint", VENV_HINT);
  const r = await run(root, tool, ["--nocolor", "--format=pep8"]);
  show(r.out);
  const m = /(\d+) failure\(s\), (\d+) warning\(s\) in (\d+) files/.exec(r.out);
  const detail = m
    ? `${m[1]} violation(s), ${m[2]} warning(s) in ${m[3]} file(s)`
    : `exit ${r.code}`;
  return { validator: "ansible", status: r.code === 0 ? "ok" : "fail", detail };
}

async function lintYaml(root: string): Promise<LintResult> {
  const tool = findTool(root, "yamllint");
  if (tool === null) return missing("yaml", "yamllint", VENV_HINT);
  if (!existsSync(join(root, ".yamllint.yml"))) {
    say("    no .yamllint.yml in the project root");
    return { validator: "yaml", status: "fail", detail: "no .yamllint.yml" };
  }
  const r = await run(root, tool, ["--strict", "-f", "parsable", "-c", ".yamllint.yml", "."]);
  show(r.out);
  const n = r.out.split("\n").filter((l) => / \[(error|warning)\] /.test(l)).length;
  return {
    validator: "yaml",
    status: r.code === 0 ? "ok" : "fail",
    detail: r.code === 0 ? "no problem" : `${n} problem(s)`,
  };
}

/** The first line of a file (at most 200 bytes read). */
function firstLine(path: string): string {
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.alloc(200);
    const n = readSync(fd, buf, 0, 200, 0);
    return buf.subarray(0, n).toString("utf8").split("\n")[0] ?? "";
  } finally {
    closeSync(fd);
  }
}

/** shellcheck on the Makefile's recipes: each target's `make -n` commands, checked once each. */
async function makefileFindings(
  root: string,
  shellcheck: string,
): Promise<{ problems: string[]; commands: number }> {
  const make = findTool(root, "make");
  if (make === null) {
    return {
      problems: ["make is not installed: the Makefile's recipes were not checked"],
      commands: 0,
    };
  }
  const targets = makeTargets(readFileSync(join(root, "Makefile"), "utf8"));
  const perTarget: [string, string[]][] = [];
  const problems: string[] = [];
  for (const t of targets) {
    // MAKE=: keeps a recursive $(MAKE) line (run even under -n) from running
    // anything; the variables some targets require get placeholder values.
    const r = await run(root, make, [
      "-n",
      "-B",
      "--no-print-directory",
      "-f",
      "Makefile",
      t,
      "MAKE=:",
      "I=inst",
      "S=snap",
      "G=dom",
    ]);
    if (r.code !== 0) {
      problems.push(`Makefile: make -n ${t} failed: ${r.out.split("\n").pop()}`);
      continue;
    }
    perTarget.push([t, dryRunCommands(r.out)]);
  }
  const snippets = distinctSnippets(perTarget);
  const dir = mkdtempSync(join(tmpdir(), "anklume-lint-make-"));
  try {
    const files = snippets.map((s, i) => {
      const f = join(dir, `recipe-${String(i).padStart(3, "0")}.sh`);
      writeFileSync(f, snippetText(s));
      return f;
    });
    if (files.length === 0) return { problems, commands: 0 };
    const r = await run(root, shellcheck, ["-s", "bash", "-f", "gcc", ...files]);
    for (const f of parseShellcheckGcc(r.out)) {
      const i = files.indexOf(f.file);
      const s = snippets[i];
      if (s) problems.push(describeRecipeFinding(s, f));
    }
    if (r.code !== 0 && problems.length === 0) problems.push(`shellcheck failed: ${r.out}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { problems, commands: snippets.length };
}

async function lintShell(root: string): Promise<LintResult> {
  const tool = findTool(root, "shellcheck");
  if (tool === null)
    return missing("shell", "shellcheck", "apt-get install shellcheck (bootstrap.sh does)");
  const heads = new Map<string, string>();
  for (const f of walkFiles(root, SKIP_DIRS)) heads.set(f, firstLine(join(root, f)));
  const files = shellFiles(heads);
  let fileProblems = 0;
  if (files.length > 0) {
    say(`    shell files: ${files.join(" ")}`);
    const r = await run(root, tool, ["-x", "-f", "gcc", ...files]);
    show(r.out);
    fileProblems = parseShellcheckGcc(r.out).length;
    if (r.code !== 0 && fileProblems === 0) fileProblems = 1;
  }
  let recipes = { problems: [] as string[], commands: 0 };
  if (existsSync(join(root, "Makefile"))) {
    recipes = await makefileFindings(root, tool);
    show(recipes.problems.join("\n"));
  }
  const n = fileProblems + recipes.problems.length;
  return {
    validator: "shell",
    status: n === 0 ? "ok" : "fail",
    detail: `${files.length} file(s) and ${recipes.commands} Makefile recipe command(s): ${n} finding(s)`,
  };
}

async function lintSyntax(root: string): Promise<LintResult> {
  const tool = findTool(root, "ansible-playbook");
  if (tool === null) return missing("syntax", "ansible-playbook", VENV_HINT);
  const playbooks = walkFiles(root, SKIP_DIRS)
    .filter((f) => !f.includes("/") && /\.ya?ml$/.test(f))
    .filter((f) => isPlaybook(readFileSync(join(root, f), "utf8")));
  if (playbooks.length === 0) {
    say("    no playbook found (a top-level *.yml holding a list of plays)");
    return { validator: "syntax", status: "fail", detail: "no playbook found" };
  }
  // Before `make sync` there is no inventory; the syntax does not depend on
  // one, so an empty one stands in (no warning about a missing source).
  const env = { ANSIBLE_LOCALHOST_WARNING: "False" };
  const hasInventory = existsSync(join(root, "inventory"));
  const dir = hasInventory ? null : mkdtempSync(join(tmpdir(), "anklume-lint-inv-"));
  const inv: string[] = [];
  if (dir !== null) {
    writeFileSync(join(dir, "empty.yml"), "all:\n  hosts: {}\n");
    inv.push("-i", join(dir, "empty.yml"));
  }
  const failed: string[] = [];
  try {
    for (const p of playbooks) {
      const r = await run(root, tool, ["--syntax-check", ...inv, p], env);
      show(r.out);
      if (r.code !== 0) failed.push(p);
    }
  } finally {
    if (dir !== null) rmSync(dir, { recursive: true, force: true });
  }
  return {
    validator: "syntax",
    status: failed.length ? "fail" : "ok",
    detail: failed.length ? `failed: ${failed.join(", ")}` : `${playbooks.join(", ")} parse`,
  };
}

async function lintMd(root: string): Promise<LintResult> {
  const tool = findTool(root, "markdownlint-cli2") ?? findTool(root, "markdownlint");
  if (tool === null) {
    say("    markdownlint is not installed: skipped (npm install -g markdownlint-cli2 enables it)");
    return { validator: "md", status: "skipped", detail: "markdownlint not installed" };
  }
  const files = walkFiles(root, SKIP_DIRS).filter((f) => f.endsWith(".md"));
  const r = await run(root, tool, files);
  show(r.out);
  return {
    validator: "md",
    status: r.code === 0 ? "ok" : "fail",
    detail: `${files.length} file(s)${r.code === 0 ? "" : ": findings above"}`,
  };
}

const RUNNERS: Record<Validator, (root: string) => Promise<LintResult>> = {
  ts: lintTs,
  ansible: lintAnsible,
  yaml: lintYaml,
  shell: lintShell,
  syntax: lintSyntax,
  md: lintMd,
};

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(argv, {
    help: { type: "boolean", short: "h" },
    root: { type: "string" },
    json: { type: "boolean" },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { selected, unknown } = selectValidators(positionals);
  if (unknown.length > 0) {
    throw new UsageError(
      `unknown validator "${unknown[0]}"; choose from ${VALIDATORS.join(", ")} or all`,
    );
  }
  const root = resolve(values.root ?? ".");
  if (!existsSync(root)) {
    say(`${paint("red", "error:")} Cannot lint "${values.root}": no such directory`);
    return 1;
  }
  const results: LintResult[] = [];
  for (const v of selected) {
    say(paint("bold", `==> lint-${v}: ${VALIDATOR_TOOLS[v]}`));
    const r = await RUNNERS[v](root);
    const colour = r.status === "ok" ? "green" : r.status === "fail" ? "red" : "yellow";
    say(`    ${paint(colour, r.status.toUpperCase())}: ${r.detail}`);
    results.push(r);
  }
  const { text, failed } = summarize(results);
  if (results.length > 1) say(`\n${text}`);
  if (values.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  return failed === 0 ? 0 : 1;
}

if (import.meta.main) await runMain(main, USAGE);
