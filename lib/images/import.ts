/**
 * Import a split image (metadata and rootfs tarballs) into the `default`
 * project and point an alias at it. The fingerprint is computed locally as
 * Incus does, so an image already there is not imported again; an alias is
 * re-pointed in one API call, then the image it left is deleted when no
 * other alias names it.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { incusRaw, incusRun } from "../incus/client.ts";
import { listAliases, listImages } from "../incus/objects.ts";

/**
 * The fingerprint Incus gives a split image: sha256 over the metadata tarball
 * followed by the rootfs tarball.
 */
export async function splitFingerprint(meta: string, rootfs: string): Promise<string> {
  const h = createHash("sha256");
  for (const f of [meta, rootfs]) {
    for await (const chunk of createReadStream(f)) h.update(chunk as Buffer);
  }
  return h.digest("hex");
}

/** The fingerprint an alias points at in the default project, or undefined. */
export async function aliasTarget(alias: string): Promise<string | undefined> {
  const all = await listAliases("default");
  return all.find((a) => a.name === alias)?.target;
}

/** Import a split image into the default project and point `alias` at it; returns its fingerprint. */
export async function importImage(meta: string, rootfs: string, alias: string): Promise<string> {
  const fp = await splitFingerprint(meta, rootfs);
  const images = await listImages("default");
  if (!images.some((i) => i.fingerprint === fp)) {
    await incusRun(["image", "import", meta, rootfs, "--project", "default"], {
      timeout: "600s",
      input: "\n",
    });
  }
  const old = await aliasTarget(alias);
  if (old === fp) return fp;
  if (old === undefined) {
    await incusRun(["image", "alias", "create", alias, fp, "--project", "default"], {
      input: "\n",
    });
    return fp;
  }
  // Re-point the alias in one API call, so a concurrent launch never finds it missing.
  await incusRun([
    "query",
    "-X",
    "PATCH",
    `/1.0/images/aliases/${encodeURIComponent(alias)}?project=default`,
    "-d",
    JSON.stringify({ target: fp }),
  ]);
  const oldImage = images.find((i) => i.fingerprint === old);
  if (oldImage && (oldImage.aliases ?? []).every((a) => a.name === alias)) {
    await incusRaw(["image", "delete", old, "--project", "default"]);
  }
  return fp;
}
