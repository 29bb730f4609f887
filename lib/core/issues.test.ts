import { expect, test } from "bun:test";
import { closest, formatIssue, formatPath, q, typeName } from "./issues.ts";

test("formatPath writes dotted paths, indexes and quoted odd keys", () => {
  expect(formatPath(["domains", "pro", "machines", "pro-dev", "ip"])).toBe(
    "domains.pro.machines.pro-dev.ip",
  );
  expect(formatPath(["network_policies", 2, "to"])).toBe("network_policies[2].to");
  expect(formatPath(["x", "config", "security.nesting"])).toBe('x.config["security.nesting"]');
  expect(formatPath([])).toBe("(top level)");
});

test("formatIssue puts file:line:col first and the fix on its own line", () => {
  const text = formatIssue({
    severity: "error",
    path: ["domains", "pro", "subnet_id"],
    message: "bad",
    fix: "do this",
    file: "infra.yml",
    line: 7,
    col: 16,
  });
  expect(text).toBe("infra.yml:7:16: domains.pro.subnet_id: bad\n      fix: do this");
});

test("closest suggests a near key and nothing for a far one", () => {
  expect(closest("subnet_idd", ["subnet_id", "machines"])).toBe("subnet_id");
  expect(closest("machnes", ["subnet_id", "machines"])).toBe("machines");
  expect(closest("zzzzzz", ["subnet_id", "machines"])).toBeUndefined();
});

test("q and typeName describe values for messages", () => {
  expect(q("x")).toBe('"x"');
  expect(q(3)).toBe("3");
  expect(typeName(true)).toBe("the boolean true");
  expect(typeName([])).toBe("a list");
  expect(typeName(null)).toBe("null");
});
