import { describe, expect, test } from "bun:test";
import {
  audit,
  countLines,
  deadCode,
  formatReport,
  kindOf,
  lineCounts,
  roleSizes,
  type SourceFile,
  testRatios,
  untestedModules,
} from "./audit.ts";

const lines = (n: number, prefix = "x") =>
  `${Array.from({ length: n }, (_, i) => `${prefix}${i}`).join("\n")}\n`;

describe("countLines() and kindOf()", () => {
  test("counts newline-terminated lines and an unterminated last one", () => {
    expect(countLines("")).toBe(0);
    expect(countLines("a\n")).toBe(1);
    expect(countLines("a\nb")).toBe(2);
    expect(countLines("\n\n")).toBe(2);
  });
  test("sorts files into kinds; files of no kind are null", () => {
    expect(kindOf("lib/core/cidr.ts", false)).toBe("ts_impl");
    expect(kindOf("scripts/snap.ts", false)).toBe("ts_impl");
    expect(kindOf("lib/core/cidr.test.ts", false)).toBe("ts_test");
    expect(kindOf("tests/helpers.ts", false)).toBe("ts_test");
    expect(kindOf("bench/sync.ts", false)).toBe("ts_bench");
    expect(kindOf(".ci/run", true)).toBe("shell");
    expect(kindOf("roles/x/tasks/main.yml", false)).toBe("yaml_roles");
    expect(kindOf("roles/x/templates/a.j2", false)).toBe("yaml_roles");
    expect(kindOf("site.yml", false)).toBe("yaml_config");
    expect(kindOf("tests/fixtures/x/infra.yml", false)).toBeNull();
    expect(kindOf("docs/quality.md", false)).toBe("docs");
    expect(kindOf("package.json", false)).toBeNull();
  });
  test("lineCounts() reports every kind, zero when empty", () => {
    const c = lineCounts([{ path: "lib/a.ts", text: lines(3) }], new Set());
    expect(c.ts_impl).toEqual({ total_lines: 3, file_count: 1 });
    expect(c.docs).toEqual({ total_lines: 0, file_count: 0 });
  });
});

describe("testRatios()", () => {
  const files: SourceFile[] = [
    { path: "lib/core/cidr.ts", text: lines(10) },
    { path: "lib/core/cidr.test.ts", text: lines(5) },
    { path: "lib/core/cidr.property.test.ts", text: lines(3) },
    { path: "lib/core/naming.ts", text: lines(4) },
    { path: "scripts/nftables.ts", text: lines(20) },
    { path: "scripts/nftables-deploy.ts", text: lines(10) },
    { path: "scripts/incus-guard.ts", text: lines(8) },
    { path: "tests/nftables-cli.test.ts", text: lines(6) },
    { path: "tests/nftables-deploy.test.ts", text: lines(30) },
    { path: "tests/guard.test.ts", text: 'import { G } from "./guard-netns.ts";\n' },
    { path: "tests/guard-netns.ts", text: 'export const G = "../scripts/incus-guard.ts";\n' },
    { path: "tests/apply.test.ts", text: lines(7) },
  ];
  const r = testRatios(files);
  test("a module's tests are x.test.ts and x.<aspect>.test.ts beside it", () => {
    expect(r["lib/core/cidr"]).toEqual({
      impl_lines: 10,
      test_lines: 8,
      ratio: 0.8,
      tests: ["lib/core/cidr.test.ts", "lib/core/cidr.property.test.ts"],
    });
  });
  test("a tests/ file goes to the script with the longest matching name", () => {
    expect(r["scripts/nftables"]?.tests).toEqual(["tests/nftables-cli.test.ts"]);
    expect(r["scripts/nftables-deploy"]?.tests).toEqual(["tests/nftables-deploy.test.ts"]);
    expect(r["scripts/nftables-deploy"]?.ratio).toBe(3);
  });
  test("a tests/ file that matches no name goes to the script it or its helper names", () => {
    expect(r["scripts/incus-guard"]?.tests).toEqual(["tests/guard.test.ts"]);
  });
  test("a test of no module is test-only (ratio null); a module without tests is listed", () => {
    expect(r["tests/apply"]).toEqual({
      impl_lines: 0,
      test_lines: 7,
      ratio: null,
      tests: ["tests/apply.test.ts"],
    });
    expect(untestedModules(r)).toEqual(["lib/core/naming"]);
  });
});

describe("roleSizes()", () => {
  test("sorts roles by lines, flags those over 200 and names the tests that mention them", () => {
    const files: SourceFile[] = [
      { path: "roles/small/tasks/main.yml", text: lines(20) },
      { path: "roles/big/tasks/main.yml", text: lines(150) },
      { path: "roles/big/templates/x.j2", text: lines(51) },
      { path: "roles/big/files/blob.bin", text: lines(999) },
      { path: "tests/role.test.ts", text: 'runRole("small")\n' },
    ];
    expect(roleSizes(files)).toEqual([
      { name: "big", lines: 201, files: 2, simplification_candidate: true, tests: [] },
      {
        name: "small",
        lines: 20,
        files: 1,
        simplification_candidate: false,
        tests: ["tests/role.test.ts"],
      },
    ]);
  });
});

describe("deadCode()", () => {
  const files: SourceFile[] = [
    {
      path: "scripts/tool.ts",
      text: 'import { used, onlyHere } from "../lib/a.ts";\nexport async function main() { used(); onlyHere; }\n',
    },
    {
      path: "lib/a.ts",
      text: [
        "export function used() {}",
        "export function dead() {}",
        "export const LOCAL = 1;",
        "export function onlyHere() { return LOCAL; }",
        "export function forTests() {}",
      ].join("\n"),
    },
    { path: "lib/a.test.ts", text: 'import { forTests } from "./a.ts";\nforTests();\n' },
    { path: "lib/orphan.ts", text: "export const X = 1;\n" },
    { path: "lib/ns.ts", text: "export const Y = 1;\n" },
    { path: "bench/b.ts", text: 'import * as ns from "../lib/ns.ts";\nns;\n' },
  ];
  const d = deadCode(files);
  test("an export nothing imports and nothing uses is dead; a script's main is not", () => {
    expect(d.unused_exports).toEqual([
      { file: "lib/a.ts", name: "dead", line: 2 },
      { file: "lib/orphan.ts", name: "X", line: 1 },
    ]);
  });
  test("an export used only in its own file is reported apart", () => {
    expect(d.local_only_exports).toEqual([{ file: "lib/a.ts", name: "LOCAL", line: 3 }]);
  });
  test("an export only tests import is reported; a namespace import uses every export", () => {
    expect(d.test_only_exports).toEqual([{ file: "lib/a.ts", name: "forTests", line: 5 }]);
    expect(d.unused_exports.some((e) => e.file === "lib/ns.ts")).toBe(false);
  });
  test("a file no script, bench or test reaches is unreached", () => {
    expect(d.unreached_files).toEqual(["lib/orphan.ts"]);
  });
});

describe("audit() and formatReport()", () => {
  const r = audit(
    "/p",
    [
      { path: "lib/a.ts", text: "export const A = 1;\n" },
      { path: "lib/a.test.ts", text: 'import { A } from "./a.ts";\nA;\nA;\n' },
      { path: "b.sh", text: "#!/bin/sh\necho\n" },
    ],
    new Set(["b.sh"]),
    ["b.sh:3: x appears unused"],
  );
  test("the summary adds TypeScript and shell as implementation, with the overall ratio", () => {
    expect(r.schema).toBe(1);
    expect(r.summary.total_implementation_lines).toBe(3);
    expect(r.summary.total_test_lines).toBe(3);
    expect(r.summary.overall_test_to_impl_ratio).toBe(1);
    expect(r.dead_code.shell_unused_variables).toEqual(["b.sh:3: x appears unused"]);
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
  });
  test("the text report has v1's sections; --dead-code prints only that one", () => {
    const text = formatReport(r);
    for (const s of [
      "SUMMARY",
      "LINE COUNTS BY CATEGORY",
      "TEST-TO-IMPLEMENTATION RATIO PER MODULE",
      "MODULES WITHOUT TEST COVERAGE (0)",
      "ROLES BY SIZE",
      "DEAD CODE DETECTION",
    ]) {
      expect(text).toContain(`\n${s}\n`);
    }
    const dead = formatReport(r, "dead-code");
    expect(dead).toStartWith("=".repeat(60));
    expect(dead).not.toContain("SUMMARY");
    expect(dead).toContain("SC2034 (1)");
  });
});
