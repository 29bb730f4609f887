#!/usr/bin/env bun
/*
Usage: upgrade.ts [--upstream <remote/branch>] [--dry-run] [--no-sync] [--dir <checkout>]

Update the anklume framework of this checkout from its upstream (make upgrade):
fetch the upstream (the current branch's configured one, or --upstream), then
fast-forward to it, or merge it when you have commits of your own (refused
when they conflict). Framework files you changed locally that the update
rewrites are saved first as <file>.bak (<file>.bak.N when that exists) and
listed; local changes to files the update does not touch stay as they are.
Your files are never written: infra.yml, infra/, roles_custom/,
anklume.conf.yml and the generated inventory/, group_vars/, host_vars/; when
the upstream would change one of them that you changed here, it refuses.
Then it checks that the updated framework accepts your infra.yml (make
sync-dry; on a refusal it prints the errors and how to go back) and runs make
sync. It prints the commits pulled and the files backed up.

Options:
  --upstream <r/b>  Pull from this remote branch (make upgrade UPSTREAM=origin/main)
  --dry-run         Fetch and say what would happen; change nothing
  --no-sync         Do not run make sync-dry / make sync afterwards
  --dir <dir>       The checkout (default: the current directory)
  -h, --help        Show this help

Exit status: 0 upgraded or already up to date, 1 refused or failed (not a git
checkout, no upstream, upstream unreachable, a conflict, infra.yml rejected by
the new framework), 2 usage error. A refusal changes nothing.
*/
import process from "node:process";
import { paint, parseCli, runMain, say, topComment, UsageError } from "../lib/core/cli.ts";
import { runUpgrade } from "../lib/lifecycle/upgrade.ts";

const USAGE =
  "Usage: upgrade.ts [--upstream <remote/branch>] [--dry-run] [--no-sync] [--dir <checkout>]";
const HELP = topComment(import.meta.url);

const OPTIONS = {
  upstream: { type: "string" },
  "dry-run": { type: "boolean" },
  "no-sync": { type: "boolean" },
  dir: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** Entry point: returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const { values: o, positionals } = parseCli(argv, OPTIONS, false);
  if (o.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (o.upstream === "")
    throw new UsageError("--upstream needs <remote>/<branch>, e.g. origin/main");
  if (o.dir === "") throw new UsageError("--dir needs a directory");
  return runUpgrade({
    dir: o.dir ?? process.cwd(),
    upstream: o.upstream,
    dryRun: Boolean(o["dry-run"]),
    noSync: Boolean(o["no-sync"]),
    say,
    error: (t) => paint("red", t),
  });
}

if (import.meta.main) await runMain(main, USAGE);
