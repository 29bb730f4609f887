/**
 * scripts/export-images.ts on the real daemon: the images an infra uses are
 * exported from the host's image store to a directory (split images as
 * `<alias>` + `<alias>.root`), with an index; a second run exports nothing;
 * a dry run writes nothing; an image the host does not have is an error.
 */
import { afterAll, describe, expect, test } from "bun:test";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { $ } from "zx";
import { write } from "./apply-helpers.ts";
import { incusOrSkip } from "./helpers.ts";

const live = await incusOrSkip("export-images");
const ROOT = resolve(import.meta.dir, "..");
const work = mkdtempSync(join(tmpdir(), "anklume-export-images-"));

function run(args: string[]) {
  return $({
    nothrow: true,
    quiet: true,
    cwd: work,
  })`bun ${join(ROOT, "scripts/export-images.ts")} ${args}`;
}

afterAll(() => rmSync(work, { recursive: true, force: true }));

test("--help exits 0 and describes the layout; a wrong option exits 2", async () => {
  const help = await run(["--help"]);
  expect(help.exitCode).toBe(0);
  expect(help.stdout).toContain("index.json");
  const bad = await run(["--nope"]);
  expect(bad.exitCode).toBe(2);
  expect(bad.stderr).toContain("Unknown option '--nope'");
});

test("without a generated tree it says to run make sync, exit 1", async () => {
  const r = await run(["--base-dir", join(work, "empty"), "--dir", join(work, "never")]);
  expect(r.exitCode).toBe(1);
  expect(r.stderr).toContain("run make sync first");
  expect(existsSync(join(work, "never"))).toBe(false);
});

describe.skipIf(!live)(
  "export-images on the real daemon (skipped only without an Incus daemon; required under CI)",
  () => {
    test("exports the infra's images once, keeps them on a second run, writes nothing on a dry run", async () => {
      // A generated tree as make sync writes it: two hosts on the busybox image.
      const tree = join(work, "tree");
      for (const d of ["inventory", "group_vars", "host_vars"]) {
        mkdirSync(join(tree, d), { recursive: true });
      }
      write(
        join(tree, "inventory", "d.yml"),
        "all:\n  children:\n    d:\n      hosts:\n        m1:\n        m2:\n",
      );
      write(join(tree, "group_vars", "all.yml"), "default_os_image: anklume-busybox\n");
      write(join(tree, "host_vars", "m1.yml"), "instance_os_image: anklume-busybox\n");
      const out = join(work, "out");

      const dry = await run(["--base-dir", tree, "--dir", out, "--dry-run"]);
      expect(dry.exitCode, dry.stderr).toBe(0);
      expect(dry.stderr).toContain("would export anklume-busybox");
      expect(existsSync(out)).toBe(false);

      const first = await run(["--base-dir", tree, "--dir", out]);
      expect(first.exitCode, first.stderr).toBe(0);
      expect(first.stderr).toContain("1 exported, 0 up to date, 0 failed");
      expect(readdirSync(out).sort()).toEqual([
        "anklume-busybox",
        "anklume-busybox.root",
        "index.json",
      ]);
      const index = JSON.parse(readFileSync(join(out, "index.json"), "utf8"));
      const fp = (
        await $({ quiet: true })`incus image alias list --project default --format csv`
      ).stdout
        .split("\n")
        .find((l) => l.startsWith("anklume-busybox,"))
        ?.split(",")[1];
      expect(fp).toBeDefined();
      expect(index).toEqual([
        {
          alias: "anklume-busybox",
          fingerprint: expect.stringMatching(new RegExp(`^${fp}`)),
          files: ["anklume-busybox", "anklume-busybox.root"],
        },
      ]);
      const mtime = statSync(join(out, "anklume-busybox.root")).mtimeMs;

      const second = await run(["--base-dir", tree, "--dir", out]);
      expect(second.exitCode).toBe(0);
      expect(second.stderr).toContain("0 exported, 1 up to date");
      expect(statSync(join(out, "anklume-busybox.root")).mtimeMs).toBe(mtime);

      // A missing file of the export: exported again.
      rmSync(join(out, "anklume-busybox.root"));
      const third = await run(["--base-dir", tree, "--dir", out]);
      expect(third.stderr).toContain("1 exported");
      expect(existsSync(join(out, "anklume-busybox.root"))).toBe(true);
    }, 120_000);

    test("an image the host does not have: an error naming it, exit 1", async () => {
      const out = join(work, "out2");
      const r = await run(["--image", "images:no-such-image-anklume", "--dir", out]);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain("image no-such-image-anklume is not in the host's image store");
    }, 60_000);
  },
);
