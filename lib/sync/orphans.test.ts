import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { dumpYaml } from "./emit.ts";
import { mergeManaged } from "./managed.ts";
import { findOrphans, isProtectedContent, protectionReason } from "./orphans.ts";

/** fast-check runs per property; `make mutation` lowers them through FC_NUM_RUNS. */
const runs = (n: number): number => Number(process.env.FC_NUM_RUNS) || n;

const SEED = Number(process.env.FC_SEED ?? 20261125);

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "anklume-orphans-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function put(rel: string, text = "") {
  mkdirSync(join(dir, rel, ".."), { recursive: true });
  writeFileSync(join(dir, rel), text);
}

/** A file as `make sync` writes it. */
function generated(data: Record<string, unknown>): string {
  const r = mergeManaged(null, dumpYaml(data));
  if (!r.ok) throw new Error(r.error);
  return r.content;
}

describe("isProtectedContent", () => {
  test("protects unless the ephemeral flag is exactly true", () => {
    expect(isProtectedContent(generated({ domain_ephemeral: false }))).toBe(true);
    expect(isProtectedContent(generated({ domain_ephemeral: true }))).toBe(false);
    expect(isProtectedContent(generated({ instance_ephemeral: false }))).toBe(true);
    expect(isProtectedContent(generated({ instance_ephemeral: true }))).toBe(false);
    expect(isProtectedContent("instance_ephemeral: 'true'\n")).toBe(true);
    expect(isProtectedContent("instance_ephemeral: 1\n")).toBe(true);
    expect(isProtectedContent("instance_ephemeral:\n")).toBe(true);
    expect(isProtectedContent("instance_ephemeral: yes\n")).toBe(false); // YAML 1.1 boolean
  });

  test("domain_ephemeral decides before instance_ephemeral", () => {
    expect(isProtectedContent("domain_ephemeral: true\ninstance_ephemeral: false\n")).toBe(false);
    expect(isProtectedContent("domain_ephemeral: false\ninstance_ephemeral: true\n")).toBe(true);
  });

  test("files without the keys, non-mappings and empty files are not protected", () => {
    for (const text of ["", "---\n", "a: 1\n", "- 1\n", "just text\n", "# only a comment\n"]) {
      expect(isProtectedContent(text)).toBe(false);
    }
  });

  test("a file that does not parse is protected, and the reason says so", () => {
    expect(protectionReason("a: [1\n")).toMatch(/^it cannot be parsed as YAML \(/);
    expect(protectionReason("a: 1\na: 2\n")).toMatch(/^it cannot be parsed as YAML/);
    expect(protectionReason("domain_ephemeral: false\n")).toBe(
      "domain_ephemeral is false, not true",
    );
  });

  test("a v1 two-document file is read in full", () => {
    const text =
      "# === MANAGED BY infra.yml ===\nx: 1\n# === END MANAGED ===\n\n---\ninstance_ephemeral: false\n";
    expect(isProtectedContent(text)).toBe(true);
  });

  test("protection depends on the flag only, whatever else the file holds", () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 5 }),
        fc.oneof(fc.boolean(), fc.constantFrom("true", "false", 0, 1, null)),
        (rest, flag) => {
          const data = { ...rest, instance_ephemeral: flag };
          delete (data as Record<string, unknown>).domain_ephemeral;
          expect(isProtectedContent(generated(data))).toBe(flag !== true);
        },
      ),
      { numRuns: runs(1000), seed: SEED },
    );
  }, 60_000);
});

describe("findOrphans", () => {
  test("finds stale files in the three folders, sorted by path, with protection", () => {
    put("inventory/lab.yml", "all: {}\n");
    put("inventory/old.yml", "domain_ephemeral: false\n");
    put("group_vars/all.yml", "a: 1\n");
    put("group_vars/lab.yml", "a: 1\n");
    put("group_vars/gone.yml", generated({ domain_name: "gone", domain_ephemeral: false }));
    put("group_vars/aaa.yml", generated({ domain_name: "aaa", domain_ephemeral: true }));
    put("host_vars/web.yml", generated({ instance_ephemeral: false }));
    put("host_vars/lab-vm.yml", "x: 1\n");
    put("host_vars/broken.yml", "a: [\n");
    put("host_vars/notes.txt", "not yaml\n");
    put("host_vars/sub/deep.yml", "x: 1\n");
    put("host_vars/.hidden.yml.tmp", "x: 1\n");
    const found = findOrphans(dir, new Set(["lab"]), new Set(["lab-vm"]));
    expect(found.map((o) => [o.path, o.kind, o.protected])).toEqual([
      [join(dir, "group_vars/aaa.yml"), "group_vars", false],
      [join(dir, "group_vars/gone.yml"), "group_vars", true],
      [join(dir, "host_vars/broken.yml"), "host_vars", true],
      [join(dir, "host_vars/web.yml"), "host_vars", true],
      [join(dir, "inventory/old.yml"), "inventory", false],
    ]);
    expect(found[1]?.reason).toBe("domain_ephemeral is false, not true");
    expect(found[2]?.reason).toMatch(/cannot be parsed/);
  });

  test("paths are written as join(baseDir, folder, file), also for a relative base", () => {
    put("host_vars/x.yml", "a: 1\n");
    const rel = join(dir, "..", dir.split("/").pop() as string);
    const found = findOrphans(rel, new Set(), new Set());
    expect(found.map((o) => o.path)).toEqual([join(rel, "host_vars/x.yml")]);
    const cwd = process.cwd();
    try {
      process.chdir(dir);
      expect(findOrphans(".", new Set(), new Set()).map((o) => o.path)).toEqual([
        "host_vars/x.yml",
      ]);
    } finally {
      process.chdir(cwd);
    }
  });

  test("missing folders are fine and a link to a file counts", () => {
    expect(findOrphans(join(dir, "nowhere"), new Set(), new Set())).toEqual([]);
    put("real.yml", "instance_ephemeral: true\n");
    mkdirSync(join(dir, "host_vars"));
    symlinkSync(join(dir, "real.yml"), join(dir, "host_vars", "linked.yml"));
    symlinkSync(join(dir, "missing.yml"), join(dir, "host_vars", "dangling.yml"));
    expect(findOrphans(dir, new Set(), new Set())).toEqual([
      { path: join(dir, "host_vars/linked.yml"), kind: "host_vars", protected: false },
    ]);
  });

  test("a current domain's or machine's file is never an orphan", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/), { maxLength: 6 }),
        fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/), { maxLength: 6 }),
        (domainList, machineList) => {
          rmSync(dir, { recursive: true, force: true });
          mkdirSync(dir);
          const domains = new Set(domainList.slice(0, 3));
          const machines = new Set(machineList.slice(0, 3));
          for (const d of domainList) put(`inventory/${d}.yml`, "all: {}\n");
          for (const d of domainList) put(`group_vars/${d}.yml`, "a: 1\n");
          for (const m of machineList) put(`host_vars/${m}.yml`, "a: 1\n");
          const found = findOrphans(dir, domains, machines);
          const stems = (kind: string) =>
            found
              .filter((o) => o.kind === kind)
              .map((o) => o.path.slice(join(dir, kind).length + 1, -4));
          expect(stems("inventory").sort()).toEqual(domainList.slice(3).sort());
          expect(stems("group_vars").sort()).toEqual(
            domainList
              .slice(3)
              .filter((d) => d !== "all")
              .sort(),
          );
          expect(stems("host_vars").sort()).toEqual(machineList.slice(3).sort());
          const paths = found.map((o) => o.path);
          expect(paths).toEqual([...paths].sort());
        },
      ),
      { numRuns: runs(300), seed: SEED },
    );
  }, 60_000);
});

test("D17: an orphan with a complex key is read without a Node warning on stderr", async () => {
  const warnings: unknown[] = [];
  const onWarning = (w: unknown) => warnings.push(w);
  process.on("warning", onWarning);
  expect(protectionReason("? [a, b]\n: 1\ninstance_ephemeral: true\n")).toBeNull();
  await new Promise((r) => setTimeout(r, 10));
  process.off("warning", onWarning);
  expect(warnings).toEqual([]);
});
