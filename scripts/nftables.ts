#!/usr/bin/env bun
// Usage: bun scripts/nftables.ts [options]
//
// Write the inter-bridge isolation ruleset (table inet anklume, chain
// isolation) from the generated variables. The role incus_nftables runs this
// (`make nftables`) with --base-dir; it also works alone on a generated tree.
//
// Input (one of):
//   --base-dir DIR      read the tree `make sync` wrote under DIR: every
//                       inventory host's variables (inventory/, group_vars/,
//                       host_vars/) and group_vars/all (default: .)
//   --spec FILE         read a JSON spec ({domains, machines, policies,
//                       ai_override}) from FILE, or from stdin with "-"
//
// Options:
//   --output PATH       where to write the ruleset
//                       (default: /opt/anklume/nftables-isolation.nft)
//   --ai-override JSON  incus_nftables_ai_override, e.g.
//                       '{"from":"pro","to":"ai-tools","ports":[11434]}'
//   --offline           do not ask Incus which declared bridges exist
//   --dry-run           print the ruleset on stdout, write nothing
//   --json              print {path, changed, bridges, policies, warnings,
//                       skipped} on stdout (with --dry-run: also the text)
//   -h, --help          show this help
//
// Subcommand (the firewall instance's forward rules, role firewall_router):
//   bun scripts/nftables.ts router --base-dir DIR --host NAME [--interfaces JSON]
//                       print, as a JSON list on stdout, the accept rules of
//                       the firewall NAME ({description, iif, oif, saddr?,
//                       daddr?, protocol?, ports?}): network_policies of the
//                       tree under DIR resolved as for the host ruleset and
//                       mapped onto the firewall's interfaces (--interfaces,
//                       a JSON list of {name, bridge}; default: the NICs of
//                       its multi-NIC profile, as reconcile.ts interfaces
//                       prints them). Policies it cannot enforce: warnings
//                       on stderr.
//
// The file is written (temp file + rename, mode 0644) only when its content
// changes. From a tree, a tree where no inventory host has a bridge is
// refused (an empty ruleset would lift the isolation once loaded).
// Exit: 0 success, 1 invalid variables or write failure, 2 usage error.
import { readFileSync } from "node:fs";
import process from "node:process";
import { interfacesFromTree } from "../lib/apply/from-vars.ts";
import { paint, parseCli, runMain, say, topComment, UsageError } from "../lib/core/cli.ts";
import { writeIfChanged } from "../lib/core/fswrite.ts";
import { incusAvailable } from "../lib/incus/client.ts";
import { listNetworks } from "../lib/incus/objects.ts";
import { reportSpecError } from "../lib/nftables/deploy.ts";
import { parseInterfaces, type RouterInterface, routerRules } from "../lib/nftables/router.ts";
import {
  buildRuleset,
  DEFAULT_OUTPUT,
  NftSpecError,
  type Ruleset,
  resolveSpec,
} from "../lib/nftables/ruleset.ts";
import { specFromJson, specFromVars } from "../lib/nftables/spec.ts";
import { readGeneratedVars, rulesetFromTree } from "../lib/nftables/tree.ts";

const USAGE = topComment(import.meta.url);

/** Declared bridges that Incus does not know yet (null when Incus does not answer). */
async function missingBridges(bridges: string[]): Promise<string[] | null> {
  if (!(await incusAvailable())) return null;
  const nets = await listNetworks();
  const live = new Set(nets.map((n) => n.name));
  return bridges.filter((b) => !live.has(b));
}

/** `--ai-override` as given: JSON; a JSON string holding JSON (Ansible's `to_json` of a string) is decoded once more. */
function parseOverride(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
    if (typeof value === "string" && /^\s*\{/.test(value)) value = JSON.parse(value);
  } catch (e) {
    throw new UsageError(`--ai-override is not JSON: ${(e as Error).message}`);
  }
  return value;
}

/** `router`: the firewall instance's accept rules as JSON on stdout. */
function routerMain(argv: string[]): number {
  const { values, positionals } = parseCli(argv, {
    help: { type: "boolean", short: "h" },
    "base-dir": { type: "string" },
    host: { type: "string" },
    interfaces: { type: "string" },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (values["base-dir"] === undefined || values.host === undefined) {
    throw new UsageError("router needs --base-dir DIR and --host NAME");
  }
  const baseDir = values["base-dir"];
  let interfaces: RouterInterface[];
  try {
    interfaces =
      values.interfaces !== undefined
        ? parseInterfaces(values.interfaces)
        : interfacesFromTree(baseDir, values.host);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    say(`${paint("red", "error:")} ${(e as Error).message}`);
    return 1;
  }
  let policies: ReturnType<typeof resolveSpec>["policies"];
  try {
    const r = specFromVars(readGeneratedVars(baseDir));
    const resolved = resolveSpec(r.spec);
    for (const w of [...r.warnings, ...resolved.warnings]) {
      say(`${paint("yellow", "warning:")} ${w}`);
    }
    policies = resolved.policies;
  } catch (e) {
    if (e instanceof NftSpecError) return reportSpecError(e);
    say(`${paint("red", "error:")} ${(e as Error).message}`);
    return 1;
  }
  const out = routerRules(policies, interfaces);
  for (const w of out.warnings) say(`${paint("yellow", "warning:")} ${w}`);
  process.stdout.write(`${JSON.stringify(out.rules)}\n`);
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === "router") return routerMain(argv.slice(1));
  const { values, positionals } = parseCli(argv, {
    help: { type: "boolean", short: "h" },
    "base-dir": { type: "string" },
    spec: { type: "string" },
    output: { type: "string" },
    "ai-override": { type: "string" },
    offline: { type: "boolean" },
    "dry-run": { type: "boolean" },
    json: { type: "boolean" },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (values.spec !== undefined && values["base-dir"] !== undefined) {
    throw new UsageError("use either --spec or --base-dir, not both");
  }
  const output = values.output ?? DEFAULT_OUTPUT;

  const aiOverride =
    values["ai-override"] !== undefined ? parseOverride(values["ai-override"]) : undefined;

  let ruleset: Ruleset;
  const warnings: string[] = [];
  try {
    if (values.spec !== undefined) {
      const source = values.spec === "-" ? "stdin" : `"${values.spec}"`;
      const text =
        values.spec === "-" ? readFileSync(0, "utf8") : readFileSync(values.spec, "utf8");
      const spec = specFromJson(text, source);
      if (aiOverride !== undefined) spec.aiOverride = aiOverride;
      ruleset = buildRuleset(spec);
      warnings.push(...ruleset.warnings);
    } else {
      // The tree, and the AI access record `make ai-switch` left beside it (lib/nftables/tree.ts).
      const r = rulesetFromTree(values["base-dir"] ?? ".", { aiOverride });
      ruleset = r.ruleset;
      warnings.push(...r.warnings);
    }
  } catch (e) {
    if (!(e instanceof NftSpecError)) throw e;
    return reportSpecError(e);
  }
  for (const w of warnings) say(`${paint("yellow", "warning:")} ${w}`);
  for (const s of ruleset.skipped) say(`note: ${s}`);
  if (!values.offline) {
    const missing = await missingBridges(ruleset.bridges).catch(() => null);
    for (const b of missing ?? []) {
      say(
        `${paint("yellow", "warning:")} bridge "${b}" is declared but does not exist in Incus yet; run make apply-infra`,
      );
    }
  }

  let changed: boolean;
  try {
    // v1's modes (operations-contract §3.7 step 6): the file 0644, its parent 0755.
    changed =
      writeIfChanged(output, ruleset.text, {
        dryRun: values["dry-run"],
        mode: 0o644,
        dirMode: 0o755,
      }) !== "unchanged";
  } catch (e) {
    say(
      `${paint("red", "error:")} ${(e as Error).message}; or choose another --output, or run as root`,
    );
    return 1;
  }
  if (values["dry-run"]) {
    if (!values.json) process.stdout.write(ruleset.text);
    say(`${changed ? "Would write" : "Unchanged"}: ${output} (dry run, nothing written)`);
  } else {
    say(
      `${changed ? "Written" : "Unchanged"}: ${output} (${ruleset.bridges.length} bridge(s), ${ruleset.policies.length} policy rule(s))`,
    );
  }
  if (values.json) {
    const out = {
      path: output,
      changed,
      bridges: ruleset.bridges,
      policies: ruleset.policies,
      warnings,
      skipped: ruleset.skipped,
      ...(values["dry-run"] ? { text: ruleset.text } : {}),
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  }
  return 0;
}

if (import.meta.main) await runMain(main, USAGE);
