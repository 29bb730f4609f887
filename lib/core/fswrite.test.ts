import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isCI } from "../../tests/helpers.ts";
import { lockTree, readIfExists, readTextFile, writeIfChanged } from "./fswrite.ts";

const isRoot = process.getuid?.() === 0;
// The failed-rename test needs chattr +i (root): a skip is fine locally, not under CI.
if (!isRoot && isCI()) throw new Error("fswrite: CI must run as root (chattr +i)");

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "anklume-fswrite-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Make a directory or file unwritable, even for root (chattr +i), until `undo`. */
function lock(path: string): () => void {
  if (process.getuid?.() === 0) {
    const on = Bun.spawnSync(["chattr", "+i", path]);
    if (on.exitCode !== 0) throw new Error(`chattr +i ${path} failed: ${on.stderr}`);
    return () => void Bun.spawnSync(["chattr", "-i", path]);
  }
  const mode = statSync(path).mode & 0o7777;
  chmodSync(path, 0o555);
  return () => chmodSync(path, mode);
}

describe("readIfExists", () => {
  test("returns null for a missing file and the text of an existing one", () => {
    expect(readIfExists(join(dir, "nope.yml"))).toBeNull();
    writeFileSync(join(dir, "a.yml"), "é\n");
    expect(readIfExists(join(dir, "a.yml"))).toBe("é\n");
  });

  test("throws a clear error for a directory", () => {
    expect(() => readIfExists(dir)).toThrow(/^Cannot read ".*": EISDIR .*; make it a readable/);
  });
});

describe("writeIfChanged", () => {
  test("creates parent directories and the file", () => {
    const p = join(dir, "host_vars", "deep", "x.yml");
    expect(writeIfChanged(p, "a: 1\n")).toBe("created");
    expect(readFileSync(p, "utf8")).toBe("a: 1\n");
  });

  test("leaves an unchanged file alone: same inode, same mtime", () => {
    const p = join(dir, "x.yml");
    writeFileSync(p, "a: 1\n");
    utimesSync(p, new Date(1_000_000_000), new Date(1_000_000_000));
    const before = statSync(p);
    expect(writeIfChanged(p, "a: 1\n")).toBe("unchanged");
    const after = statSync(p);
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
  });

  test("replaces a changed file by rename, keeps its mode, leaves no temp file", () => {
    const p = join(dir, "x.yml");
    writeFileSync(p, "a: 1\n");
    chmodSync(p, 0o640);
    const before = statSync(p);
    expect(writeIfChanged(p, "a: 2\n")).toBe("updated");
    const after = statSync(p);
    expect(after.ino).not.toBe(before.ino);
    expect(after.mode & 0o7777).toBe(0o640);
    expect(readFileSync(p, "utf8")).toBe("a: 2\n");
    expect(readdirSync(dir)).toEqual(["x.yml"]);
  });

  test("with mode: a new file gets exactly that mode, whatever the umask; a changed one too", () => {
    const old = process.umask(0o077);
    try {
      const p = join(dir, "sub", "rules.nft");
      expect(writeIfChanged(p, "a\n", { mode: 0o644, dirMode: 0o755 })).toBe("created");
      expect(statSync(p).mode & 0o7777).toBe(0o644);
      // dirMode goes through the umask like mkdir's own mode (0o755 & ~0o077).
      expect(statSync(join(dir, "sub")).mode & 0o7777).toBe(0o700);
      chmodSync(p, 0o600);
      expect(writeIfChanged(p, "b\n", { mode: 0o644 })).toBe("updated");
      expect(statSync(p).mode & 0o7777).toBe(0o644);
    } finally {
      process.umask(old);
    }
  });

  test("writes through a symlink and keeps the link", () => {
    mkdirSync(join(dir, "real"));
    writeFileSync(join(dir, "real", "x.yml"), "old\n");
    symlinkSync(join(dir, "real", "x.yml"), join(dir, "link.yml"));
    expect(writeIfChanged(join(dir, "link.yml"), "new\n")).toBe("updated");
    expect(readFileSync(join(dir, "real", "x.yml"), "utf8")).toBe("new\n");
    expect(readdirSync(dir).sort()).toEqual(["link.yml", "real"]);
  });

  test("in dry run reports what it would do and creates nothing", () => {
    const p = join(dir, "new", "x.yml");
    expect(writeIfChanged(p, "a\n", { dryRun: true })).toBe("created");
    expect(existsSync(join(dir, "new"))).toBe(false);
    writeFileSync(join(dir, "y.yml"), "a\n");
    expect(writeIfChanged(join(dir, "y.yml"), "b\n", { dryRun: true })).toBe("updated");
    expect(writeIfChanged(join(dir, "y.yml"), "a\n", { dryRun: true })).toBe("unchanged");
    expect(readFileSync(join(dir, "y.yml"), "utf8")).toBe("a\n");
  });

  test("a write into an unwritable directory throws and leaves the old file intact", () => {
    const p = join(dir, "x.yml");
    writeFileSync(p, "old\n");
    const unlock = lock(dir);
    try {
      expect(() => writeIfChanged(p, "new\n")).toThrow(
        /^Cannot write ".*x\.yml": E\w+ .*; check that .* is a writable directory/,
      );
    } finally {
      unlock();
    }
    expect(readFileSync(p, "utf8")).toBe("old\n");
    expect(readdirSync(dir)).toEqual(["x.yml"]);
  });

  // Only root can make a single file immune to rename (chattr +i).
  test.skipIf(!isRoot)("a failed rename removes the temp file and keeps the old file", () => {
    const p = join(dir, "x.yml");
    writeFileSync(p, "old\n");
    const unlock = lock(p);
    try {
      expect(() => writeIfChanged(p, "new\n")).toThrow(/^Cannot write/);
      expect(readdirSync(dir)).toEqual(["x.yml"]);
    } finally {
      unlock();
    }
    expect(readFileSync(p, "utf8")).toBe("old\n");
  });

  test("a parent that is a file gives a clear error", () => {
    writeFileSync(join(dir, "f"), "");
    expect(() => writeIfChanged(join(dir, "f", "x.yml"), "a\n")).toThrow(
      /^Cannot (read|write) ".*"/,
    );
  });
});

describe("readTextFile", () => {
  test("D17: names the file and says what it is instead of a raw EISDIR or ENOENT", () => {
    writeFileSync(join(dir, "ok.json"), "{}");
    expect(readTextFile(join(dir, "ok.json"), "--desired")).toBe("{}");
    expect(() => readTextFile(dir, "--desired")).toThrow(
      `Cannot read --desired "${dir}": it is a directory, not a file`,
    );
    expect(() => readTextFile(join(dir, "nope.json"), "--desired")).toThrow("it does not exist");
  });
});

describe("lockTree", () => {
  test("D16: one holder at a time; a live owner makes the next wait, then fail clearly; dead or old locks are taken over", async () => {
    const release = await lockTree(dir, 1000);
    const t0 = performance.now();
    await expect(lockTree(dir, 200)).rejects.toThrow(`another sync (pid ${process.pid})`);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(190);
    release();
    expect(existsSync(join(dir, ".anklume-sync.lock"))).toBe(false);
    writeFileSync(join(dir, ".anklume-sync.lock"), "9999999\n"); // a killed sync
    (await lockTree(dir, 200))();
    writeFileSync(join(dir, ".anklume-sync.lock"), `${process.pid}\n`);
    const old = new Date(Date.now() - 11 * 60 * 1000);
    utimesSync(join(dir, ".anklume-sync.lock"), old, old); // a pid reused since
    (await lockTree(dir, 200))();
    // A waiting sync gets the lock as soon as the holder releases it.
    const first = await lockTree(dir, 1000);
    setTimeout(first, 50);
    (await lockTree(dir, 2000))();
  });
});
