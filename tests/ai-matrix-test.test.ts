/**
 * scripts/ai-matrix-test.ts against a stand-in for an LLM backend: a small
 * HTTP server on 127.0.0.1, started by this test, that speaks the Ollama and
 * OpenAI-compatible APIs and answers a fixed draft. No model runs here; the
 * test checks the requests, the drafts and where they go.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { $ } from "zx";

const SCRIPT = join(import.meta.dir, "..", "scripts/ai-matrix-test.ts");
const M = "Matrix";
const dirs: string[] = [];

interface Seen {
  path: string;
  auth: string | undefined;
  body: { model?: string; prompt?: string; messages?: { content: string }[] };
}
const seen: Seen[] = [];
let server: Server;
let base = "";

const DRAFT = "```ts\nimport { test } from 'bun:test';\ntest('drafted', () => {});\n```";

function read(req: IncomingMessage): Promise<string> {
  return new Promise((res) => {
    let s = "";
    req.on("data", (c) => {
      s += c;
    });
    req.on("end", () => res(s));
  });
}

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const body = JSON.parse(await read(req));
    seen.push({ path: req.url ?? "", auth: req.headers.authorization, body });
    res.setHeader("content-type", "application/json");
    if (body.model === "broken") {
      res.statusCode = 500;
      res.end('{"error":"model crashed"}');
    } else if (req.url === "/api/generate") {
      res.end(JSON.stringify({ model: body.model, response: `Sure.\n${DRAFT}`, done: true }));
    } else if (req.url === "/v1/chat/completions") {
      res.end(JSON.stringify({ choices: [{ message: { role: "assistant", content: DRAFT } }] }));
    } else {
      res.statusCode = 404;
      res.end("{}");
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const MATRIX = `capabilities:
  demo:
    prefix: DM
    description: demo capability
    depth_1:
      - {id: DM-001, action: first thing, expected: it works, deterministic: true}
      - {id: DM-002, action: second thing, expected: it works too, deterministic: true}
      - {id: DM-003, action: third thing, expected: still works, deterministic: true}
`;

function tree(): string {
  const dir = mkdtempSync(join(tmpdir(), "anklume-ai-"));
  dirs.push(dir);
  mkdirSync(join(dir, "tests"));
  writeFileSync(join(dir, "tests/behavior_matrix.yml"), MATRIX);
  writeFileSync(
    join(dir, "tests/demo.test.ts"),
    `// ${M}: DM-001\ntest("the first thing works", () => {});\n`,
  );
  return dir;
}

const run = (dir: string, ...args: string[]) =>
  $({
    nothrow: true,
    quiet: true,
    cwd: dir,
    env: { ...process.env, ANKLUME_AI_API_KEY: "k-123" },
  })`bun ${SCRIPT} ${args}`;

describe("scripts/ai-matrix-test.ts with a stand-in backend on 127.0.0.1", () => {
  // Matrix: QT-2-002
  test("ollama: one request per uncovered cell, drafts in the review folder with their Matrix line, tests/ untouched", async () => {
    const dir = tree();
    const before = readdirSync(join(dir, "tests")).sort();
    seen.length = 0;
    const r = await run(dir, "--mode", "ollama", "--url", base, "--model", "tiny");
    expect(r.stderr).toContain("Processed: 2  Drafted: 2  Failed: 0  Uncovered: 2");
    expect(r.exitCode).toBe(0);
    expect(seen.map((s) => s.path)).toEqual(["/api/generate", "/api/generate"]);
    expect(seen[0]?.body.model).toBe("tiny");
    expect(seen[0]?.body.prompt).toContain("cell DM-002");
    expect(seen[0]?.body.prompt).toContain("Action: second thing");
    // The example test of the capability is quoted.
    expect(seen[0]?.body.prompt).toContain('test("the first thing works"');
    const drafts = join(dir, "reports/matrix-drafts");
    const d2 = readFileSync(join(drafts, "DM-002.test.ts.draft"), "utf8");
    expect(d2).toContain(`// ${M}: DM-002\nimport { test } from 'bun:test';`);
    expect(existsSync(join(drafts, "DM-003.test.ts.draft"))).toBe(true);
    expect(existsSync(join(drafts, "DM-002.prompt.md"))).toBe(true);
    expect(readdirSync(join(dir, "tests")).sort()).toEqual(before);
  });

  test("openai: the chat endpoint, the API key as a bearer token, --limit honoured", async () => {
    const dir = tree();
    seen.length = 0;
    const r = await run(
      dir,
      "--mode",
      "openai",
      "--url",
      base,
      "--model",
      "m",
      "--limit",
      "1",
      "--out",
      "review",
    );
    expect(r.exitCode).toBe(0);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.path).toBe("/v1/chat/completions");
    expect(seen[0]?.auth).toBe("Bearer k-123");
    expect(seen[0]?.body.messages?.[1]?.content).toContain("cell DM-002");
    expect(readFileSync(join(dir, "review/DM-002.test.ts.draft"), "utf8")).toContain(
      "test('drafted'",
    );
    expect(existsSync(join(dir, "review/DM-003.test.ts.draft"))).toBe(false);
  });

  test("mode none writes the prompts and asks nothing; --dry-run writes nothing", async () => {
    const dir = tree();
    seen.length = 0;
    const r = await run(dir, "--url", base);
    expect(r.exitCode).toBe(0);
    expect(seen).toHaveLength(0);
    expect(readFileSync(join(dir, "reports/matrix-drafts/DM-003.prompt.md"), "utf8")).toContain(
      "third thing",
    );
    const dry = tree();
    const d = await run(dry, "--mode", "ollama", "--url", base, "--model", "m", "--dry-run");
    expect(d.exitCode).toBe(0);
    expect(seen).toHaveLength(0);
    expect(existsSync(join(dry, "reports"))).toBe(false);
  });

  test("a backend error or an unreachable backend fails (exit 1) with what went wrong", async () => {
    const dir = tree();
    const r = await run(
      dir,
      "--mode",
      "ollama",
      "--url",
      base,
      "--model",
      "broken",
      "--limit",
      "1",
    );
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("answered 500");
    expect(r.stderr).toContain("Failed: 1");
    const gone = await run(
      dir,
      "--mode",
      "ollama",
      "--url",
      "http://127.0.0.1:9",
      "--model",
      "m",
      "--limit",
      "1",
    );
    expect(gone.exitCode).toBe(1);
    expect(gone.stderr).toContain(
      "Cannot reach the ollama backend at http://127.0.0.1:9/api/generate",
    );
  });

  test("usage: a review folder inside tests/, an unknown mode or a missing model exit 2; --help exits 0", async () => {
    const dir = tree();
    const inTests = await run(dir, "--out", "tests/drafts");
    expect(inTests.exitCode).toBe(2);
    expect(inTests.stderr).toContain("never straight into the tests");
    expect((await run(dir, "--mode", "gpt")).exitCode).toBe(2);
    expect((await run(dir, "--mode", "ollama")).exitCode).toBe(2);
    expect((await run(dir, "--help")).exitCode).toBe(0);
  });
});
