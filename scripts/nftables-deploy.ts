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
// Exit: 0 success, 1 failure (missing file, refused or invalid ruleset,
// nft error), 2 usage error.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { $ } from "zx";
import { paint, parseCli, runMain, say, topComment, UsageError } from "../lib/core/cli.ts";
import { readTextFile, writeIfChanged } from "../lib/core/fswrite.ts";
import { incusRaw } from "../lib/incus/client.ts";
import { listInstances } from "../lib/incus/objects.ts";
import { DEFAULT_DEST, DEFAULT_OUTPUT, unsafeLines } from "../lib/nftables/ruleset.ts";

const USAGE = topComment(import.meta.url);

const ADMIN_INSTANCE = "anklume-instance";

class DeployError extends Error {}

/** Pull the ruleset out of an instance into `into`; the instance's project is looked up. */
async function pullFromInstance(source: string, explicit: boolean, into: string): Promise<string> {
  const all = await listInstances().catch((e: Error) => {
    throw new DeployError(
      `Cannot list Incus instances: ${e.message}; is the Incus daemon running?`,
    );
  });
  const wanted = (name: string) =>
    name === source || (!explicit && new RegExp(`^\\d{3}-${source}$`).test(name));
  const found = all.filter((i) => wanted(i.name)).sort((a, b) => a.name.localeCompare(b.name));
  const inst = found.find((i) => i.name === source) ?? found[0];
  if (inst === undefined) {
    throw new DeployError(
      `Cannot find instance "${source}" in any project to pull ${DEFAULT_OUTPUT} from; run make nftables there, or pass --file PATH`,
    );
  }
  const r = await incusRaw([
    "file",
    "pull",
    "--project",
    inst.project,
    `${inst.name}${DEFAULT_OUTPUT}`,
    into,
  ]);
  if (r.exitCode !== 0) {
    throw new DeployError(
      `Cannot pull ${DEFAULT_OUTPUT} from instance "${inst.name}" (project ${inst.project}): ${r.stderr.trim()}; run make nftables first`,
    );
  }
  return `${inst.name}:${DEFAULT_OUTPUT}`;
}

/** The live `table inet anklume` as nft lists it, or "" when it is not loaded. */
async function liveTable(): Promise<string> {
  const r = await $({ quiet: true, nothrow: true })`nft list table inet anklume`;
  return r.exitCode === 0 ? r.stdout : "";
}

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
  const dest = values.dest ?? DEFAULT_DEST;
  const work = mkdtempSync(join(tmpdir(), "anklume-nft-"));
  try {
    // 1. Where the ruleset comes from.
    let path: string;
    let from: string;
    if (values.file !== undefined) {
      path = values.file;
      from = path;
      if (!existsSync(path)) {
        throw new DeployError(
          `Cannot read ruleset "${path}": no such file; run make nftables first`,
        );
      }
    } else if (values.source === undefined && existsSync(DEFAULT_OUTPUT)) {
      path = DEFAULT_OUTPUT;
      from = path;
    } else {
      path = join(work, "anklume-isolation.nft");
      from = await pullFromInstance(
        values.source ?? ADMIN_INSTANCE,
        values.source !== undefined,
        path,
      );
    }
    const text = readTextFile(path, "the ruleset");
    say(`Ruleset: ${from}`);

    // 2. Content checks: this file may only touch table inet anklume.
    const bad = unsafeLines(text);
    if (bad.length > 0) {
      say(
        `${paint("red", "error:")} Refusing to load ${from}: it may only touch table inet anklume, but:`,
      );
      for (const b of bad) say(`  ${b}`);
      say("Regenerate it with make nftables (never edit it by hand).");
      return 1;
    }
    if (!/^\s*table\s+inet\s+anklume\s*\{/m.test(text)) {
      say(
        `${paint("red", "error:")} Refusing to load ${from}: it defines no table inet anklume; regenerate it with make nftables`,
      );
      return 1;
    }

    // 3. Syntax and semantics, without loading.
    const check = await $({ quiet: true, nothrow: true })`nft -c -f ${path}`.timeout("60s");
    if (check.exitCode !== 0) {
      say(`${paint("red", "error:")} nft -c rejected ${from}:`);
      say(check.stderr.trim());
      return 1;
    }
    if (values["dry-run"]) {
      process.stdout.write(
        values.json
          ? `${JSON.stringify({ source: from, dest, valid: true, loaded: false })}\n`
          : text,
      );
      say(paint("green", `Dry run: ${from} is valid (nft -c); nothing copied, nothing loaded.`));
      return 0;
    }

    // 4. Install and load.
    const before = await liveTable();
    let copied: boolean;
    try {
      // v1's modes (operations-contract §6.8): the file 0644, its parent 0755.
      copied = writeIfChanged(dest, text, { mode: 0o644, dirMode: 0o755 }) !== "unchanged";
    } catch (e) {
      throw new DeployError(`${(e as Error).message}; or run as root, or pass --dest PATH`);
    }
    const load = await $({ quiet: true, nothrow: true })`nft -f ${dest}`.timeout("60s");
    if (load.exitCode !== 0) {
      say(`${paint("red", "error:")} nft -f ${dest} failed: ${load.stderr.trim()}`);
      return 1;
    }
    const after = await liveTable();
    const changed = copied || before !== after;
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
    say(`${paint("red", "error:")} ${e.message}`);
    return 1;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.main) await runMain(main, USAGE);
