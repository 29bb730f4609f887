/**
 * Drafting tests for uncovered behaviour-matrix cells through an LLM backend
 * (scripts/ai-matrix-test.ts): the prompt, the request each API expects,
 * reading its answer, and turning the answer into a draft file. Pure; the
 * script does the HTTP and the writing.
 */
import type { UncoveredCell } from "./matrix.ts";

/** The backends: `none` only writes the prompts; the others are HTTP APIs. */
export const MODES = ["none", "ollama", "openai"] as const;
export type Mode = (typeof MODES)[number];

/** Where each API listens by default (a local server; nothing is assumed remote). */
export const DEFAULT_URL: Record<Exclude<Mode, "none">, string> = {
  ollama: "http://127.0.0.1:11434",
  openai: "http://127.0.0.1:8000",
};

const SYSTEM = [
  "You write one test file for anklume, a TypeScript-on-Bun framework that drives Incus and Ansible.",
  "Rules: bun:test; processes only through zx's $ with interpolated arguments; no mocks of tools",
  "that run on the test machine (incus, ansible-playbook, nft, make); tests that need Incus call",
  'incusOrSkip("<file>") from tests/helpers.ts; resources get a random suffix (uniq()) and are removed',
  "afterwards; no timed assertions; a test's title says the behaviour.",
  "Put the comment `// Matrix: <ID>` on the line above the test. Answer with one ```ts block only.",
].join(" ");

/** The user prompt for one cell; `example` is an existing test of the same capability, or "". */
export function buildPrompt(cell: UncoveredCell, description: string, example: string): string {
  const parts = [
    `Behaviour-matrix cell ${cell.id} (capability ${cell.capability}: ${description}; ${cell.depth.replace("_", " ")}).`,
    `Action: ${cell.action}`,
    `Expected: ${cell.expected}`,
    `Write a test that fails when anklume does not behave as expected, and passes when it does.`,
  ];
  if (example.trim() !== "") {
    parts.push(
      "",
      "An existing test of the same capability, for the project's style:",
      "```ts",
      example.trimEnd(),
      "```",
    );
  }
  return parts.join("\n");
}

/** The JSON body of the request for a mode. */
export function requestBody(mode: Exclude<Mode, "none">, model: string, prompt: string): unknown {
  if (mode === "ollama") {
    return { model, prompt: `${SYSTEM}\n\n${prompt}`, stream: false, options: { temperature: 0 } };
  }
  return {
    model,
    temperature: 0,
    messages: [
      { role: "system", content: SYSTEM },
      { role: "user", content: prompt },
    ],
  };
}

/** The path of the API's endpoint under the base URL. */
export function endpoint(mode: Exclude<Mode, "none">, base: string): string {
  const b = base.replace(/\/+$/, "");
  return mode === "ollama" ? `${b}/api/generate` : `${b}/v1/chat/completions`;
}

/** The generated text of an answer, or null when the answer does not have the API's shape. */
export function responseText(mode: Exclude<Mode, "none">, body: unknown): string | null {
  if (body === null || typeof body !== "object") return null;
  if (mode === "ollama") {
    const r = (body as { response?: unknown }).response;
    return typeof r === "string" ? r : null;
  }
  const choices = (body as { choices?: unknown }).choices;
  if (!Array.isArray(choices)) return null;
  const content = (choices[0] as { message?: { content?: unknown } } | undefined)?.message?.content;
  return typeof content === "string" ? content : null;
}

/**
 * The draft file's text: the answer's first fenced block (or the whole answer
 * when it has none), with the cell's `// Matrix:` comment added when the
 * model left it out, under a header saying it is an unreviewed draft.
 */
export function draftText(answer: string, cell: UncoveredCell, source: string): string {
  const fence = /```(?:ts|typescript|js|javascript)?[^\n]*\n([\s\S]*?)```/.exec(answer);
  let code = (fence ? (fence[1] as string) : answer).trim();
  const tag = ["//", "Matrix:"].join(" ");
  if (!new RegExp(`//\\s*Matrix:.*\\b${cell.id}\\b`).test(code)) {
    code = `${tag} ${cell.id}\n${code}`;
  }
  const header = [
    `// DRAFT for ${cell.id}, written by ${source}; not reviewed, not run.`,
    `// Action: ${cell.action}`,
    `// Expected: ${cell.expected}`,
    "// Review it, make it pass for the right reason, then move it into tests/.",
  ].join("\n");
  return `${header}\n\n${code}\n`;
}

/** The draft's and the prompt's file names for a cell. */
export function draftNames(id: string): { draft: string; prompt: string } {
  return { draft: `${id}.test.ts.draft`, prompt: `${id}.prompt.md` };
}
