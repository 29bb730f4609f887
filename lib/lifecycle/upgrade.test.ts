import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  backupName,
  fetchDue,
  isUserPath,
  markFetched,
  noticeLine,
  parseStatus,
  parseUpstream,
  planUpgrade,
  reportLines,
  type UpgradeReport,
} from "./upgrade.ts";

const tmp = mkdtempSync(join(tmpdir(), "anklume-upgrade-unit-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("isUserPath()", () => {
  test("infra.yml, infra/, roles_custom/, anklume.conf.yml and the generated tree are the user's", () => {
    for (const p of [
      "infra.yml",
      "infra/base.yml",
      "infra/domains/pro.yml",
      "roles_custom/r/tasks/main.yml",
      "anklume.conf.yml",
      "host_vars/pro-dev.yml",
      "group_vars/all.yml",
      "inventory/pro.yml",
    ]) {
      expect(isUserPath(p)).toBe(true);
    }
  });
  test("framework files and look-alikes are not", () => {
    for (const p of [
      "Makefile",
      "site.yml",
      "infra.example.yml",
      "infra.yml.example",
      "roles/base_system/x",
      "docs/infra/x.md",
    ]) {
      expect(isUserPath(p)).toBe(false);
    }
  });
});

describe("parseStatus()", () => {
  test("reads the two-letter code and the path of each NUL-separated entry, paths with spaces kept", () => {
    expect(parseStatus(" M site.yml\0?? new file.txt\0A  lib/x.ts\0 D Makefile\0")).toEqual([
      { code: " M", path: "site.yml" },
      { code: "??", path: "new file.txt" },
      { code: "A ", path: "lib/x.ts" },
      { code: " D", path: "Makefile" },
    ]);
    expect(parseStatus("")).toEqual([]);
  });
});

describe("planUpgrade()", () => {
  const status = parseStatus(
    " M site.yml\0M  Makefile\0 M ansible.cfg\0?? docs/new.md\0?? notes.txt\0 M infra.yml\0?? roles_custom/r/x.yml\0 D README.md\0",
  );
  test("backs up framework files the update rewrites, keeps those it does not touch", () => {
    const plan = planUpgrade(status, [
      "site.yml",
      "Makefile",
      "docs/new.md",
      "README.md",
      "lib/a.ts",
    ]);
    expect(plan.backup.map((e) => e.path)).toEqual([
      "site.yml",
      "Makefile",
      "docs/new.md",
      "README.md",
    ]);
    expect(plan.kept).toEqual([{ code: " M", path: "ansible.cfg" }]);
    expect(plan.userConflicts).toEqual([]);
    expect(plan.unmerged).toEqual([]);
  });
  test("a user file the update would write is a conflict, never a backup", () => {
    const plan = planUpgrade(status, ["infra.yml", "roles_custom/r/x.yml"]);
    expect(plan.userConflicts).toEqual(["infra.yml", "roles_custom/r/x.yml"]);
    expect(plan.backup).toEqual([]);
  });
  test("user files the update does not touch, and untracked files, are simply left", () => {
    const plan = planUpgrade(status, []);
    expect(plan.backup).toEqual([]);
    expect(plan.kept.map((e) => e.path)).toEqual([
      "site.yml",
      "Makefile",
      "ansible.cfg",
      "README.md",
    ]);
  });
  test("an unfinished merge is reported", () => {
    expect(planUpgrade(parseStatus("UU site.yml\0AA x\0"), []).unmerged).toEqual(["site.yml", "x"]);
  });
  test("an earlier .bak is the user's copy", () => {
    expect(planUpgrade(parseStatus("?? site.yml.bak\0"), ["site.yml.bak"]).userConflicts).toEqual([
      "site.yml.bak",
    ]);
  });
});

describe("backupName()", () => {
  test("<file>.bak, else the first free <file>.bak.N: an earlier backup is never overwritten", () => {
    expect(backupName("site.yml", () => false)).toBe("site.yml.bak");
    const taken = new Set(["site.yml.bak", "site.yml.bak.1"]);
    expect(backupName("site.yml", (p) => taken.has(p))).toBe("site.yml.bak.2");
  });
});

describe("parseUpstream()", () => {
  test("splits at the longest known remote; branches may hold slashes", () => {
    expect(parseUpstream("origin/main", ["origin"])).toEqual({ remote: "origin", branch: "main" });
    expect(parseUpstream("origin/release/2", ["origin"])).toEqual({
      remote: "origin",
      branch: "release/2",
    });
    expect(parseUpstream("up/stream/main", ["up", "up/stream"])).toEqual({
      remote: "up/stream",
      branch: "main",
    });
  });
  test("null for an unknown remote or no branch", () => {
    expect(parseUpstream("nope/main", ["origin"])).toBeNull();
    expect(parseUpstream("origin/", ["origin"])).toBeNull();
    expect(parseUpstream("origin", ["origin"])).toBeNull();
  });
});

describe("reportLines()", () => {
  const r: UpgradeReport = {
    upstream: "origin/main",
    from: "1111111aaaa",
    to: "2222222bbbb",
    commits: ["2222222 second", "1234567 first"],
    fastForward: true,
    backups: [
      { path: "site.yml", backup: "site.yml.bak", deleted: false },
      { path: "README.md", backup: "README.md.bak", deleted: true },
    ],
    kept: ["ansible.cfg"],
    userFiles: ["infra.yml", "roles_custom/"],
    dryRun: false,
  };
  test("says the commits pulled, the backups, the kept changes and the user files", () => {
    expect(reportLines(r)).toEqual([
      "Upgraded anklume from 1111111 to 2222222: 2 commits from origin/main",
      "  2222222 second",
      "  1234567 first",
      "Backed up your changes to framework files the update rewrote (compare, then carry over what you still need):",
      "  site.yml -> site.yml.bak",
      "  README.md: you had deleted it; upstream's version is back",
      "Kept your changes to framework files the update does not touch:",
      "  ansible.cfg",
      "Not touched (yours): infra.yml, roles_custom/",
    ]);
  });
  test("a dry run says what it would do; long histories are cut", () => {
    const lines = reportLines({ ...r, dryRun: true, backups: [], commits: ["a", "b", "c"] }, 2);
    expect(lines[0]).toStartWith("Would upgrade anklume");
    expect(lines).toContain("  … and 1 more (git log 1111111..2222222)");
    expect(lines).toContain("No framework file of yours needed a backup.");
  });
});

describe("the update notifier's pieces", () => {
  test("noticeLine() says how many updates and how to get them, nothing when none", () => {
    expect(noticeLine(3, "origin/main", "/root/anklume")).toBe(
      "anklume: 3 updates available on origin/main. Run 'make -C /root/anklume upgrade'",
    );
    expect(noticeLine(1, "origin/main", "/x")).toContain("1 update available");
    expect(noticeLine(0, "origin/main", "/x")).toBeNull();
    expect(noticeLine(Number.NaN, "origin/main", "/x")).toBeNull();
  });
  test("fetchDue(): at most once an hour, by the cache file's mtime", () => {
    const cache = join(tmp, "sub", "update-check-cache");
    const now = Date.now();
    expect(fetchDue(cache, now)).toBe(true); // never fetched
    markFetched(cache, now);
    expect(Math.abs(statSync(cache).mtimeMs - now)).toBeLessThan(1000);
    expect(fetchDue(cache, now + 59 * 60_000)).toBe(false);
    expect(fetchDue(cache, now + 61 * 60_000)).toBe(true);
    // A clock set back (mtime in the future) fetches rather than waiting for ever.
    expect(fetchDue(cache, now - 10 * 60_000)).toBe(true);
    writeFileSync(cache, "");
    utimesSync(cache, 0, 0);
    expect(fetchDue(cache, now)).toBe(true);
  });
});
