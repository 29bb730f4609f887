/**
 * lib/images/build.ts: planning against the real daemon's aliases and a
 * temporary cache, stale build directories, and the whole busybox pipeline
 * (build, import under an alias of the test's own, build directory removed),
 * deleted afterwards. The Debian build itself (about a minute) is left to
 * bootstrap.sh.
 */
import { afterAll, describe, expect, test } from "bun:test";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { incusOrSkip, uniq } from "../../tests/helpers.ts";
import { incusRaw } from "../incus/client.ts";
import { buildAndImport, cachedFiles, planImage, removeStaleBuilds } from "./build.ts";
import { HOST_BUSYBOX } from "./busybox.ts";
import { aliasTarget } from "./import.ts";

const dir = mkdtempSync(join(tmpdir(), "anklume-images-build-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("removeStaleBuilds removes build directories older than the limit and nothing else", async () => {
  const cache = mkdtempSync(join(dir, "cache-"));
  const hourAgo = (Date.now() - 2 * 3_600_000) / 1000;
  for (const d of ["build-busybox-old", "build-debian12-new", "keep-old"])
    mkdirSync(join(cache, d));
  writeFileSync(join(cache, "debian12-rootfs.tar.gz"), "");
  for (const d of ["build-busybox-old", "keep-old"]) utimesSync(join(cache, d), hourAgo, hourAgo);
  const said: string[] = [];
  await removeStaleBuilds(cache, (l) => said.push(l));
  expect(readdirSync(cache).sort()).toEqual([
    "build-debian12-new",
    "debian12-rootfs.tar.gz",
    "keep-old",
  ]);
  expect(said).toEqual([
    `removing ${join(cache, "build-busybox-old")}, left by an interrupted build`,
  ]);
  await removeStaleBuilds(join(dir, "no-such-cache"), (l) => said.push(l));
  expect(said).toHaveLength(1);
});

const live = await incusOrSkip("lib/images/build.test.ts");

describe.skipIf(!live)(
  "against the real daemon (skipped only without an Incus daemon; required under CI)",
  () => {
    const alias = `agbld-${uniq()}`;
    afterAll(async () => {
      const fp = await aliasTarget(alias);
      await incusRaw(["image", "alias", "delete", alias]);
      if (fp) await incusRaw(["image", "delete", fp]);
      expect(await aliasTarget(alias)).toBeUndefined();
    }, 60_000);

    test("planImage: a missing alias is built; debian12 imports its cached tarballs unless rebuilding", async () => {
      const cacheDir = mkdtempSync(join(dir, "cache-"));
      expect(await planImage("busybox", { cacheDir, rebuild: false }, alias)).toEqual({
        name: "busybox",
        alias,
        current: undefined,
        present: false,
        cached: false,
        how: "build and import",
      });
      const deb = cachedFiles(cacheDir, "debian12");
      for (const f of [deb.meta, deb.rootfs]) writeFileSync(f, "");
      expect(await planImage("debian12", { cacheDir, rebuild: false }, alias)).toMatchObject({
        cached: true,
        how: `import cached ${deb.rootfs}`,
      });
      expect(await planImage("debian12", { cacheDir, rebuild: true }, alias)).toMatchObject({
        cached: false,
        how: "build and import",
      });
      // busybox is never taken from the cache.
      const bb = cachedFiles(cacheDir, "busybox");
      for (const f of [bb.meta, bb.rootfs]) writeFileSync(f, "");
      expect((await planImage("busybox", { cacheDir, rebuild: false }, alias)).cached).toBe(false);
    });

    test.skipIf(!existsSync(HOST_BUSYBOX))(
      "buildAndImport builds busybox, imports it under the alias, removes its build directory; then the plan says present",
      async () => {
        const cacheDir = mkdtempSync(join(dir, "cache-"));
        const said: string[] = [];
        const plan = await planImage("busybox", { cacheDir, rebuild: false }, alias);
        const fp = await buildAndImport(plan, { cacheDir, mirror: "unused" }, (l) => said.push(l));
        expect(fp).toMatch(/^[0-9a-f]{64}$/);
        expect(await aliasTarget(alias)).toBe(fp);
        expect(readdirSync(cacheDir)).toEqual([]);
        expect(said).toEqual([]);
        expect(await planImage("busybox", { cacheDir, rebuild: false }, alias)).toMatchObject({
          current: fp,
          present: true,
        });
        expect((await planImage("busybox", { cacheDir, rebuild: true }, alias)).present).toBe(
          false,
        );
      },
      120_000,
    );
  },
);
