#!/usr/bin/env bun
// Usage: bun scripts/build-image.ts [busybox|debian12|all]... [options]
//
// Build the local Incus images anklume's tests and domains use, and import
// them into the `default` project, when no image server is reachable:
//
//   busybox   alias anklume-busybox: busybox-static, busybox init, DHCP on
//             eth0 through udhcpc with a working event script (~1 s).
//   debian12  alias anklume-debian12: debootstrap --variant=minbase bookworm
//             with python3, systemd and systemd-networkd (DHCP on eth0), built
//             from the host's configured Debian mirror (~1 min) and cached as
//             tarballs so a later import needs no download.
//   all       both (the default).
//
// An image is built only when its alias is missing, unless --rebuild.
//
// Options:
//   --rebuild          rebuild (and re-import) even when the alias exists,
//                      ignoring the cached Debian tarballs
//   --cache-dir DIR    where built tarballs are kept
//                      (default $ANKLUME_IMAGE_CACHE or /var/cache/anklume/images)
//   --alias NAME       import under this alias instead of the image's own
//                      (one image only; e.g. to try a rebuild beside the
//                      image the domains use)
//   --mirror URI       Debian mirror for debootstrap (default: the first Debian
//                      entry of /etc/apt/sources.list.d/*.sources or
//                      /etc/apt/sources.list, else http://deb.debian.org/debian)
//   --dry-run          say what would be built or imported, change nothing
//   -h, --help         show this help
//
// Exit: 0 success, 1 failure, 2 usage error.
import process from "node:process";
import { paint, parseCli, runMain, say, topComment, UsageError } from "../lib/core/cli.ts";
import {
  buildAndImport,
  DEFAULT_CACHE,
  IMAGES,
  type ImageName,
  planImage,
} from "../lib/images/build.ts";
import { hostMirror } from "../lib/images/debian.ts";

// tests/bootstrap.test.ts still imports the images' pure parts from here;
// they live in lib/images/ (and are tested there).

const USAGE = topComment(import.meta.url);

/** Entry point: returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(argv, {
    rebuild: { type: "boolean", default: false },
    "cache-dir": { type: "string" },
    alias: { type: "string" },
    mirror: { type: "string" },
    "dry-run": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const wanted = new Set<ImageName>();
  for (const p of positionals.length ? positionals : ["all"]) {
    if (p === "all") for (const k of Object.keys(IMAGES) as ImageName[]) wanted.add(k);
    else if (p in IMAGES) wanted.add(p as ImageName);
    else throw new UsageError(`unknown image "${p}": expected busybox, debian12 or all`);
  }
  if (values.alias !== undefined) {
    if (wanted.size !== 1) throw new UsageError("--alias takes one image: busybox or debian12");
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(values.alias)) {
      throw new UsageError(
        `--alias "${values.alias}": use letters, digits, ".", "_" and "-" (starting with a letter or digit)`,
      );
    }
  }
  const cacheDir = values["cache-dir"] ?? process.env.ANKLUME_IMAGE_CACHE ?? DEFAULT_CACHE;
  const mirror = values.mirror ?? process.env.ANKLUME_DEBIAN_MIRROR ?? hostMirror();

  for (const name of wanted) {
    const started = Date.now();
    const plan = await planImage(name, { cacheDir, rebuild: values.rebuild }, values.alias);
    if (plan.present) {
      say(`${paint("green", "ok")}   image ${plan.alias} present (${plan.current?.slice(0, 12)})`);
      continue;
    }
    if (values["dry-run"]) {
      say(`would ${plan.how} as ${plan.alias}`);
      continue;
    }
    say(`${paint("blue", "==>")}  image ${plan.alias}: ${plan.how}`);
    const fp = await buildAndImport(plan, { cacheDir, mirror }, say);
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    say(`${paint("green", "done")} image ${plan.alias} -> ${fp.slice(0, 12)} in ${secs} s`);
  }
  return 0;
}

if (import.meta.main) await runMain(main, USAGE);
