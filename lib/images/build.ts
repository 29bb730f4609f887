/**
 * The image pipeline behind `scripts/build-image.ts`: which local images
 * exist, what to do for one (present, import the cached tarballs, or build),
 * and doing it in a build directory under the cache that is removed
 * afterwards (and, when an interrupted run left one, on the next run).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { $ } from "zx";
import { buildBusybox } from "./busybox.ts";
import { buildDebian } from "./debian.ts";
import { aliasTarget, importImage } from "./import.ts";

/** The images anklume builds, by name. */
export const IMAGES = {
  busybox: { alias: "anklume-busybox" },
  debian12: { alias: "anklume-debian12" },
} as const;
export type ImageName = keyof typeof IMAGES;

/** The default cache of built tarballs. */
export const DEFAULT_CACHE = "/var/cache/anklume/images";

/** Where an image's cached tarballs live (only debian12 is cached and reused). */
export function cachedFiles(cacheDir: string, name: ImageName): { meta: string; rootfs: string } {
  return {
    meta: join(cacheDir, `${name}-meta.tar.gz`),
    rootfs: join(cacheDir, `${name}-rootfs.tar.gz`),
  };
}

/** What ensureImage would do for one image. */
export interface ImagePlan {
  name: ImageName;
  alias: string;
  /** The fingerprint the alias points at now, if any. */
  current: string | undefined;
  /** Nothing to do: the alias exists and no rebuild was asked. */
  present: boolean;
  /** Import the cached tarballs instead of building. */
  cached: boolean;
  /** For people: "build and import" or "import cached <rootfs>". */
  how: string;
}

/** Decide what to do for one image (reads Incus's aliases and the cache, changes nothing). */
export async function planImage(
  name: ImageName,
  opts: { cacheDir: string; rebuild: boolean },
  alias: string = IMAGES[name].alias,
): Promise<ImagePlan> {
  const current = await aliasTarget(alias);
  const files = cachedFiles(opts.cacheDir, name);
  const cached =
    name === "debian12" && !opts.rebuild && existsSync(files.meta) && existsSync(files.rootfs);
  return {
    name,
    alias,
    current,
    present: current !== undefined && !opts.rebuild,
    cached,
    how: cached ? `import cached ${files.rootfs}` : "build and import",
  };
}

/** Unmount what a chroot may have left and delete a build directory; a failure is reported. */
export async function removeTree(dir: string, progress: (line: string) => void): Promise<void> {
  for (const sub of ["proc", "sys", "dev/pts", "dev"]) {
    await $({ quiet: true, nothrow: true })`umount -l ${join(dir, "rootfs", sub)}`;
  }
  const r = await $({ quiet: true, nothrow: true })`rm -rf --one-file-system ${dir}`;
  if (r.exitCode !== 0) progress(`warning: could not remove ${dir}: ${r.stderr.trim()}`);
}

/** Remove build directories an interrupted run left behind (`build-*`, older than `maxAgeMs`). */
export async function removeStaleBuilds(
  cacheDir: string,
  progress: (line: string) => void,
  maxAgeMs = 3_600_000,
): Promise<void> {
  if (!existsSync(cacheDir)) return;
  const cutoff = Date.now() - maxAgeMs;
  for (const name of readdirSync(cacheDir)) {
    const dir = join(cacheDir, name);
    if (name.startsWith("build-") && statSync(dir).mtimeMs < cutoff) {
      progress(`removing ${dir}, left by an interrupted build`);
      await removeTree(dir, progress);
    }
  }
}

/**
 * Carry out a plan: build (or take the cached tarballs) in a fresh
 * `cacheDir/build-<name>-*` directory, import, point the alias; returns the
 * fingerprint. The build directory is always removed.
 */
export async function buildAndImport(
  plan: ImagePlan,
  opts: { cacheDir: string; mirror: string },
  progress: (line: string) => void,
): Promise<string> {
  mkdirSync(opts.cacheDir, { recursive: true });
  await removeStaleBuilds(opts.cacheDir, progress);
  const work = mkdtempSync(join(opts.cacheDir, `build-${plan.name}-`));
  try {
    let files: { meta: string; rootfs: string };
    if (plan.cached) files = cachedFiles(opts.cacheDir, plan.name);
    else if (plan.name === "busybox") files = await buildBusybox(work);
    else files = await buildDebian(work, opts.cacheDir, opts.mirror, progress);
    return await importImage(files.meta, files.rootfs, plan.alias);
  } finally {
    await removeTree(work, progress);
  }
}
