#!/usr/bin/env bun
// Usage: bun scripts/ai-switch.ts --domain DOMAIN [options]
//
// Move the exclusive AI access (global.ai_access_policy: exclusive) to
// another client domain at runtime (`make ai-switch D=<domain>`): the
// isolation ruleset is rendered from the generated tree with DOMAIN as the
// one domain that reaches ai-tools (the access policy's ports and direction
// kept), checked (nft -c) and loaded as make nftables-deploy loads it. When
// global.ai_vram_flush is true, the services that hold models in GPU memory
// are restarted in the running ai-tools machines first (a failed flush
// stops the switch). The holder is then recorded in .anklume-ai-access.json
// beside the tree, and later `make nftables` / `make apply` keep it.
//
// Options:
//   --domain DOMAIN    the client domain that gets the access (or as the
//                      only argument)
//   --base-dir DIR     the generated tree (default: .)
//   --infra PATH       infra.yml or an infra/ directory (default: infra/
//                      when infra/base.yml exists, else infra.yml)
//   --output PATH      where the ruleset is written
//                      (default: /opt/anklume/nftables-isolation.nft)
//   --dest PATH        where it is installed and loaded from
//                      (default: /etc/nftables.d/anklume-isolation.nft)
//   --no-flush         do not flush GPU memory, even with ai_vram_flush
//   --dry-run          print the new ruleset; flush, write, load nothing
//   --json             print {previous, holder, changed, flushed, warnings}
//   -h, --help         show this help
//
// Exit: 0 switched (or already the holder), 1 refused or failed (an
// unknown domain, ai-tools itself, a policy that is not exclusive, an
// invalid ruleset, a failed flush or load), 2 usage error.
import { existsSync } from "node:fs";
import process from "node:process";
import { paint, parseCli, runMain, say, topComment, UsageError } from "../lib/core/cli.ts";
import { aiSwitch, SwitchError } from "../lib/nftables/ai-switch.ts";
import { DeployError, reportDeployError, reportSpecError } from "../lib/nftables/deploy.ts";
import { DEFAULT_DEST, DEFAULT_OUTPUT, NftSpecError } from "../lib/nftables/ruleset.ts";

const USAGE = topComment(import.meta.url);

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(argv, {
    help: { type: "boolean", short: "h" },
    domain: { type: "string" },
    "base-dir": { type: "string" },
    infra: { type: "string" },
    output: { type: "string" },
    dest: { type: "string" },
    "no-flush": { type: "boolean" },
    "dry-run": { type: "boolean" },
    json: { type: "boolean" },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length > (values.domain === undefined ? 1 : 0)) {
    throw new UsageError(`unexpected argument "${positionals.at(-1)}"`);
  }
  const domain = values.domain ?? positionals[0];
  if (domain === undefined || domain === "") {
    throw new UsageError("no domain given; use make ai-switch D=<domain> (--domain DOMAIN)");
  }
  for (const k of ["base-dir", "infra", "output", "dest"] as const) {
    if (values[k] === "") throw new UsageError(`--${k} needs a non-empty value`);
  }
  try {
    const r = await aiSwitch({
      baseDir: values["base-dir"] ?? ".",
      infra: values.infra ?? (existsSync("infra/base.yml") ? "infra" : "infra.yml"),
      domain,
      output: values.output ?? DEFAULT_OUTPUT,
      dest: values.dest ?? DEFAULT_DEST,
      noFlush: values["no-flush"],
      dryRun: values["dry-run"],
      log: say,
    });
    for (const w of r.warnings) say(`${paint("yellow", "warning:")} ${w}`);
    for (const f of r.flushed)
      say(`  ${f.instance} (project ${f.project}): ${f.outcome}: ${f.output}`);
    const from = r.previous === null ? "" : ` from "${r.previous}"`;
    if (values["dry-run"]) {
      if (!values.json) process.stdout.write(r.text);
      say(
        `Dry run: the AI access would move${from} to "${domain}"; nothing flushed, written or loaded.`,
      );
    } else if (r.previous === domain) {
      say(
        paint(
          "green",
          `"${domain}" already holds the AI access; the ruleset is loaded (${r.changed ? "changed" : "unchanged"}).`,
        ),
      );
    } else {
      say(
        paint(
          "green",
          `AI access moved${from} to "${domain}"; recorded in the tree's .anklume-ai-access.json.`,
        ),
      );
    }
    if (values.json) {
      const { text: _text, ...out } = r;
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    }
    return 0;
  } catch (e) {
    if (e instanceof DeployError) {
      reportDeployError(e);
      return 1;
    }
    if (e instanceof NftSpecError) return reportSpecError(e);
    if (e instanceof SwitchError) {
      say(`${paint("red", "error:")} ${e.message}`);
      return 1;
    }
    throw e;
  }
}

if (import.meta.main) await runMain(main, USAGE);
