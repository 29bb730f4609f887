#!/usr/bin/env bun
// Usage: bun scripts/ai-matrix-test.ts [options]
//
// Draft tests for the behaviour-matrix cells no test covers yet, through an
// LLM backend, for a person to review: drafts go to a review folder
// (default reports/matrix-drafts/), never into tests/. For each uncovered
// cell (the first --limit, in matrix order) it builds a prompt from the
// cell, its capability and an existing test of that capability, asks the
// backend, and writes <ID>.test.ts.draft (with its `// Matrix: <ID>` line)
// beside <ID>.prompt.md. `make matrix-generate AI_MODE=...` runs it.
//
// Modes (--mode, or $ANKLUME_AI_MODE; default none):
//   none     write the prompts only; no backend is asked
//   ollama   POST <url>/api/generate              (default url http://127.0.0.1:11434)
//   openai   POST <url>/v1/chat/completions, any OpenAI-compatible server
//            (default url http://127.0.0.1:8000; $ANKLUME_AI_API_KEY, when
//            set, is sent as a bearer token)
//
// Options:
//   --mode MODE        none | ollama | openai
//   --url URL          the backend's base URL ($ANKLUME_AI_URL)
//   --model NAME       the model to ask ($ANKLUME_AI_MODEL); required but for none
//   --limit N          at most N cells (default 10)
//   --out DIR          the review folder (default reports/matrix-drafts); a
//                      folder inside tests/ is refused
//   --matrix FILE      the matrix (default tests/behavior_matrix.yml)
//   --root DIR         the project tree (default: the current directory)
//   --timeout SEC      per request (default 300)
//   --dry-run          list the cells and what would be asked; write nothing
//   -h, --help         show this help
//
// Prints "Processed: N  Drafted: D  Failed: F  Uncovered: U" at the end.
// Exit: 0 success, 1 a backend failed or the matrix is invalid, 2 usage error.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import process from "node:process";
import { paint, parseCli, runMain, say, topComment, UsageError } from "../lib/core/cli.ts";
import {
  buildPrompt,
  DEFAULT_URL,
  draftNames,
  draftText,
  endpoint,
  MODES,
  type Mode,
  requestBody,
  responseText,
} from "../lib/quality/ai-draft.ts";
import {
  coverage,
  type Matrix,
  MatrixError,
  type MatrixRef,
  parseMatrix,
} from "../lib/quality/matrix.ts";
import { scanRefs } from "../lib/quality/matrix-scan.ts";

const USAGE = topComment(import.meta.url);

/** Up to 60 lines of an existing test of the capability: the lines after its first reference to one of `ids`. */
function example(root: string, refs: MatrixRef[], ids: Set<string>): string {
  const ref = refs.find((r) => ids.has(r.id));
  if (!ref) return "";
  try {
    const lines = readFileSync(join(root, ref.file), "utf8").split("\n");
    return lines.slice(ref.line - 1, ref.line + 59).join("\n");
  } catch {
    return "";
  }
}

/** Ask the backend; the generated text, or an Error saying what went wrong. */
async function ask(
  mode: Exclude<Mode, "none">,
  url: string,
  model: string,
  prompt: string,
  timeoutSec: number,
): Promise<string | Error> {
  const to = endpoint(mode, url);
  const headers: Record<string, string> = { "content-type": "application/json" };
  const key = process.env.ANKLUME_AI_API_KEY;
  if (mode === "openai" && key) headers.authorization = `Bearer ${key}`;
  let res: Response;
  try {
    res = await fetch(to, {
      method: "POST",
      headers,
      body: JSON.stringify(requestBody(mode, model, prompt)),
      signal: AbortSignal.timeout(timeoutSec * 1000),
    });
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
    return new Error(
      `Cannot reach the ${mode} backend at ${to} (${cause}); start it or pass --url`,
    );
  }
  const body = await res.text();
  if (!res.ok) {
    return new Error(`The ${mode} backend at ${to} answered ${res.status}: ${body.slice(0, 200)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return new Error(`The ${mode} backend at ${to} did not answer JSON: ${body.slice(0, 200)}`);
  }
  const text = responseText(mode, json);
  if (text === null) {
    return new Error(`The answer of ${to} has no generated text where the ${mode} API puts it`);
  }
  return text;
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(argv, {
    help: { type: "boolean", short: "h" },
    mode: { type: "string" },
    url: { type: "string" },
    model: { type: "string" },
    limit: { type: "string" },
    out: { type: "string" },
    matrix: { type: "string" },
    root: { type: "string" },
    timeout: { type: "string" },
    "dry-run": { type: "boolean" },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const mode = (values.mode ?? process.env.ANKLUME_AI_MODE ?? "none") as Mode;
  if (!MODES.includes(mode)) {
    throw new UsageError(`unknown mode "${mode}"; choose from ${MODES.join(", ")}`);
  }
  const limit = Number(values.limit ?? "10");
  if (!Number.isInteger(limit) || limit < 1) {
    throw new UsageError(`--limit "${values.limit}" is not a whole number of cells (1 or more)`);
  }
  const timeout = Number(values.timeout ?? "300");
  if (!(timeout > 0))
    throw new UsageError(`--timeout "${values.timeout}" is not a number of seconds`);
  const model = values.model ?? process.env.ANKLUME_AI_MODEL ?? "";
  if (mode !== "none" && model === "") {
    throw new UsageError(`--mode ${mode} needs a model: --model NAME (or ANKLUME_AI_MODEL)`);
  }
  const url =
    values.url ?? process.env.ANKLUME_AI_URL ?? (mode === "none" ? "" : DEFAULT_URL[mode]);
  const root = resolve(values.root ?? ".");
  const out = resolve(root, values.out ?? "reports/matrix-drafts");
  const rel = relative(join(root, "tests"), out);
  if (rel === "" || (!rel.startsWith("..") && !rel.startsWith("/"))) {
    throw new UsageError(
      `--out "${values.out}" is inside tests/: drafts go to a review folder, never straight into the tests`,
    );
  }

  const file = values.matrix ?? join(root, "tests/behavior_matrix.yml");
  let matrix: Matrix;
  try {
    matrix = parseMatrix(readFileSync(file, "utf8"), file);
  } catch (e) {
    if (e instanceof MatrixError) say(`${paint("red", "error:")} ${e.message}`);
    else say(`${paint("red", "error:")} Cannot read the matrix "${file}": ${(e as Error).message}`);
    return 1;
  }
  const refs = scanRefs(root);
  const cov = coverage(matrix, refs);
  const cells = cov.uncovered.slice(0, limit);
  say(
    `${cov.uncovered.length} uncovered cell(s); drafting ${cells.length} with ${mode === "none" ? "no backend (prompts only)" : `${mode} at ${url}, model ${model}`}`,
  );
  if (!values["dry-run"]) mkdirSync(out, { recursive: true });

  let drafted = 0;
  let failed = 0;
  for (const cell of cells) {
    const cap = matrix.capabilities[cell.capability];
    const ids = new Set(
      [...(cap?.depth_1 ?? []), ...(cap?.depth_2 ?? []), ...(cap?.depth_3 ?? [])].map((c) => c.id),
    );
    const prompt = buildPrompt(cell, cap?.description ?? "", example(root, refs, ids));
    const names = draftNames(cell.id);
    if (values["dry-run"]) {
      say(
        `  ${cell.id}: would ${mode === "none" ? "write the prompt" : `ask ${endpoint(mode, url)}`} -> ${join(out, mode === "none" ? names.prompt : names.draft)}`,
      );
      continue;
    }
    writeFileSync(join(out, names.prompt), `${prompt}\n`);
    if (mode === "none") {
      say(`  ${cell.id}: prompt written to ${join(out, names.prompt)}`);
      continue;
    }
    const answer = await ask(mode, url, model, prompt, timeout);
    if (answer instanceof Error) {
      failed++;
      say(`  ${cell.id}: ${paint("red", "FAIL")} ${answer.message}`);
      continue;
    }
    writeFileSync(join(out, names.draft), draftText(answer, cell, `${mode} model ${model}`));
    drafted++;
    say(`  ${cell.id}: draft written to ${join(out, names.draft)}`);
  }
  say(
    `Processed: ${cells.length}  Drafted: ${drafted}  Failed: ${failed}  Uncovered: ${cov.uncovered.length}`,
  );
  if (drafted > 0)
    say(`Review the drafts in ${out}; move a reviewed one into tests/ as <name>.test.ts.`);
  return failed > 0 ? 1 : 0;
}

if (import.meta.main) await runMain(main, USAGE);
