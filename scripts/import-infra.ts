#!/usr/bin/env bun
/*
Usage: import-infra.ts [-o <file>] [--project <p>]... [--infra-id <id>] [--dry-run]

Write an infra.yml from the running Incus state (make import-infra): every
non-default project that holds instances becomes a domain; its bridge gives
base_subnet and subnet_id; its custom profiles, and each instance's type,
static IP (eth0's ipv4.address), image alias, protection, boot and snapshot
keys, other config keys and local devices are kept. After make sync and
make apply the same projects, bridges and instances are adopted: nothing is
recreated or deleted. What had to be guessed is written as a comment above
the part it concerns.

Options:
  -o, --output <file>  Write there (default infra.yml, refused when it exists;
                       a file named here is replaced)
  --project <p>        Import only this project (repeat for more)
  --infra-id <id>      Import only the projects marked with this infra id
                       (user.anklume.infra), when the daemon holds several
  --dry-run            Print the YAML on stdout, write nothing
  -h, --help           Show this help

Exit status: 0 written, 1 failure (Incus unreachable, infra.yml exists), 2 usage error.
*/
import { existsSync } from "node:fs";
import process from "node:process";
import { paint, parseCli, runMain, say, topComment, UsageError } from "../lib/core/cli.ts";
import { writeIfChanged } from "../lib/core/fswrite.ts";
import { nestingPrefix } from "../lib/core/naming.ts";
import { generatorContext } from "../lib/core/nesting.ts";
import { incusAvailable } from "../lib/incus/client.ts";
import {
  listImages,
  listInstances,
  listNetworks,
  listProfiles,
  listProjects,
} from "../lib/incus/objects.ts";
import { importInfra, renderImport } from "../lib/lifecycle/import.ts";

const USAGE = "Usage: import-infra.ts [-o <file>] [--project <p>]... [--infra-id <id>] [--dry-run]";
const HELP = topComment(import.meta.url);

const OPTIONS = {
  output: { type: "string", short: "o" },
  project: { type: "string", multiple: true },
  "infra-id": { type: "string" },
  "dry-run": { type: "boolean" },
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
  if (o.output === "") throw new UsageError("-o needs a file name");
  const out = o.output ?? "infra.yml";
  const dryRun = Boolean(o["dry-run"]);
  if (!dryRun && o.output === undefined && existsSync(out)) {
    say(
      `${paint("red", "error:")} Cannot import into ${out}: it exists and would be overwritten; ` +
        "write elsewhere with make import-infra O=infra.imported.yml, compare, then replace it yourself",
    );
    return 1;
  }
  if (!(await incusAvailable())) {
    say(
      `${paint("red", "error:")} Cannot import: the Incus daemon does not answer; start it (make dev-incus)`,
    );
    return 1;
  }
  const [projects, networks, profiles, instances, images] = await Promise.all([
    listProjects(),
    listNetworks(),
    listProfiles(),
    listInstances(),
    listImages(),
  ]);
  const prefix = nestingPrefix(generatorContext().absoluteLevel);
  const r = importInfra({ projects, networks, profiles, instances, images }, prefix, {
    projects: o.project,
    infraId: o["infra-id"],
  });
  if (r.domains === 0) {
    say(
      `${paint("red", "error:")} Nothing to import: no project ${o.project || o["infra-id"] ? "in the scope given " : ""}holds instances (the default project is not imported); nothing written`,
    );
    return 1;
  }
  const text = renderImport(r, [
    "Imported from the running Incus state by make import-infra.",
    "Check it, then: make sync && make apply (nothing is recreated or deleted).",
  ]);
  if (dryRun) {
    process.stdout.write(text);
    return 0;
  }
  const existed = existsSync(out);
  writeIfChanged(out, text);
  say(
    `${existed ? "Replaced" : "Wrote"} ${out}: ${r.domains} domain(s), ${r.machines} machine(s).`,
  );
  if (r.notes.size > 0) say(`Read the comments in ${out}: they say what was guessed.`);
  say(
    `Next: ${out === "infra.yml" ? "" : `review it, move it to infra.yml, then `}make sync && make apply`,
  );
  return 0;
}

if (import.meta.main) await runMain(main, USAGE);
