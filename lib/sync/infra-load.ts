/**
 * Load infra.yml or an infra/ directory into one merged document, remembering
 * which file each part came from, so every message names its source file and
 * line (also in directory mode, where v1 named none).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { err, type Issue, type YamlPath } from "../core/issues.ts";
import { createLocator, type Locator, parseYaml } from "./yaml-load.ts";

/** One source file and where its root sits in the merged document. */
interface Source {
  file: string;
  text: string;
  /** Path in the merged document that this file's root maps to. */
  mount: YamlPath;
  locator?: Locator;
}

/** The merged document and how to find the source of any path in it. */
export interface LoadedInfra {
  data: unknown;
  mode: "file" | "directory";
  /** The files read, in order (for messages and the JSON summary). */
  files: string[];
  /** Warnings produced while loading (overrides in directory mode). */
  warnings: Issue[];
  /** Fill file, line and column into issues. */
  locate(issues: Issue[]): Promise<Issue[]>;
}

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === "object" && x !== null && !Array.isArray(x);

function kind(path: string): "file" | "dir" | null {
  try {
    const s = statSync(path);
    return s.isDirectory() ? "dir" : "file";
  } catch {
    return null;
  }
}

/** Resolve the input argument as v1 does: a file, a directory, or the `.yml`/dir counterpart. */
export function resolveInput(arg: string): { path: string; mode: "file" | "dir" } | null {
  const k = kind(arg);
  if (k) return { path: arg, mode: k };
  const trimmed = arg.replace(/\/+$/, "");
  if (!trimmed.endsWith(".yml")) {
    if (kind(`${trimmed}.yml`) === "file") return { path: `${trimmed}.yml`, mode: "file" };
  } else if (kind(trimmed.slice(0, -4)) === "dir") {
    return { path: trimmed.slice(0, -4), mode: "dir" };
  }
  return null;
}

/** Thrown for inputs that cannot be read at all. */
export class LoadError extends Error {
  constructor(readonly issues: Issue[]) {
    super(issues.map((i) => i.message).join("; "));
  }
}

function readSourceFile(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new LoadError([
      {
        ...err(
          [],
          `cannot read ${file}: ${code === "EACCES" ? "permission denied" : (e as Error).message}`,
          "check the path and its permissions",
        ),
        file,
      },
    ]);
  }
}

async function parseSource(file: string, text: string): Promise<unknown> {
  const r = await parseYaml(text, file);
  if (!r.ok) throw new LoadError(r.issues);
  return r.value;
}

/**
 * Read every file the input consists of, in load order (path → text); files
 * that are missing or unreadable are left out (loadInfra reports them).
 */
export function readInputFiles(arg: string): [string, string][] {
  const resolved = resolveInput(arg);
  if (!resolved) return [];
  const paths: string[] = [];
  if (resolved.mode === "file") paths.push(resolved.path);
  else {
    paths.push(join(resolved.path, "base.yml"));
    const domainsDir = join(resolved.path, "domains");
    if (kind(domainsDir) === "dir") {
      for (const n of readdirSync(domainsDir).sort()) {
        if (n.endsWith(".yml") && kind(join(domainsDir, n)) === "file")
          paths.push(join(domainsDir, n));
      }
    }
    paths.push(join(resolved.path, "policies.yml"));
  }
  const out: [string, string][] = [];
  for (const p of paths) {
    try {
      out.push([p, readFileSync(p, "utf8")]);
    } catch {
      // Reported by loadInfra.
    }
  }
  return out;
}

/**
 * Load the input: a single file or an infra/ directory. Throws LoadError for
 * unreadable input. `preRead` serves texts already read (readInputFiles).
 */
export async function loadInfra(
  arg: string,
  preRead?: ReadonlyMap<string, string>,
): Promise<LoadedInfra> {
  const readSource = (file: string) => preRead?.get(file) ?? readSourceFile(file);
  const resolved = resolveInput(arg);
  if (!resolved) {
    throw new LoadError([
      {
        ...err(
          [],
          `cannot find ${arg} (neither a file nor an infra/ directory)`,
          "create it from infra.example.yml, or pass the right path",
        ),
        file: arg,
      },
    ]);
  }
  const sources: Source[] = [];
  const warnings: Issue[] = [];
  let data: unknown;
  if (resolved.mode === "file") {
    const text = readSource(resolved.path);
    data = await parseSource(resolved.path, text);
    sources.push({ file: resolved.path, text, mount: [] });
  } else {
    const dir = resolved.path;
    const baseFile = join(dir, "base.yml");
    if (kind(baseFile) !== "file") {
      throw new LoadError([
        {
          ...err(
            [],
            `${baseFile} not found in the infra directory`,
            `create ${baseFile} with project_name and global`,
          ),
          file: baseFile,
        },
      ]);
    }
    const baseText = readSource(baseFile);
    const base = (await parseSource(baseFile, baseText)) ?? {};
    if (!isObj(base)) {
      throw new LoadError([
        {
          ...err(
            [],
            "base.yml must be a mapping (project_name, global, …)",
            "start from infra.example.yml",
          ),
          file: baseFile,
        },
      ]);
    }
    sources.push({ file: baseFile, text: baseText, mount: [] });
    const merged: Obj = { ...base };
    const domainsDir = join(dir, "domains");
    if (kind(domainsDir) === "dir") {
      const names = readdirSync(domainsDir)
        .filter((n) => n.endsWith(".yml") && kind(join(domainsDir, n)) === "file")
        .sort();
      const origin = new Map<string, string>();
      if (isObj(merged.domains))
        for (const d of Object.keys(merged.domains)) origin.set(d, baseFile);
      for (const name of names) {
        const file = join(domainsDir, name);
        const text = readSource(file);
        const content = (await parseSource(file, text)) ?? {};
        if (!isObj(content)) {
          throw new LoadError([
            {
              ...err(
                [],
                `${name} must map domain names to their settings`,
                "write e.g. pro: {subnet_id: 1, machines: {...}}",
              ),
              file,
            },
          ]);
        }
        const domains: Obj = isObj(merged.domains) ? { ...merged.domains } : {};
        for (const [d, cfg] of Object.entries(content)) {
          const before = origin.get(d);
          if (before !== undefined) {
            warnings.push({
              ...err(
                ["domains", d],
                `domain ${JSON.stringify(d)} in ${basename(file)} overrides the definition in ${before}`,
                "keep each domain in one file",
              ),
              severity: "warning",
              file,
            });
          }
          origin.set(d, file);
          domains[d] = cfg;
        }
        merged.domains = domains;
        sources.push({ file, text, mount: ["domains"] });
      }
    }
    const policiesFile = join(dir, "policies.yml");
    if (kind(policiesFile) === "file") {
      const text = readSource(policiesFile);
      const content = (await parseSource(policiesFile, text)) ?? {};
      if (!isObj(content)) {
        throw new LoadError([
          {
            ...err(
              [],
              "policies.yml must be a mapping with network_policies",
              "write network_policies: [...]",
            ),
            file: policiesFile,
          },
        ]);
      }
      const extra = Object.keys(content).filter((k) => k !== "network_policies");
      if (extra.length > 0) {
        throw new LoadError([
          {
            ...err(
              [extra[0] as string],
              `unknown key ${JSON.stringify(extra[0])} in policies.yml`,
              "policies.yml holds only network_policies; move other keys to base.yml",
              true,
            ),
            file: policiesFile,
          },
        ]);
      }
      if ("network_policies" in content) merged.network_policies = content.network_policies;
      sources.push({ file: policiesFile, text, mount: [] });
    }
    data = merged;
  }

  /** The source that holds `path`: the last-read file whose mount covers it and that has it. */
  const sourceFor = (path: YamlPath): { src: Source; inner: YamlPath } => {
    if (resolved.mode === "dir") {
      if (path[0] === "domains" && path.length >= 2) {
        for (const src of [...sources].reverse()) {
          if (
            src.mount[0] === "domains" &&
            src.text.length > 0 &&
            hasTopKey(src.text, String(path[1]))
          ) {
            return { src, inner: path.slice(1) };
          }
        }
      }
      if (path[0] === "network_policies") {
        const pol = sources.find(
          (s) => s.file.endsWith("policies.yml") && s.mount.length === 0 && s !== sources[0],
        );
        if (pol && hasTopKey(pol.text, "network_policies")) return { src: pol, inner: path };
      }
    }
    return { src: sources[0] as Source, inner: path };
  };

  return {
    data,
    mode: resolved.mode === "file" ? "file" : "directory",
    files: sources.map((s) => s.file),
    warnings,
    async locate(issues: Issue[]) {
      for (const issue of issues) {
        if (issue.file && issue.line) continue;
        const { src, inner } = sourceFor(issue.locateAt ?? issue.path);
        src.locator ??= await createLocator(src.text);
        const pos = src.locator.locate(inner, issue.atKey || issue.locateAt !== undefined);
        issue.file = src.file;
        if (pos) {
          issue.line = pos.line;
          issue.col = pos.col;
        }
      }
      return issues;
    },
  };
}

/** Cheap test: does this YAML text have `key:` at column 0? */
function hasTopKey(text: string, key: string): boolean {
  const re = new RegExp(`^["']?${key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}["']?\\s*:`, "m");
  return re.test(text);
}
