/**
 * Orphan files: generated files that `infra.yml` no longer describes
 * (generator-contract §11, decision 5).
 *
 * - `inventory/*.yml` whose stem is not a domain, `group_vars/*.yml` whose
 *   stem is neither a domain nor `all`, `host_vars/*.yml` whose stem is not a
 *   machine. Only `*.yml` files (or links to files) directly in those folders
 *   count; a missing folder is fine. The list is sorted by path.
 * - Protection comes from the orphan file's own content, never from
 *   `infra.yml`: it is parsed as YAML 1.1 (every document of it); a mapping
 *   with `domain_ephemeral` makes the file protected unless that value is
 *   exactly `true` (not `"true"`, not `1`); failing that, `instance_ephemeral`
 *   decides the same way. Choices that differ from v1, made to never delete
 *   what might matter: a file that cannot be read or parsed is protected (v1
 *   deleted it), and only the boolean `true` unprotects (v1 used Python
 *   truthiness, so `"false"` unprotected). Files without either key, and every
 *   inventory file (it only lists hosts and is rebuilt by `make sync`), are
 *   not protected. A protected orphan carries the reason, for the report.
 * Deleting and asking are the caller's business (`scripts/generate.ts`).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

/** A generated file that infra.yml no longer describes (not an Incus object: see lib/apply). */
export interface FileOrphan {
  path: string;
  kind: "inventory" | "group_vars" | "host_vars";
  protected: boolean;
  /** Why the file is protected, e.g. `domain_ephemeral is false`. */
  reason?: string;
}

type YamlModule = typeof import("yaml");
let yamlModule: YamlModule | undefined;
/** The `yaml` package, loaded on first use: most syncs have no orphan to read. */
function yaml(): YamlModule {
  yamlModule ??= createRequire(import.meta.url)("yaml") as YamlModule;
  return yamlModule;
}

const KEYS = ["domain_ephemeral", "instance_ephemeral"] as const;

/** Why a file with this content must not be deleted, or null when it may be. */
export function protectionReason(text: string): string | null {
  let values: unknown[];
  try {
    const docs = yaml().parseAllDocuments(text, { version: "1.1", logLevel: "error" });
    const list = Array.isArray(docs) ? docs : [];
    for (const doc of list) {
      const first = doc.errors[0];
      if (first) return `it cannot be parsed as YAML (${first.message.split("\n")[0]})`;
    }
    values = list.map((doc) => doc.toJS());
  } catch (e) {
    return `it cannot be parsed as YAML (${(e as Error).message.split("\n")[0]})`;
  }
  const maps = values.filter(
    (v): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v),
  );
  for (const key of KEYS) {
    const holders = maps.filter((m) => Object.hasOwn(m, key));
    if (holders.length === 0) continue;
    const notTrue = holders.find((m) => m[key] !== true);
    return notTrue ? `${key} is ${JSON.stringify(notTrue[key] ?? null)}, not true` : null;
  }
  return null;
}

/** True when a file with this content must not be deleted (see the module comment). */
export function isProtectedContent(text: string): boolean {
  return protectionReason(text) !== null;
}

const FOLDERS = ["inventory", "group_vars", "host_vars"] as const;

function ymlFiles(dir: string): string[] {
  let entries: import("node:fs").Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return [];
    throw new Error(
      `Cannot list "${dir}" to look for orphan files: ${code ?? (e as Error).message}; make it a readable directory`,
    );
  }
  const names: string[] = [];
  for (const e of entries) {
    if (!e.name.endsWith(".yml")) continue;
    if (e.isFile()) names.push(e.name);
    else if (e.isSymbolicLink()) {
      try {
        if (statSync(join(dir, e.name)).isFile()) names.push(e.name);
      } catch {
        // a dangling link is nobody's generated file
      }
    }
  }
  return names;
}

/**
 * Generated files under `baseDir` that no current domain or machine accounts for, sorted by path.
 * @example findOrphans(".", new Set(["lab"]), new Set(["lab-vm"])) // [{ path: "host_vars/old.yml", kind: "host_vars", protected: false }]
 */
export function findOrphans(
  baseDir: string,
  domains: ReadonlySet<string>,
  machines: ReadonlySet<string>,
): FileOrphan[] {
  const orphans: FileOrphan[] = [];
  for (const kind of FOLDERS) {
    for (const name of ymlFiles(join(baseDir, kind))) {
      const stem = name.slice(0, -".yml".length);
      const current =
        kind === "host_vars"
          ? machines.has(stem)
          : domains.has(stem) || (kind === "group_vars" && stem === "all");
      if (current) continue;
      const path = join(baseDir, kind, name);
      if (kind === "inventory") {
        orphans.push({ path, kind, protected: false });
        continue;
      }
      let reason: string | null;
      try {
        reason = protectionReason(readFileSync(path, "utf8"));
      } catch (e) {
        reason = `it cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
      }
      orphans.push(
        reason === null
          ? { path, kind, protected: false }
          : { path, kind, protected: true, reason },
      );
    }
  }
  return orphans.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
