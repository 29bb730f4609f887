#!/usr/bin/env bun
// Usage: bun scripts/nftables.ts [options]
//
// Write the inter-bridge isolation ruleset (table inet anklume, chain
// isolation) from the generated variables. The role incus_nftables runs this
// (`make nftables`); it also works alone on a generated tree.
//
// Input (one of):
//   --base-dir DIR      read group_vars/ and host_vars/ under DIR (default: .)
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
// The file is written (temp file + rename) only when its content changes.
// Exit: 0 success, 1 invalid variables or write failure, 2 usage error.
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import * as v from "valibot";
import { parse } from "yaml";
import { paint, parseCli, runMain, say, topComment, UsageError } from "../lib/core/cli.ts";
import { incusAvailable } from "../lib/incus/client.ts";
import { listNetworks } from "../lib/incus/objects.ts";
import {
  buildRuleset,
  DEFAULT_OUTPUT,
  type NftDomain,
  type NftMachine,
  type NftSpec,
  NftSpecError,
} from "../lib/nftables/ruleset.ts";

const USAGE = topComment(import.meta.url);

type Vars = Record<string, unknown>;

function isMap(x: unknown): x is Vars {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function loadYaml(path: string): Vars {
  let doc: unknown;
  try {
    doc = parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new Error(`Cannot read "${path}": ${(e as Error).message.split("\n")[0]}; run make sync`);
  }
  if (doc === null || doc === undefined) return {};
  if (!isMap(doc)) throw new Error(`Cannot read "${path}": not a mapping; run make sync`);
  return doc;
}

/** Variables of `<dir>/<name>.yml` (or `.yaml`) and of every file in `<dir>/<name>/`, merged. */
function varsByName(dir: string): Map<string, Vars> {
  const out = new Map<string, Vars>();
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
    a.name.localeCompare(b.name),
  )) {
    const path = join(dir, entry.name);
    if (entry.isFile() && /\.ya?ml$/.test(entry.name)) {
      const name = entry.name.replace(/\.ya?ml$/, "");
      out.set(name, { ...(out.get(name) ?? {}), ...loadYaml(path) });
    } else if (entry.isDirectory()) {
      let merged = out.get(entry.name) ?? {};
      for (const f of readdirSync(path).sort()) {
        if (/\.ya?ml$/.test(f)) merged = { ...merged, ...loadYaml(join(path, f)) };
      }
      out.set(entry.name, merged);
    }
  }
  return out;
}

/** Build the spec from a generated tree: domains from group_vars, machines from host_vars. */
export function specFromTree(baseDir: string): NftSpec {
  const groups = varsByName(join(baseDir, "group_vars"));
  const hosts = varsByName(join(baseDir, "host_vars"));
  if (groups.size === 0 && hosts.size === 0) {
    throw new Error(
      `Cannot find generated variables under "${baseDir}" (group_vars/, host_vars/); run make sync first`,
    );
  }
  const domains: NftDomain[] = [];
  for (const [file, vars] of groups) {
    const net = vars.incus_network;
    if (!isMap(net) || typeof net.name !== "string") continue;
    const name = typeof vars.domain_name === "string" ? vars.domain_name : file;
    domains.push({ name, bridge: net.name });
  }
  const machines: NftMachine[] = [];
  for (const [name, vars] of hosts) {
    if (typeof vars.instance_domain !== "string") continue;
    machines.push({
      name,
      domain: vars.instance_domain,
      ...(typeof vars.instance_name === "string" ? { instanceName: vars.instance_name } : {}),
      ...(typeof vars.instance_ip === "string" ? { ip: vars.instance_ip } : {}),
    });
  }
  return { domains, machines, policies: groups.get("all")?.network_policies };
}

const SpecSchema = v.object({
  domains: v.array(v.strictObject({ name: v.string(), bridge: v.string() })),
  machines: v.array(
    v.object({
      name: v.string(),
      domain: v.string(),
      instance_name: v.optional(v.nullable(v.string())),
      ip: v.optional(v.nullable(v.string())),
    }),
  ),
  policies: v.optional(v.unknown()),
  ai_override: v.optional(v.unknown()),
});

/** Parse a JSON spec as the role writes it. */
export function specFromJson(text: string, source: string): NftSpec {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new Error(`Cannot parse the spec from ${source}: ${(e as Error).message}`);
  }
  const r = v.safeParse(SpecSchema, data);
  if (!r.success) {
    const issue = r.issues[0];
    const where = issue.path?.map((p) => String(p.key)).join(".") ?? "(root)";
    throw new Error(`Cannot use the spec from ${source}: at ${where}: ${issue.message}`);
  }
  const s = r.output;
  return {
    domains: s.domains,
    machines: s.machines.map((m) => ({
      name: m.name,
      domain: m.domain,
      ...(m.instance_name ? { instanceName: m.instance_name } : {}),
      ...(m.ip ? { ip: m.ip } : {}),
    })),
    policies: s.policies,
    aiOverride: s.ai_override,
  };
}

/** Declared bridges that Incus does not know yet (empty when Incus does not answer). */
async function missingBridges(bridges: string[]): Promise<string[] | null> {
  if (!(await incusAvailable())) return null;
  const nets = await listNetworks();
  const live = new Set(nets.map((n) => n.name));
  return bridges.filter((b) => !live.has(b));
}

/** Write `text` to `path` atomically (temp file + rename), only when it differs. */
export function writeIfChanged(path: string, text: string, mode = 0o644): boolean {
  if (existsSync(path) && readFileSync(path, "utf8") === text) return false;
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, path);
  return true;
}

export async function main(argv: string[]): Promise<number> {
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

  let spec: NftSpec;
  if (values.spec !== undefined) {
    const source = values.spec === "-" ? "stdin" : `"${values.spec}"`;
    const text = values.spec === "-" ? readFileSync(0, "utf8") : readFileSync(values.spec, "utf8");
    spec = specFromJson(text, source);
  } else {
    spec = specFromTree(values["base-dir"] ?? ".");
  }
  if (values["ai-override"] !== undefined) {
    try {
      spec.aiOverride = JSON.parse(values["ai-override"]);
    } catch (e) {
      throw new UsageError(`--ai-override is not JSON: ${(e as Error).message}`);
    }
  }

  let ruleset: ReturnType<typeof buildRuleset>;
  try {
    ruleset = buildRuleset(spec);
  } catch (e) {
    if (!(e instanceof NftSpecError)) throw e;
    say(`${paint("red", "error:")} Cannot render the isolation ruleset:`);
    for (const p of e.problems) say(`  - ${p}`);
    return 1;
  }
  for (const w of ruleset.warnings) say(`${paint("yellow", "warning:")} ${w}`);
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
  if (values["dry-run"]) {
    changed = !existsSync(output) || readFileSync(output, "utf8") !== ruleset.text;
    if (!values.json) process.stdout.write(ruleset.text);
    say(`${changed ? "Would write" : "Unchanged"}: ${output} (dry run, nothing written)`);
  } else {
    try {
      changed = writeIfChanged(output, ruleset.text);
    } catch (e) {
      say(
        `${paint("red", "error:")} Cannot write "${output}": ${(e as Error).message}; choose another --output or run as root`,
      );
      return 1;
    }
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
      warnings: ruleset.warnings,
      skipped: ruleset.skipped,
      ...(values["dry-run"] ? { text: ruleset.text } : {}),
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  }
  return 0;
}

if (import.meta.main) await runMain(main, USAGE);
