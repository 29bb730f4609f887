import { describe, expect, test } from "bun:test";
import {
  buildPrompt,
  draftNames,
  draftText,
  endpoint,
  requestBody,
  responseText,
} from "./ai-draft.ts";
import type { UncoveredCell } from "./matrix.ts";

const M = "Matrix";
const CELL: UncoveredCell = {
  id: "SN-004",
  capability: "snapshots",
  depth: "depth_1",
  action: "make snap-delete",
  expected: "only the named snapshot is removed",
};

describe("buildPrompt()", () => {
  test("names the cell, its capability, action and expectation, and quotes the example", () => {
    const p = buildPrompt(CELL, "snapshots by make", "test('x', () => {})\n");
    expect(p).toContain("cell SN-004 (capability snapshots: snapshots by make; depth 1)");
    expect(p).toContain("Action: make snap-delete");
    expect(p).toContain("Expected: only the named snapshot is removed");
    expect(p).toContain("```ts\ntest('x', () => {})\n```");
    expect(buildPrompt(CELL, "d", "")).not.toContain("```");
  });
});

describe("requests and answers of the two APIs", () => {
  test("Ollama: /api/generate, one prompt, no streaming; the text is `response`", () => {
    expect(endpoint("ollama", "http://127.0.0.1:11434/")).toBe(
      "http://127.0.0.1:11434/api/generate",
    );
    const b = requestBody("ollama", "m", "P") as { model: string; prompt: string; stream: boolean };
    expect(b.model).toBe("m");
    expect(b.stream).toBe(false);
    expect(b.prompt.endsWith("\n\nP")).toBe(true);
    expect(responseText("ollama", { response: "hi" })).toBe("hi");
    expect(responseText("ollama", { choices: [] })).toBeNull();
  });
  test("OpenAI-compatible: /v1/chat/completions, system then user; the text is the first choice's content", () => {
    expect(endpoint("openai", "http://h:8000")).toBe("http://h:8000/v1/chat/completions");
    const b = requestBody("openai", "m", "P") as { messages: { role: string; content: string }[] };
    expect(b.messages.map((x) => x.role)).toEqual(["system", "user"]);
    expect(b.messages[1]?.content).toBe("P");
    expect(responseText("openai", { choices: [{ message: { content: "hi" } }] })).toBe("hi");
    expect(responseText("openai", { response: "hi" })).toBeNull();
    expect(responseText("openai", "text")).toBeNull();
  });
});

describe("draftText()", () => {
  test("keeps the first fenced block and adds the Matrix line the model left out", () => {
    const d = draftText(
      "Here:\n```ts\ntest('a', () => {});\n```\nmore\n```ts\nno\n```",
      CELL,
      "ollama model m",
    );
    expect(d).toContain("// DRAFT for SN-004, written by ollama model m; not reviewed, not run.");
    expect(d).toContain(`// ${M}: SN-004\ntest('a', () => {});\n`);
    expect(d).not.toContain("no\n");
  });
  test("does not add the Matrix line twice; an answer without a fence is taken whole", () => {
    const d = draftText(`// ${M}: SN-004\ntest('b', () => {});`, CELL, "s");
    expect(d.split(`${M}: SN-004`)).toHaveLength(2);
    expect(draftNames("SN-004")).toEqual({
      draft: "SN-004.test.ts.draft",
      prompt: "SN-004.prompt.md",
    });
  });
});
