#!/usr/bin/env bun
/*
Usage: export-images.ts [options]

Export the images the infra uses from the host's Incus (project default) to a
directory, so that machines running Incus themselves (dev_test_runner) import
them from their read-only disk /mnt/host-images without any network
(make export-images).

Images: every machine's os_image (else default_os_image), as read from the
generated tree (run make sync first); --image replaces them all (OS_IMAGE=).
An image reference's local alias is what follows its last colon
(images:debian/13 -> debian/13). An export whose fingerprint still matches the
image is kept, so a second run exports nothing.

Layout: what `incus image export` writes, per alias: `<name>` + `<name>.root`
(a split image) or `<name>.tar.gz` (a unified one), `<name>` being the alias
with every character outside [A-Za-z0-9._-] replaced by `_`; and
`index.json`: [{alias, fingerprint, files}].

Options:
  --base-dir <dir>  The directory holding inventory/, group_vars/, host_vars/ (default .)
  --dir <dir>       Where to export (default /var/lib/anklume/images)
  --image <ref>     Export this image instead of the infra's ones
  --dry-run         Say what would be exported, write nothing
  -h, --help        Show this help

Exit status: 0 success, 1 failure (an image the infra uses is not in the
local image store, or an export failed), 2 usage error.
*/
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import * as v from "valibot";
import { paint, parseCli, runMain, say, topComment, UsageError } from "../lib/core/cli.ts";
import { readIfExists, writeIfChanged } from "../lib/core/fswrite.ts";
import { readInventory } from "../lib/core/inventory.ts";
import { incusRun } from "../lib/incus/client.ts";
import { listAliases } from "../lib/incus/objects.ts";
import {
  type ExportEntry,
  exportName,
  exportPlan,
  HOST_IMAGES_DIR,
  localAlias,
  usedImages,
} from "../lib/provision/images.ts";

const USAGE = `Usage: export-images.ts [--base-dir DIR] [--dir DIR] [--image REF] [--dry-run] (export-images.ts --help)`;
const HELP = topComment(import.meta.url);
const OPTIONS = {
  "base-dir": { type: "string" },
  dir: { type: "string" },
  image: { type: "string" },
  "dry-run": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

const IndexSchema = v.array(
  v.object({ alias: v.string(), fingerprint: v.string(), files: v.array(v.string()) }),
);

/** The index of an earlier export; an unreadable one counts as empty (everything is exported again). */
function readIndex(path: string): ExportEntry[] {
  const text = readIfExists(path);
  if (text === null) return [];
  try {
    const parsed = v.safeParse(IndexSchema, JSON.parse(text));
    return parsed.success ? parsed.output : [];
  } catch {
    return [];
  }
}

/** Export one alias into `dir` through a temporary directory beside it; returns the file names. */
async function exportOne(alias: string, dir: string): Promise<string[]> {
  const name = exportName(alias);
  const tmp = mkdtempSync(join(dir, `.export-${name}-`));
  try {
    await incusRun(["image", "export", alias, join(tmp, name), "--project", "default"]);
    const files = readdirSync(tmp).sort();
    if (files.length === 0) throw new Error(`incus image export ${alias} wrote no file`);
    for (const f of files) renameSync(join(tmp, f), join(dir, f));
    return files;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export async function main(argv: string[]): Promise<number> {
  const { values: o, positionals } = parseCli(argv, OPTIONS);
  if (o.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (o.image !== undefined && o.image.trim() === "") throw new UsageError("--image needs a name");
  const baseDir = resolve(o["base-dir"] ?? ".");
  const dir = resolve(o.dir ?? HOST_IMAGES_DIR);
  const dryRun = Boolean(o["dry-run"]);

  let aliases: string[];
  if (o.image) aliases = [localAlias(o.image)];
  else {
    const inv = readInventory(baseDir);
    if (inv === null) {
      say(
        `${paint("red", "error:")} Cannot export images: no generated inventory in ${join(baseDir, "inventory")}; run make sync first (or give --image NAME)`,
      );
      return 1;
    }
    aliases = usedImages(inv.hosts, inv.all);
  }
  if (aliases.length === 0) {
    say("export-images: the infra names no image; nothing to export");
    return 0;
  }

  const local = new Map((await listAliases("default")).map((a) => [a.name, a.target]));
  const indexPath = join(dir, "index.json");
  const index = readIndex(indexPath);
  const present = (f: string) => readdirSafe(dir).includes(f);
  const plan = exportPlan(aliases, local, index, present);

  const next = new Map(index.map((e) => [e.alias, e]));
  let exported = 0;
  let kept = 0;
  let failed = 0;
  if (!dryRun) mkdirSync(dir, { recursive: true });
  for (const step of plan) {
    if (step.action === "missing") {
      failed++;
      say(
        `${paint("red", "error:")} image ${step.alias} is not in the host's image store (project default): ` +
          "import or build it first (make images builds anklume-busybox and anklume-debian12; a remote image is cached by make apply)",
      );
      continue;
    }
    const fp = step.fingerprint ?? "";
    if (step.action === "keep") {
      kept++;
      say(`ok   ${step.alias} (${fp.slice(0, 12)}) already exported`);
      continue;
    }
    if (dryRun) {
      exported++;
      say(`would export ${step.alias} (${fp.slice(0, 12)}) to ${dir}`);
      continue;
    }
    try {
      const files = await exportOne(step.alias, dir);
      // Files of an older export of this alias that the new one did not rewrite.
      for (const f of next.get(step.alias)?.files ?? []) {
        if (!files.includes(f)) rmSync(join(dir, f), { force: true });
      }
      next.set(step.alias, { alias: step.alias, fingerprint: fp, files });
      exported++;
      say(
        `done ${step.alias} (${fp.slice(0, 12)}) -> ${files.map((f) => join(dir, f)).join(" + ")}`,
      );
    } catch (e) {
      failed++;
      say(`${paint("red", "error:")} Cannot export ${step.alias}: ${(e as Error).message}`);
    }
  }
  if (!dryRun) {
    const entries = [...next.values()].sort((a, b) => a.alias.localeCompare(b.alias));
    writeIfChanged(indexPath, `${JSON.stringify(entries, null, 2)}\n`);
  }
  say(
    `export-images: ${exported} ${dryRun ? "to export" : "exported"}, ${kept} up to date, ${failed} failed (${dir})`,
  );
  return failed > 0 ? 1 : 0;
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

if (import.meta.main) await runMain(main, USAGE);
