/**
 * Exclusive AI access (`ai_access_policy: exclusive`): which client domain
 * may reach the `ai-tools` domain. `make sync` writes one network policy
 * towards ai-tools, from `ai_access_default`; `make ai-switch D=<domain>`
 * moves that access at runtime and records the new holder in a file beside
 * the generated tree (AI_HOLDER_FILE). Every later ruleset rendered from the
 * tree (`make nftables`, `make apply`) follows the record. Pure, except
 * readHolderRecord and writeHolderRecord.
 */
import { join } from "node:path";
import * as v from "valibot";
import { readIfExists, writeIfChanged } from "../core/fswrite.ts";
import type { NftSpec } from "./ruleset.ts";

/** The domain that holds the AI services (infra-format.md). */
export const AI_DOMAIN = "ai-tools";

/** The record of the current holder, relative to the generated tree's root. */
export const AI_HOLDER_FILE = ".anklume-ai-access.json";

const RecordSchema = v.object({
  holder: v.pipe(v.string(), v.minLength(1)),
  previous: v.optional(v.nullable(v.string())),
  switched_at: v.optional(v.string()),
});

/** What `make ai-switch` recorded. */
export type HolderRecord = v.InferOutput<typeof RecordSchema>;

/** The access policy: the network policy whose `to` is the ai-tools domain. */
export interface AccessPolicy {
  from: string;
  ports: unknown;
  protocol: unknown;
  bidirectional: boolean;
}

/** Parse a holder record; throws naming the file, what is wrong, and the fix. */
export function parseHolderRecord(text: string, file: string): HolderRecord {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new Error(
      `Cannot read the AI access record "${file}": not JSON (${(e as Error).message}); run make ai-switch D=<domain> again, or delete the file to return to ai_access_default`,
    );
  }
  const r = v.safeParse(RecordSchema, data);
  if (!r.success) {
    const issue = r.issues[0];
    const where = issue.path?.map((p) => String(p.key)).join(".") ?? "(root)";
    throw new Error(
      `Cannot read the AI access record "${file}": at ${where}: ${issue.message}; run make ai-switch D=<domain> again, or delete the file to return to ai_access_default`,
    );
  }
  return r.output;
}

/** The record beside the tree under `baseDir`, or null when there is none. */
export function readHolderRecord(baseDir: string): HolderRecord | null {
  const file = join(baseDir, AI_HOLDER_FILE);
  const text = readIfExists(file);
  return text === null ? null : parseHolderRecord(text, file);
}

/** Write the record (temp file + rename, 0644). */
export function writeHolderRecord(baseDir: string, record: HolderRecord): void {
  writeIfChanged(join(baseDir, AI_HOLDER_FILE), `${JSON.stringify(record, null, 2)}\n`, {
    mode: 0o644,
  });
}

/** The first network policy towards the ai-tools domain (the generator allows one), if any. */
export function accessPolicy(policies: unknown): AccessPolicy | undefined {
  if (!Array.isArray(policies)) return undefined;
  for (const p of policies) {
    if (typeof p !== "object" || p === null) continue;
    const pol = p as Record<string, unknown>;
    if (pol.to === AI_DOMAIN && typeof pol.from === "string" && pol.from !== "") {
      return {
        from: pol.from,
        ports: pol.ports,
        protocol: pol.protocol,
        bidirectional: pol.bidirectional === true,
      };
    }
  }
  return undefined;
}

/** The client domains of a spec: every domain with a bridge except ai-tools, sorted. */
export function clientDomains(spec: NftSpec): string[] {
  return [...new Set(spec.domains.map((d) => d.name))].filter((d) => d !== AI_DOMAIN).sort();
}

/** What the ruleset should do about the record. */
export interface HolderOverride {
  /** The override for the ruleset (`incus_nftables_ai_override`), when the record moves the access. */
  override?: Record<string, unknown>;
  /** Who holds the access once this ruleset is loaded (null: nobody, no access policy). */
  holder: string | null;
  warnings: string[];
}

/**
 * The ruleset's AI override for a holder: the access policy's ports,
 * protocol and direction, from the holder instead of its `from`. No override
 * when the holder already is the policy's `from` (the ruleset is then exactly
 * what infra.yml says). A record that no longer fits the tree (no ai-tools
 * domain, no policy towards it, a holder that is not a client domain) is
 * ignored with a warning: the access follows network_policies again.
 */
export function holderOverride(
  spec: NftSpec,
  record: HolderRecord | null,
  file = AI_HOLDER_FILE,
): HolderOverride {
  const policy = accessPolicy(spec.policies);
  const fallback = policy?.from ?? null;
  if (record === null) return { holder: fallback, warnings: [] };
  const ignored = (why: string): HolderOverride => ({
    holder: fallback,
    warnings: [
      `the AI access record "${file}" (holder "${record.holder}") is ignored: ${why}; the access follows network_policies (run make ai-switch D=<domain>, or delete the file)`,
    ],
  });
  if (!spec.domains.some((d) => d.name === AI_DOMAIN)) {
    return ignored(`the generated tree has no ${AI_DOMAIN} domain with machines`);
  }
  if (policy === undefined) {
    return ignored(
      `no network policy targets ${AI_DOMAIN} (is global.ai_access_policy still exclusive?)`,
    );
  }
  if (!clientDomains(spec).includes(record.holder)) {
    return ignored(`"${record.holder}" is not a domain with machines in the generated tree`);
  }
  if (record.holder === policy.from) return { holder: record.holder, warnings: [] };
  return {
    holder: record.holder,
    override: {
      from: record.holder,
      to: AI_DOMAIN,
      ports: policy.ports ?? "all",
      protocol: policy.protocol ?? "tcp",
      bidirectional: policy.bidirectional,
    },
    warnings: [],
  };
}

/**
 * Check a switch to `target`: refuses ai-tools itself, an unknown domain
 * (naming the known ones) and a tree without an access policy. Returns the
 * error message, or null when the switch may go ahead.
 */
export function switchProblem(spec: NftSpec, target: string): string | null {
  const known = clientDomains(spec);
  const list = known.length > 0 ? known.map((d) => `"${d}"`).join(", ") : "(none)";
  if (target === AI_DOMAIN) {
    return `Cannot give the AI access to "${AI_DOMAIN}" itself: it is the domain being reached; choose a client domain: ${list}`;
  }
  if (!spec.domains.some((d) => d.name === AI_DOMAIN)) {
    return `Cannot switch the AI access: the generated tree has no "${AI_DOMAIN}" domain with machines; add one to infra.yml and run make sync`;
  }
  if (!known.includes(target)) {
    return `Cannot give the AI access to "${target}": not a domain with machines in the generated tree; known domains: ${list} (run make sync after adding one)`;
  }
  if (accessPolicy(spec.policies) === undefined) {
    return `Cannot switch the AI access: no network policy targets "${AI_DOMAIN}"; set global.ai_access_policy: exclusive and ai_access_default in infra.yml, then run make sync`;
  }
  return null;
}
