#!/usr/bin/env bun
// Usage: bun scripts/nftables-deploy.ts [options]
//
// Check and load the isolation ruleset that `make nftables` wrote, on the
// host (as root). The ruleset is taken from, in this order:
//   --file PATH        a local file;
//   --source NAME      pulled with `incus file pull` from that instance
//                      (its project is looked up across all projects);
//   otherwise /opt/anklume/nftables-isolation.nft when it exists here (dev
//   mode: anklume runs on the host), else pulled from the admin instance
//   `anklume-instance` (or `NNN-anklume-instance` with a nesting prefix).
//
// Before loading, the content is refused (exit 1, offending lines listed) if
// any table other than `inet anklume` is named, or it flushes the ruleset,
// deletes `inet filter`, sets a drop policy on an input chain, or includes a
// file. Then `nft -c -f` validates it; then it is copied to the destination
// (0644) and loaded with `nft -f` (atomic replace of `table inet anklume`:
// loading twice gives the same ruleset).
//
// Options:
//   --file PATH        the ruleset to deploy (a local file)
//   --source NAME      the instance to pull it from
//   --dest PATH        where to install it
//                      (default: /etc/nftables.d/anklume-isolation.nft)
//   --dry-run          print the rules and validate them, load nothing
//   --json             print {source, dest, changed, loaded} on stdout
//   -h, --help         show this help
//
// With INCUS_REMOTE set (a remote Incus, docs/remote.md) it refuses to load
// anything here: the bridges are on the remote's host; --dry-run still checks.
//
// Exit: 0 success, 1 failure (missing file, refused or invalid ruleset,
// nft error, a remote Incus), 2 usage error.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { paint, parseCli, runMain, say, topComment, UsageError } from "../lib/core/cli.ts";
import { readTextFile } from "../lib/core/fswrite.ts";
import {
  checkRuleset,
  DeployError,
  loadRuleset,
  locateRuleset,
  reportDeployError,
} from "../lib/nftables/deploy.ts";
import { DEFAULT_DEST } from "../lib/nftables/ruleset.ts";

const USAGE = topComment(import.meta.url);

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(argv, {
    help: { type: "boolean", short: "h" },
    file: { type: "string" },
    source: { type: "string" },
    dest: { type: "string" },
    "dry-run": { type: "boolean" },
    json: { type: "boolean" },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (values.file !== undefined && values.source !== undefined) {
    throw new UsageError("use either --file or --source, not both");
  }
  if (values.file === "" || values.source === "" || values.dest === "") {
    throw new UsageError("--file, --source and --dest need a non-empty value");
  }
  // The ruleset isolates bridges of this machine: with a remote Incus
  // (INCUS_REMOTE, docs/remote.md) they live on another host.
  const remote = process.env.INCUS_REMOTE;
  if (remote && remote !== "local" && !values["dry-run"]) {
    say(
      `${paint("red", "error:")} INCUS_REMOTE is ${JSON.stringify(remote)}: the instances and their bridges run on that host, and this would load the isolation ruleset on this machine, which has none of them. Run make nftables-deploy on the remote's host (or copy the file there and run nft -f); --dry-run checks it here`,
    );
    return 1;
  }
  const dest = values.dest ?? DEFAULT_DEST;
  const work = mkdtempSync(join(tmpdir(), "anklume-nft-"));
  try {
    // 1. Where the ruleset comes from; 2. content checks and nft -c (lib/nftables/deploy.ts).
    const { path, from } = await locateRuleset({ file: values.file, source: values.source }, work);
    const text = readTextFile(path, "the ruleset");
    say(`Ruleset: ${from}`);
    await checkRuleset(text, path, from);
    if (values["dry-run"]) {
      process.stdout.write(
        values.json
          ? `${JSON.stringify({ source: from, dest, valid: true, loaded: false })}\n`
          : text,
      );
      say(paint("green", `Dry run: ${from} is valid (nft -c); nothing copied, nothing loaded.`));
      return 0;
    }

    // 3. Install and load.
    const { changed } = await loadRuleset(text, dest);
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ source: from, dest, changed, loaded: true })}\n`);
    }
    say(
      paint(
        "green",
        `Loaded table inet anklume from ${dest} (${changed ? "changed" : "already up to date"}).`,
      ),
    );
    return 0;
  } catch (e) {
    if (!(e instanceof DeployError)) throw e;
    reportDeployError(e);
    return 1;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.main) await runMain(main, USAGE);
