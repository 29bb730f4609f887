/**
 * lib/images/import.ts against the real Incus daemon: a busybox image built
 * into a temporary directory is imported under aliases of the test's own
 * (unique names), re-pointed, and deleted afterwards with every image the
 * test imported.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { incusOrSkip, uniq } from "../../tests/helpers.ts";
import { incusRaw } from "../incus/client.ts";
import { listAliases, listImages } from "../incus/objects.ts";
import { buildBusybox, HOST_BUSYBOX } from "./busybox.ts";
import { aliasTarget, importImage, splitFingerprint } from "./import.ts";
import { writeMeta } from "./metadata.ts";

const dir = mkdtempSync(join(tmpdir(), "anklume-images-import-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("splitFingerprint is sha256 over the metadata tarball then the rootfs tarball", async () => {
  writeFileSync(join(dir, "m"), "meta-bytes");
  writeFileSync(join(dir, "r"), "rootfs-bytes");
  const want = createHash("sha256").update("meta-bytesrootfs-bytes").digest("hex");
  expect(await splitFingerprint(join(dir, "m"), join(dir, "r"))).toBe(want);
  expect(await splitFingerprint(join(dir, "r"), join(dir, "m"))).not.toBe(want);
});

const live = await incusOrSkip("lib/images/import.test.ts");

describe.skipIf(!live || !existsSync(HOST_BUSYBOX))(
  "importImage on the real daemon (skipped only without an Incus daemon or /bin/busybox; required under CI)",
  () => {
    const alias = `agimg-${uniq()}`;
    const other = `${alias}-b`;
    const imported = new Set<string>();
    afterAll(async () => {
      for (const a of [alias, other]) await incusRaw(["image", "alias", "delete", a]);
      for (const fp of imported) await incusRaw(["image", "delete", fp]);
      const left = (await listImages("default")).filter((i) => imported.has(i.fingerprint));
      expect(left).toEqual([]);
    }, 60_000);

    test("imports once, points a new alias at it, and a second import changes nothing", async () => {
      const work = mkdtempSync(join(dir, "w-"));
      const { meta, rootfs } = await buildBusybox(work);
      const fp = await importImage(meta, rootfs, alias);
      imported.add(fp);
      expect(fp).toBe(await splitFingerprint(meta, rootfs));
      expect(await aliasTarget(alias)).toBe(fp);
      const images = (await listImages("default")).filter((i) => i.fingerprint === fp);
      expect(images.map((i) => i.aliases.map((a) => a.name))).toEqual([[alias]]);
      const before = await listAliases("default");
      expect(await importImage(meta, rootfs, alias)).toBe(fp);
      expect(await listAliases("default")).toEqual(before);
    }, 120_000);

    test("re-importing re-points the alias and deletes the old image, unless another alias names it", async () => {
      const old = await aliasTarget(alias);
      if (!old) throw new Error("the previous test did not import the image");
      await incusRaw(["image", "alias", "create", other, old], { input: "\n" });
      const work = mkdtempSync(join(dir, "w-"));
      const { rootfs } = await buildBusybox(work);
      // Another metadata tarball (another date): another fingerprint.
      const meta2 = join(work, "meta2.tar.gz");
      await writeMeta(work, meta2, {
        os: "busybox",
        release: "test",
        what: "re-point",
        created: new Date("2020-01-01T00:00:00Z"),
      });
      const fp2 = await importImage(meta2, rootfs, alias);
      imported.add(fp2);
      expect(fp2).not.toBe(old);
      expect(await aliasTarget(alias)).toBe(fp2);
      // `other` still names the old image, so it stays.
      expect(await aliasTarget(other)).toBe(old);
      expect((await listImages("default")).some((i) => i.fingerprint === old)).toBe(true);

      // Once only `alias` names it, re-pointing away deletes it.
      await incusRaw(["image", "alias", "delete", other]);
      const meta3 = join(work, "meta3.tar.gz");
      await writeMeta(work, meta3, {
        os: "busybox",
        release: "test",
        what: "re-point again",
        created: new Date("2021-01-01T00:00:00Z"),
      });
      const fp3 = await importImage(meta3, rootfs, alias);
      imported.add(fp3);
      expect(await aliasTarget(alias)).toBe(fp3);
      const now = (await listImages("default")).map((i) => i.fingerprint);
      expect(now).not.toContain(fp2);
      expect(now).toContain(old);
    }, 120_000);
  },
);
