/**
 * Keys of infra.yml that other v1 tools read and anklume does not act on.
 * v1's generator accepted any key; v1's file portal and app export read a few of
 * their own from the same file. anklume's schema is strict (a typo is an error
 * naming the closest key), so these few are declared in lib/sync/schema.ts (as
 * "anything", or with their documented type), and each occurrence gets one info line saying where it is and
 * that anklume does nothing with it. Nothing is written for them.
 */
import { type Issue, info, isMapping } from "../core/issues.ts";

/** Where a key lives and what reads it. */
export interface ForeignKey {
  /** `global` (global.<key>), `domain` (domains.<d>.<key>) or `machine` (domains.<d>.machines.<m>.<key>). */
  level: "global" | "domain" | "machine";
  key: string;
  /** Which v1 tool reads it, for the message. */
  readBy: string;
}

/** The keys of other v1 tools (docs/lifecycle.md, "v1 infra files keep working"). */
export const FOREIGN_KEYS: readonly ForeignKey[] = [
  // global.ai_vram_flush is no longer one of them: `make ai-switch` reads it (docs/ai.md).
  {
    level: "domain",
    key: "file_portal",
    readBy: "v1's file portal (per-domain paths for cross-domain file transfer)",
  },
  {
    level: "machine",
    key: "export_apps",
    readBy: "v1's app export (host desktop entries for container applications)",
  },
];

const note = (k: ForeignKey) =>
  `${JSON.stringify(k.key)} is read by ${k.readBy}, not by anklume: accepted, and anklume does nothing with it`;

/** One info issue per foreign key present in the raw (merged) infra, in file order. */
export function foreignKeyNotes(data: unknown): Issue[] {
  const out: Issue[] = [];
  if (!isMapping(data)) return out;
  if (isMapping(data.global)) {
    for (const k of FOREIGN_KEYS) {
      if (k.level === "global" && Object.hasOwn(data.global, k.key)) {
        out.push(info(["global", k.key], note(k)));
      }
    }
  }
  if (!isMapping(data.domains)) return out;
  const domainKeys = FOREIGN_KEYS.filter((k) => k.level === "domain");
  const machineKeys = FOREIGN_KEYS.filter((k) => k.level === "machine");
  for (const [d, dom] of Object.entries(data.domains)) {
    if (!isMapping(dom)) continue;
    for (const k of domainKeys) {
      if (Object.hasOwn(dom, k.key)) out.push(info(["domains", d, k.key], note(k)));
    }
    if (!isMapping(dom.machines)) continue;
    for (const [m, machine] of Object.entries(dom.machines)) {
      if (!isMapping(machine)) continue;
      for (const k of machineKeys) {
        if (Object.hasOwn(machine, k.key)) {
          out.push(info(["domains", d, "machines", m, k.key], note(k)));
        }
      }
    }
  }
  return out;
}
