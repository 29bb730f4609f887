import { describe, expect, test } from "bun:test";
import {
  describeRecipeFinding,
  distinctSnippets,
  dryRunCommands,
  isPlaybook,
  isShellScript,
  makeTargets,
  parseShellcheckGcc,
  selectValidators,
  shellFiles,
  snippetText,
  summarize,
} from "./lint.ts";

describe("isShellScript()", () => {
  test("knows shell files by a .sh name or a sh/bash/dash shebang", () => {
    expect(isShellScript("bootstrap.sh", "")).toBe(true);
    expect(isShellScript("run", "#!/usr/bin/env bash")).toBe(true);
    expect(isShellScript("run", "#!/bin/sh -e")).toBe(true);
    expect(isShellScript("run", "#!/bin/dash")).toBe(true);
  });
  test("does not take other interpreters or plain files for shell", () => {
    expect(isShellScript("snap.ts", "#!/usr/bin/env bun")).toBe(false);
    expect(isShellScript("x.py", "#!/usr/bin/env python3")).toBe(false);
    expect(isShellScript("fish", "#!/usr/bin/fish")).toBe(false);
    expect(isShellScript("README", "# shell notes")).toBe(false);
  });
  test("shellFiles() returns the shell files sorted", () => {
    const m = new Map([
      ["z.sh", ""],
      [".ci/run", "#!/usr/bin/env bash"],
      ["a.ts", "#!/usr/bin/env bun"],
    ]);
    expect(shellFiles(m)).toEqual([".ci/run", "z.sh"]);
  });
});

describe("makeTargets()", () => {
  test("lists explicit rules, not variables, patterns or special targets", () => {
    const mk = [
      "SHELL := /bin/bash",
      "BUN ?= bun",
      "X ::= y",
      ".PHONY: a b",
      "a: ## first",
      "\t@echo a",
      "b c: a",
      "\techo b",
      "%.o: %.c",
      "dist/incus-guard: scripts/incus-guard.ts",
      "# comment: not a rule",
      "export PATH := x",
    ].join("\n");
    expect(makeTargets(mk)).toEqual(["a", "b", "c", "dist/incus-guard"]);
  });
});

describe("dryRunCommands()", () => {
  test("splits make -n output into commands, keeping backslash continuations together", () => {
    const out = 'echo one\nfor s in a b; do \\\n  echo "$s"; done\n\necho three\n';
    expect(dryRunCommands(out)).toEqual([
      "echo one",
      'for s in a b; do \\\n  echo "$s"; done',
      "echo three",
    ]);
  });
  test("distinctSnippets() checks a command printed by several targets once, under the first", () => {
    const s = distinctSnippets([
      ["a", ["echo x", "echo a"]],
      ["b", ["echo x", "echo b"]],
    ]);
    expect(s).toEqual([
      { target: "a", command: "echo x" },
      { target: "a", command: "echo a" },
      { target: "b", command: "echo b" },
    ]);
  });
});

describe("shellcheck findings", () => {
  test("parseShellcheckGcc() reads file, line, column, level and message", () => {
    const f = parseShellcheckGcc(
      "x.sh:3:8: note: Double quote to prevent globbing and word splitting. [SC2086]\nnoise\n",
    );
    expect(f).toEqual([
      {
        file: "x.sh",
        line: 3,
        col: 8,
        level: "note",
        message: "Double quote to prevent globbing and word splitting. [SC2086]",
      },
    ]);
  });
  test("a recipe finding names the target and the command's own line", () => {
    const s = { target: "clean", command: "cd x && \\\nrm -rf $BUILD/*" };
    expect(snippetText(s).split("\n")[3]).toBe("rm -rf $BUILD/*");
    const msg = describeRecipeFinding(s, {
      file: "f",
      line: 4,
      col: 8,
      level: "warning",
      message: "Guard the expansion [SC2115]",
    });
    expect(msg).toBe(
      "Makefile: recipe of target 'clean', command line 2: warning: Guard the expansion [SC2115]\n    rm -rf $BUILD/*",
    );
  });
});

describe("isPlaybook()", () => {
  test("a list of plays is a playbook; vars files, role task lists and bad YAML are not", () => {
    expect(isPlaybook("- hosts: all\n  tasks: []\n")).toBe(true);
    expect(isPlaybook("- ansible.builtin.import_playbook: x.yml\n")).toBe(true);
    expect(isPlaybook("project_name: x\n")).toBe(false);
    expect(isPlaybook("- name: t\n  ansible.builtin.debug: {}\n")).toBe(false);
    expect(isPlaybook("- hosts: [\n")).toBe(false);
    expect(isPlaybook("")).toBe(false);
  });
});

describe("selectValidators() and summarize()", () => {
  test("none or all selects every validator in order; unknown names are returned", () => {
    expect(selectValidators([]).selected).toEqual([
      "ts",
      "ansible",
      "yaml",
      "shell",
      "syntax",
      "md",
    ]);
    expect(selectValidators(["all"]).selected).toHaveLength(6);
    expect(selectValidators(["yaml", "ts"]).selected).toEqual(["ts", "yaml"]);
    expect(selectValidators(["yaml", "ruff"]).unknown).toEqual(["ruff"]);
  });
  test("the summary counts failures; a skipped validator is not a failure", () => {
    const ok = summarize([
      { validator: "ts", status: "ok", detail: "clean" },
      { validator: "md", status: "skipped", detail: "absent" },
    ]);
    expect(ok.failed).toBe(0);
    expect(ok.text).toContain("lint: all 1 validator(s) passed");
    expect(ok.text).toContain("md       SKIPPED  absent");
    const bad = summarize([
      { validator: "ts", status: "ok", detail: "" },
      { validator: "yaml", status: "fail", detail: "2 problem(s)" },
    ]);
    expect(bad.failed).toBe(1);
    expect(bad.text).toContain("lint: 1 of 2 validator(s) failed");
  });
});
