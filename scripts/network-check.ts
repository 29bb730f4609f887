#!/usr/bin/env bun
/*
Usage: network-check.ts <backup|verify|restore-info> [--dir <dir>] [--file <backup>]

The network safety net around make apply (v1's network-safety-check.sh):

  backup        Record this host's routes and addresses (IPv4 and IPv6, main
                table) into <dir>/network-<timestamp>.txt and print its path
  verify        Compare them with a backup (the newest, or --file): any route
                or address gone, new or changed is printed with the commands
                that put it back, and the exit status is 1
  restore-info  Print the newest backup and how to use it

anklume's own bridges (net-*, NNN-net-*), veth ends and lo are not watched:
the apply creates and removes them. make apply, apply-infra and apply-limit
run backup before and verify after; ANKLUME_SKIP_NETWORK_CHECK=1 (any
non-empty value) skips both.

Options:
  --dir <dir>     Backup folder (default $ANKLUME_NETWORK_BACKUP_DIR, else ~/.anklume-network-backups)
  --file <path>   verify: compare with this backup instead of the newest
  -h, --help      Show this help

Exit status: 0 unchanged (or done), 1 changed or no backup, 2 usage error.
*/
import { readFileSync } from "node:fs";
import process from "node:process";
import { paint, parseCli, runMain, say, topComment, UsageError } from "../lib/core/cli.ts";
import {
  backupDir,
  compareNet,
  newestBackup,
  readBackup,
  readNetState,
  restoreCommands,
  unchanged,
  writeBackup,
} from "../lib/lifecycle/netcheck.ts";

const USAGE =
  "Usage: network-check.ts <backup|verify|restore-info> [--dir <dir>] [--file <backup>]";
const HELP = topComment(import.meta.url);
const OPTIONS = {
  dir: { type: "string" },
  file: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** Entry point: returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const { values: o, positionals } = parseCli(argv, OPTIONS);
  if (o.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const [cmd, ...rest] = positionals;
  if (!cmd) throw new UsageError("missing command (backup, verify or restore-info)");
  if (!["backup", "verify", "restore-info"].includes(cmd)) {
    throw new UsageError(`unknown command "${cmd}" (expected backup, verify or restore-info)`);
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  if (o.file && cmd !== "verify") throw new UsageError("--file only applies to verify");
  const dir = backupDir(o.dir);

  if (cmd === "backup") {
    const path = writeBackup(dir, await readNetState());
    say(`==> Network state recorded in ${path}`);
    return 0;
  }
  const file = o.file ?? newestBackup(dir);
  if (!file) {
    say(
      `${paint("red", "error:")} No network backup in ${dir}; record one with network-check.ts backup`,
    );
    return 1;
  }
  if (cmd === "restore-info") {
    process.stdout.write(readFileSync(file, "utf8"));
    say(
      `(${file}) Compare with ip route / ip addr; network-check.ts verify prints the commands that put it back.`,
    );
    return 0;
  }
  const diff = compareNet(readBackup(file), await readNetState());
  if (unchanged(diff)) {
    say("==> Host network unchanged (routes and addresses as before)");
    return 0;
  }
  say(paint("red", "WARNING: the host's network changed during this run:"));
  for (const r of diff.missingRoutes) say(`  route gone:     ${r}`);
  for (const r of diff.newRoutes) say(`  route new:      ${r}`);
  for (const a of diff.missingAddresses) say(`  address gone:   ${a}`);
  for (const a of diff.newAddresses) say(`  address new:    ${a}`);
  say(`Recorded before in ${file}. To put it back (as root):`);
  for (const c of restoreCommands(diff)) say(`  ${c}`);
  return 1;
}

if (import.meta.main) await runMain(main, USAGE);
