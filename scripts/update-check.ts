#!/usr/bin/env bun
/*
Usage: update-check.ts [<checkout>]

The update notifier (v1's scripts/update-check.sh): one yellow line on stdout
when the upstream of the anklume checkout (default: the current directory)
has commits that it lacks, e.g. "anklume: 3 updates available on
origin/main. Run 'make -C /root/anklume upgrade'"; silent otherwise, and
silent when it cannot tell (not a checkout, no upstream, no network).

It fetches at most once an hour (the mtime of
~/.anklume/update-check-cache, or $ANKLUME_UPDATE_CHECK_CACHE), and a fetch
may take 5 seconds at most ($ANKLUME_UPDATE_CHECK_TIMEOUT); counting is
local. Meant for a login script (make install-update-notifier).

Options:
  -h, --help  Show this help

Exit status: 0 (also when it cannot tell), 2 usage error.
*/
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { parseCli, runMain, topComment, UsageError, useColour } from "../lib/core/cli.ts";
import { updateCheck } from "../lib/lifecycle/upgrade.ts";

const USAGE = "Usage: update-check.ts [<checkout>]";
const HELP = topComment(import.meta.url);

/** Entry point: returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const { values: o, positionals } = parseCli(argv, { help: { type: "boolean", short: "h" } });
  if (o.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
  const dir = resolve(positionals[0] ?? ".");
  const cache =
    process.env.ANKLUME_UPDATE_CHECK_CACHE || join(homedir(), ".anklume", "update-check-cache");
  const timeout = Number(process.env.ANKLUME_UPDATE_CHECK_TIMEOUT) || 5;
  let line: string | null = null;
  try {
    line = await updateCheck(dir, cache, timeout);
  } catch {
    line = null; // A login never fails because of the notifier.
  }
  if (line) {
    const text = useColour(process.stdout) ? `\u001b[33m${line}\u001b[0m` : line;
    process.stdout.write(`${text}\n`);
  }
  return 0;
}

if (import.meta.main) await runMain(main, USAGE);
