/**
 * Loading the isolation ruleset on the host: where it comes from (a file, an
 * instance, the dev-mode default), the content checks and `nft -c` before
 * anything is loaded, then the copy to its destination and `nft -f`. Used by
 * `scripts/nftables-deploy.ts` (make nftables-deploy) and by `make ai-switch`
 * (lib/nftables/ai-switch.ts), so both load a ruleset the same way.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { $ } from "zx";
import { paint, say } from "../core/cli.ts";
import { writeIfChanged } from "../core/fswrite.ts";
import { incusRaw } from "../incus/client.ts";
import { listInstances } from "../incus/objects.ts";
import { DEFAULT_OUTPUT, type NftSpecError, unsafeLines } from "./ruleset.ts";

/** The admin instance v1 pulled the ruleset from. */
const ADMIN_INSTANCE = "anklume-instance";

/** A refusal or failure: one message, then detail lines (printed indented), then a hint. */
export class DeployError extends Error {
  constructor(
    message: string,
    readonly details: string[] = [],
    readonly hint = "",
  ) {
    super(message);
  }
}

/** Print a DeployError on stderr: the message, its detail lines indented, its hint. */
export function reportDeployError(e: DeployError): void {
  say(`${paint("red", "error:")} ${e.message}`);
  for (const d of e.details) say(`  ${d}`);
  if (e.hint !== "") say(e.hint);
}

/** Print every problem of an invalid spec on stderr; returns the exit code, 1. */
export function reportSpecError(e: NftSpecError): number {
  say(`${paint("red", "error:")} Cannot render the isolation ruleset:`);
  for (const p of e.problems) say(`  - ${p}`);
  return 1;
}

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

/**
 * Find the ruleset to deploy: `file`; else `source` (an instance); else the
 * local DEFAULT_OUTPUT when it exists; else the admin instance. A pulled copy
 * goes into the directory `work`. Returns its path and where it came from.
 */
export async function locateRuleset(
  opts: { file?: string; source?: string },
  work: string,
): Promise<{ path: string; from: string }> {
  if (opts.file !== undefined) {
    if (!existsSync(opts.file)) {
      throw new DeployError(
        `Cannot read ruleset "${opts.file}": no such file; run make nftables first`,
      );
    }
    return { path: opts.file, from: opts.file };
  }
  if (opts.source === undefined && existsSync(DEFAULT_OUTPUT)) {
    return { path: DEFAULT_OUTPUT, from: DEFAULT_OUTPUT };
  }
  const path = join(work, "anklume-isolation.nft");
  const from = await pullFromInstance(
    opts.source ?? ADMIN_INSTANCE,
    opts.source !== undefined,
    path,
  );
  return { path, from };
}

/**
 * The checks before a ruleset is loaded: it may only touch `table inet
 * anklume` and must define it (unsafeLines), and `nft -c -f path` must accept
 * it (nothing loaded). Throws DeployError naming what is wrong.
 */
export async function checkRuleset(text: string, path: string, from: string): Promise<void> {
  const bad = unsafeLines(text);
  if (bad.length > 0) {
    throw new DeployError(
      `Refusing to load ${from}: it may only touch table inet anklume, but:`,
      bad,
      "Regenerate it with make nftables (never edit it by hand).",
    );
  }
  if (!/^\s*table\s+inet\s+anklume\s*\{/m.test(text)) {
    throw new DeployError(
      `Refusing to load ${from}: it defines no table inet anklume; regenerate it with make nftables`,
    );
  }
  const check = await $({ quiet: true, nothrow: true })`nft -c -f ${path}`.timeout("60s");
  if (check.exitCode !== 0) {
    throw new DeployError(`nft -c rejected ${from}:`, [], check.stderr.trim());
  }
}

/** The live `table inet anklume` as nft lists it, or "" when it is not loaded. */
async function liveTable(): Promise<string> {
  const r = await $({ quiet: true, nothrow: true })`nft list table inet anklume`;
  return r.exitCode === 0 ? r.stdout : "";
}

/**
 * Install a checked ruleset at `dest` (0644, only when it changed) and load
 * it with `nft -f` (an atomic replace of `table inet anklume`). `changed`:
 * the file or the live table changed.
 */
export async function loadRuleset(text: string, dest: string): Promise<{ changed: boolean }> {
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
    throw new DeployError(`nft -f ${dest} failed: ${load.stderr.trim()}`);
  }
  return { changed: copied || before !== (await liveTable()) };
}
