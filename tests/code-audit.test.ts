/**
 * scripts/code-audit.ts as a command: a small tree written to a temporary
 * directory, its report in text and JSON (the documented keys), the output
 * file, and the exit codes.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { $ } from "zx";

const AUDIT = join(import.meta.dir, "..", "scripts/code-audit.ts");
const dir = mkdtempSync(join(tmpdir(), "anklume-audit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const many = (n: number) => "- name: T | x\n".repeat(n);
const TREE: Record<string, string> = {
  "lib/core/a.ts": "export function a() {\n  return 1;\n}\nexport const UNUSED = 2;\n",
  "lib/core/a.test.ts": 'import { a } from "./a.ts";\na();\n',
  "lib/core/lonely.ts": "export const L = 1;\n",
  "scripts/tool.ts":
    'import { a } from "../lib/core/a.ts";\nexport async function main() {\n  return a();\n}\n',
  "tests/tool.test.ts": 'import { main } from "../scripts/tool.ts";\nmain();\nmain();\nmain();\n',
  "roles/big/tasks/main.yml": many(201),
  "roles/small/tasks/main.yml": many(3),
  "run.sh": "#!/bin/bash\nunused=1\necho hi\n",
  "docs/x.md": "# x\n",
};
for (const [p, t] of Object.entries(TREE)) {
  mkdirSync(dirname(join(dir, p)), { recursive: true });
  writeFileSync(join(dir, p), t);
}

const run = (...args: string[]) => $({ nothrow: true, quiet: true })`bun ${AUDIT} ${args}`;

describe("scripts/code-audit.ts", () => {
  // Matrix: QT-005
  test("--json prints the documented keys and the tree's figures", async () => {
    const r = await run("--json", "--project-dir", dir);
    expect(r.exitCode).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(Object.keys(j)).toEqual([
      "schema",
      "project_dir",
      "summary",
      "line_counts",
      "test_ratios",
      "untested_modules",
      "roles",
      "dead_code",
    ]);
    expect(j.schema).toBe(1);
    expect(j.line_counts.ts_impl).toEqual({ total_lines: 9, file_count: 3 });
    expect(j.line_counts.shell).toEqual({ total_lines: 3, file_count: 1 });
    expect(j.test_ratios["scripts/tool"]).toEqual({
      impl_lines: 4,
      test_lines: 4,
      ratio: 1,
      tests: ["tests/tool.test.ts"],
    });
    expect(j.untested_modules).toEqual(["lib/core/lonely"]);
    expect(
      j.roles.map((x: { name: string; simplification_candidate: boolean }) => [
        x.name,
        x.simplification_candidate,
      ]),
    ).toEqual([
      ["big", true],
      ["small", false],
    ]);
    expect(j.dead_code.unused_exports).toEqual([
      { file: "lib/core/a.ts", name: "UNUSED", line: 4 },
      { file: "lib/core/lonely.ts", name: "L", line: 1 },
    ]);
    expect(j.dead_code.unreached_files).toEqual(["lib/core/lonely.ts"]);
    expect(j.dead_code.shell_unused_variables).toEqual([
      "run.sh:2: unused appears unused. Verify use (or export if used externally). [SC2034]",
    ]);
    expect(j.summary.simplification_candidates).toBe(1);
  });

  test("the text report flags the role over 200 lines and the module without a test", async () => {
    const r = await run("--project-dir", dir);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/big +201 lines +1 files {2}\*\* SIMPLIFICATION CANDIDATE/);
    expect(r.stdout).toMatch(/lib\/core\/lonely +1 +0 +0\.00 {2}<-- no test/);
  });

  test("--output writes the file (directories created) and says so on stderr", async () => {
    const out = join(dir, "reports/audit.json");
    const r = await run("--json", "-o", out, "--project-dir", dir);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(`Report written to ${out}`);
    expect(JSON.parse(readFileSync(out, "utf8")).schema).toBe(1);
  });

  test("--dead-code --json prints only the dead-code object", async () => {
    const r = await run("--dead-code", "--json", "--project-dir", dir);
    expect(Object.keys(JSON.parse(r.stdout))).toEqual([
      "unused_exports",
      "local_only_exports",
      "test_only_exports",
      "unreached_files",
      "shell_unused_variables",
    ]);
  });

  test("--help exits 0; a bad flag exits 2; a project dir that is not a directory exits 1", async () => {
    expect((await run("--help")).exitCode).toBe(0);
    const bad = await run("--bogus");
    expect(bad.exitCode).toBe(2);
    const file = join(dir, "docs/x.md");
    const nodir = await run("--project-dir", file);
    expect(nodir.exitCode).toBe(1);
    expect(nodir.stderr).toContain("not a directory");
    expect(existsSync(file)).toBe(true);
  });
});
