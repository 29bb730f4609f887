import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mergeManaged } from "../sync/managed.ts";
import { applyTree, fileAction, planTree, userPart } from "./tree.ts";

const generated = (body: string) => {
  const r = mergeManaged(null, body);
  if (!r.ok) throw new Error(r.error);
  return r.content;
};

describe("userPart", () => {
  test("a freshly generated file holds nothing of the user's", () => {
    expect(userPart(generated("a: 1\n"))).toBeNull();
  });
  test("keeps the user's keys below the block, drops the block", () => {
    const text = `${generated("a: 1\n")}my_var: 2\n`;
    const u = userPart(text);
    expect(u).toContain("my_var: 2");
    expect(u).not.toContain("a: 1");
    expect(u).not.toContain("MANAGED");
  });
  test("keeps a comment of the user's above the block", () => {
    const text = `# mine\n${generated("a: 1\n").replace(/^---\n/, "")}`;
    expect(userPart(text)).toContain("# mine");
  });
  test("returns a file without a block unchanged", () => {
    expect(userPart("x: 1\n")).toBe("x: 1\n");
  });
});

describe("fileAction", () => {
  test("delete, strip or keep by content", () => {
    expect(fileAction("a", generated("a: 1\n")).action).toBe("delete");
    expect(fileAction("a", `${generated("a: 1\n")}b: 2\n`).action).toBe("strip");
    expect(fileAction("a", "b: 2\n")).toEqual({
      path: "a",
      action: "keep",
      reason: "no managed block: yours",
    });
    expect(fileAction("a", "# === END MANAGED ===\n# === MANAGED BY infra.yml ===\n").action).toBe(
      "keep",
    );
  });
});

describe("planTree and applyTree on a real folder", () => {
  const dir = mkdtempSync(join(tmpdir(), "anklume-tree-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("deletes generated files, strips mixed ones, keeps the user's files and other folders", () => {
    for (const d of ["inventory", "group_vars", "host_vars", "roles", "group_vars/pro"]) {
      mkdirSync(join(dir, d), { recursive: true });
    }
    writeFileSync(join(dir, "inventory", "pro.yml"), generated("pro: {}\n"));
    writeFileSync(join(dir, "group_vars", "all.yml"), generated("x: 1\n"));
    writeFileSync(join(dir, "group_vars", "pro", "secrets.yml"), "token: abc\n");
    writeFileSync(
      join(dir, "host_vars", "dev.yml"),
      `${generated("instance_name: dev\n")}my_port: 8080\n`,
    );
    writeFileSync(join(dir, "roles", "keep.yml"), generated("r: 1\n"));
    writeFileSync(join(dir, "infra.yml"), "project_name: x\n");
    const plan = planTree(dir);
    expect(plan.map((p) => [p.path.slice(dir.length + 1), p.action])).toEqual([
      ["inventory/pro.yml", "delete"],
      ["group_vars/all.yml", "delete"],
      ["group_vars/pro/secrets.yml", "keep"],
      ["host_vars/dev.yml", "strip"],
    ]);
    const { dirs } = applyTree(dir, plan);
    expect(dirs).toEqual(["inventory"]);
    expect(existsSync(join(dir, "inventory"))).toBe(false);
    expect(readFileSync(join(dir, "group_vars", "pro", "secrets.yml"), "utf8")).toBe(
      "token: abc\n",
    );
    const dev = readFileSync(join(dir, "host_vars", "dev.yml"), "utf8");
    expect(dev).toContain("my_port: 8080");
    expect(dev).not.toContain("instance_name");
    expect(existsSync(join(dir, "roles", "keep.yml"))).toBe(true);
    expect(existsSync(join(dir, "infra.yml"))).toBe(true);
    expect(planTree(dir).filter((p) => p.action !== "keep")).toEqual([]);
  });
});
