/**
 * `make lint`'s validators catch what they are for: each test copies a small
 * clean tree (with the repository's own .ansible-lint and .yamllint.yml) to a
 * temporary directory, plants one fault, runs scripts/lint.ts on it and
 * asserts a non-zero exit and the validator's message. The clean tree passes,
 * so the planted fault is what fails.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { $ } from "zx";

const ROOT = join(import.meta.dir, "..");
const LINT = join(ROOT, "scripts/lint.ts");
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const CLEAN: Record<string, string> = {
  "site.yml": `---
- name: Demo | Configure the host
  hosts: all
  gather_facts: false
  roles:
    - role: demo
`,
  "roles/demo/tasks/main.yml": `---
- name: Demo | Show a greeting
  ansible.builtin.debug:
    msg: "{{ demo_greeting }}"
`,
  "roles/demo/defaults/main.yml": `---
demo_greeting: hello
`,
  "roles/demo/meta/main.yml": `---
galaxy_info:
  author: anklume
  description: A role for the lint tests
  license: AGPL-3.0-or-later
  min_ansible_version: "2.16"
  platforms:
    - name: Debian
      versions: [bookworm]
dependencies: []
`,
  "scripts/hello.sh": `#!/usr/bin/env bash
set -euo pipefail
name=\${1:-world}
echo "hello, $name"
`,
  Makefile: `SHELL := /bin/bash
.PHONY: hello
hello: ## Say hello
\t@bash scripts/hello.sh "$(NAME)"
`,
};

/** A fresh clean tree, with `faults` (path -> content) written over it. */
function tree(faults: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "anklume-lint-"));
  dirs.push(dir);
  for (const cfg of [".ansible-lint", ".yamllint.yml"])
    copyFileSync(join(ROOT, cfg), join(dir, cfg));
  for (const [path, text] of Object.entries({ ...CLEAN, ...faults })) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

async function lint(dir: string, ...validators: string[]) {
  const r = await $({ nothrow: true, quiet: true })`bun ${LINT} ${validators} --root ${dir}`;
  return { code: r.exitCode, out: r.stdout + r.stderr };
}

describe("scripts/lint.ts on a planted fault", () => {
  test("the clean tree passes ansible-lint, yamllint, shellcheck and the syntax check", async () => {
    const r = await lint(tree(), "ansible", "yaml", "shell", "syntax");
    expect(r.out).toContain("lint: all 4 validator(s) passed");
    expect(r.code).toBe(0);
  }, 120_000);

  // Matrix: QT-001
  test("ansible-lint (production profile) fails on a task without a name", async () => {
    const dir = tree({
      "roles/demo/tasks/main.yml": `---
- ansible.builtin.debug:
    msg: "{{ demo_greeting }}"
`,
    });
    const r = await lint(dir, "ansible");
    expect(r.code).toBe(1);
    expect(r.out).toContain("name[missing]");
    expect(r.out).toContain("roles/demo/tasks/main.yml");
  }, 120_000);

  // Matrix: QT-002
  test("yamllint fails on a duplicate key, with the file and line", async () => {
    const dir = tree({
      "roles/demo/defaults/main.yml": `---
demo_greeting: hello
demo_greeting: again
`,
    });
    const r = await lint(dir, "yaml");
    expect(r.code).toBe(1);
    expect(r.out).toContain("roles/demo/defaults/main.yml:3:1: [error] duplication of key");
  }, 60_000);

  test("yamllint does not read the generated trees (inventory/ is the generator's)", async () => {
    const dir = tree({ "inventory/lab.yml": "a: 1\na: 2\n" });
    const r = await lint(dir, "yaml");
    expect(r.code).toBe(0);
  }, 60_000);

  // Matrix: QT-003
  test("shellcheck fails on an unquoted variable in a shell file found by its shebang", async () => {
    const dir = tree({
      "scripts/clean": `#!/bin/bash
target=$1
rm -rf $target
`,
    });
    const r = await lint(dir, "shell");
    expect(r.code).toBe(1);
    expect(r.out).toContain("scripts/clean:3:8: note: Double quote to prevent globbing");
    expect(r.out).toContain("SC2086");
  }, 60_000);

  // Matrix: QT-003
  test("shellcheck fails on a quoting error in a Makefile recipe, naming the target", async () => {
    const dir = tree({
      Makefile: `${CLEAN.Makefile}
clean: ## Delete the build
\trm -rf $$BUILD_DIR/*
`,
    });
    const r = await lint(dir, "shell");
    expect(r.code).toBe(1);
    expect(r.out).toContain("Makefile: recipe of target 'clean', command line 1");
    expect(r.out).toContain("SC2115");
  }, 60_000);

  // Matrix: QT-004
  test("the syntax check fails on a playbook whose task has an unknown keyword", async () => {
    const dir = tree({
      "site.yml": `---
- name: Demo | Configure the host
  hosts: all
  gather_facts: false
  tasks:
    - name: Demo | Show a greeting
      ansible.builtin.debug:
        msg: hi
      no_such_keyword: true
`,
    });
    const r = await lint(dir, "syntax");
    expect(r.code).toBe(1);
    expect(r.out).toContain("no_such_keyword");
    expect(r.out).toContain("failed: site.yml");
  }, 60_000);
});

describe("optional markdownlint", () => {
  test("lint-md is skipped with a message, not failed, when markdownlint is not installed", async () => {
    const dir = tree({ "README.md": "# Demo\n" });
    const env = { ...process.env, PATH: "/usr/bin:/bin", ANKLUME_VENV: "/nonexistent" };
    const r = await $({
      nothrow: true,
      quiet: true,
      env,
    })`${process.execPath} ${LINT} md --root ${dir}`;
    expect(r.stderr).toContain("markdownlint is not installed: skipped");
    expect(r.stderr).toContain("SKIPPED: markdownlint not installed");
    expect(r.exitCode).toBe(0);
  });
});

describe("scripts/lint.ts command line", () => {
  test("--help exits 0 and names every validator", async () => {
    const r = await $({ nothrow: true, quiet: true })`bun ${LINT} --help`;
    expect(r.exitCode).toBe(0);
    for (const v of ["ts", "ansible", "yaml", "shell", "syntax", "md"]) {
      expect(r.stdout).toMatch(new RegExp(`^  ${v} `, "m"));
    }
  });

  test("an unknown validator is a usage error (exit 2)", async () => {
    const r = await $({ nothrow: true, quiet: true })`bun ${LINT} pylint`;
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('unknown validator "pylint"');
  });

  test("a root that does not exist is an error (exit 1)", async () => {
    const r = await $({ nothrow: true, quiet: true })`bun ${LINT} yaml --root /nonexistent/x`;
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('Cannot lint "/nonexistent/x"');
  });

  test("a run reports every validator's result and fails when one fails (--json)", async () => {
    const dir = tree({ "roles/demo/defaults/main.yml": "---\nx: [\n" });
    const r = await $({ nothrow: true, quiet: true })`bun ${LINT} yaml shell --json --root ${dir}`;
    expect(r.exitCode).toBe(1);
    const results = JSON.parse(r.stdout) as { validator: string; status: string }[];
    expect(results.map((x) => [x.validator, x.status])).toEqual([
      ["yaml", "fail"],
      ["shell", "ok"],
    ]);
    expect(r.stderr).toContain("lint: 1 of 2 validator(s) failed");
  }, 60_000);
});
