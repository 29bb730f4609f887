/**
 * Load infra.yml or an infra/ directory into one merged document, remembering
 * which file each part came from, so every message names its source file and
 * line (also in directory mode, where v1 named none).
 */
import { Buffer } from "node:buffer";
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readSync,
  statSync,
} from "node:fs";
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

/**
 * The largest input file read (16 MiB; infra.yml for 1,000 machines is ~0.5 MB):
 * a bigger file, or a device that never ends, is refused before it fills memory.
 */
export const MAX_INPUT_BYTES = 16 * 1024 * 1024;

/** What a path is: a regular file, a directory, something else, or nothing (null). */
type Kind = "file" | "dir" | "other" | "dangling" | "loop" | null;

function kind(path: string): Kind {
  try {
    const s = statSync(path);
    return s.isDirectory() ? "dir" : s.isFile() ? "file" : "other";
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ELOOP") return "loop";
    if (code === "ENOENT" || code === "ENOTDIR") {
      try {
        if (lstatSync(path).isSymbolicLink()) return "dangling";
      } catch {
        // absent
      }
      return null;
    }
    return "other";
  }
}

/** Resolve the input argument as v1 does: a file, a directory, or the `.yml`/dir counterpart. */
export function resolveInput(arg: string): { path: string; mode: "file" | "dir" } | null {
  const k = kind(arg);
  if (k === "file" || k === "dir") return { path: arg, mode: k };
  if (k !== null) return null;
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

function loadError(
  file: string,
  message: string,
  fix: string,
  line?: number,
  col?: number,
): LoadError {
  const issue: Issue = { ...err([], message, fix), file };
  if (line !== undefined) {
    issue.line = line;
    issue.col = col;
  }
  return new LoadError([issue]);
}

/** Why a path that is not a regular file cannot be read as one (null: it is a regular file). */
function notAFile(path: string, k: Kind): LoadError | null {
  switch (k) {
    case "file":
      return null;
    case null:
      return loadError(
        path,
        `cannot read ${path}: it does not exist`,
        "create it, or pass the right path",
      );
    case "dangling":
      return loadError(
        path,
        `cannot read ${path}: it is a symbolic link to a missing file`,
        "mount or restore the file it points to, or remove the link (the domains it held would be dropped)",
      );
    case "loop":
      return loadError(
        path,
        `cannot read ${path}: it is a symbolic link loop`,
        "point the link at a real file, or remove it",
      );
    case "dir":
      return loadError(
        path,
        `cannot read ${path}: it is a directory, not a YAML file`,
        "move the directory away, or rename it so that its name does not end in .yml",
      );
    default:
      return loadError(
        path,
        `cannot read ${path}: it is not a regular file (a FIFO, a socket or a device)`,
        "pass a regular YAML file",
      );
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
// What PyYAML refuses in a stream (its Reader's NON_PRINTABLE): C0 controls but tab,
// LF and CR; DEL and C1 controls but NEL; U+FFFE and U+FFFF. (Valid UTF-8 holds no
// lone surrogate.) No /u flag: this runs on every input, and is ~10× faster without.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is its purpose
const NON_PRINTABLE = /[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x84\x86-\x9F\uFFFE\uFFFF]/;

/** 1-based line and column of a character offset. */
function position(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf("\n"); i !== -1 && i < offset; i = text.indexOf("\n", i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, col: offset - start + 1 };
}

/**
 * Read one input file: a regular file (followed through links) of at most
 * MAX_INPUT_BYTES, valid UTF-8, with only the characters PyYAML accepts.
 * Anything else is a LoadError that says what the path is and what to do:
 * an input that cannot be read is an error, never an absence.
 */
export function readInputText(path: string): string {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer.
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EACCES" || code === "EPERM") {
      throw loadError(
        path,
        `cannot read ${path}: permission denied`,
        "check the path and its permissions",
      );
    }
    const k = kind(path);
    throw (
      notAFile(path, k === "file" ? "other" : k) ??
      loadError(path, `cannot read ${path}: ${code ?? (e as Error).message}`, "check the path")
    );
  }
  let bytes: Buffer;
  try {
    const st = fstatSync(fd);
    const why = notAFile(path, st.isFile() ? "file" : st.isDirectory() ? "dir" : "other");
    if (why) throw why;
    if (st.size > MAX_INPUT_BYTES) throw tooBig(path);
    // Read to the end, never past the cap plus one byte (a /proc file says size 0; a file may grow).
    let buf = Buffer.allocUnsafe(st.size + 1);
    let len = 0;
    for (;;) {
      if (len === buf.length) {
        if (len > MAX_INPUT_BYTES) throw tooBig(path);
        const bigger = Buffer.allocUnsafe(Math.min(len * 2 + 4096, MAX_INPUT_BYTES + 1));
        buf.copy(bigger, 0, 0, len);
        buf = bigger;
      }
      const n = readSync(fd, buf, len, buf.length - len, null);
      if (n === 0) break;
      len += n;
    }
    if (len > MAX_INPUT_BYTES) throw tooBig(path);
    bytes = buf.subarray(0, len);
  } catch (e) {
    closeSync(fd);
    if (e instanceof LoadError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw loadError(
      path,
      `cannot read ${path}: ${code ?? (e as Error).message}`,
      "check the path and its permissions",
    );
  }
  closeSync(fd);
  return decode(path, bytes);
}

function tooBig(path: string): LoadError {
  return loadError(
    path,
    `cannot read ${path}: it is larger than ${MAX_INPUT_BYTES / 1024 / 1024} MiB, the most anklume reads from one input file`,
    "split it into an infra/ directory (base.yml, domains/*.yml, policies.yml), or check that it is the right file",
  );
}

function decode(path: string, bytes: Buffer): string {
  // Buffer's decoder is the fast one; it turns a bad byte into U+FFFD, so only a
  // text holding U+FFFD is decoded again strictly (it may also be written as is).
  let text = bytes.toString("utf8");
  try {
    if (text.includes("\uFFFD")) text = utf8.decode(bytes);
  } catch {
    // Find the first bad byte for the message (the valid prefix decodes).
    let lo = 0;
    let hi = bytes.length;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      try {
        new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes.subarray(0, mid));
        lo = mid;
      } catch {
        hi = mid;
      }
    }
    const prefix = new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes.subarray(0, lo));
    const at = position(prefix.replace(/\uFFFD+$/, ""), prefix.replace(/\uFFFD+$/, "").length);
    throw loadError(
      path,
      "cannot read YAML: the file is not valid UTF-8 (an invalid byte sequence, e.g. Latin-1 text)",
      "save the file as UTF-8",
      at.line,
      at.col,
    );
  }
  const bad = NON_PRINTABLE.exec(text);
  if (bad) {
    const cp = bad[0].codePointAt(0) ?? 0;
    const at = position(text, bad.index);
    throw loadError(
      path,
      `cannot read YAML: the character U+${cp.toString(16).toUpperCase().padStart(4, "0")} (a control character) is not allowed in a YAML file`,
      'remove it; inside a double-quoted string write it as an escape (e.g. "\\0")',
      at.line,
      at.col,
    );
  }
  return text;
}

async function parseSource(file: string, text: string): Promise<unknown> {
  const r = await parseYaml(text, file);
  if (!r.ok) throw new LoadError(r.issues);
  return r.value;
}

/**
 * The files the input consists of, in load order. Throws LoadError when the
 * input is missing, or when any part of it exists but cannot be read as a
 * regular file (a dangling link, a loop, a directory, a FIFO, a device).
 */
export function inputPaths(arg: string): { mode: "file" | "dir"; dir: string; paths: string[] } {
  const resolved = resolveInput(arg);
  if (!resolved) {
    const k = kind(arg);
    if (k !== null) throw notAFile(arg, k) as LoadError;
    throw loadError(
      arg,
      `cannot find ${arg} (neither a file nor an infra/ directory)`,
      "create it from infra.example.yml, or pass the right path",
    );
  }
  if (resolved.mode === "file") return { mode: "file", dir: "", paths: [resolved.path] };
  const dir = resolved.path;
  const paths: string[] = [];
  const baseFile = join(dir, "base.yml");
  const bk = kind(baseFile);
  if (bk === null) {
    throw loadError(
      baseFile,
      `${baseFile} not found in the infra directory`,
      `create ${baseFile} with project_name and global`,
    );
  }
  if (bk !== "file") throw notAFile(baseFile, bk) as LoadError;
  paths.push(baseFile);
  const domainsDir = join(dir, "domains");
  const dk = kind(domainsDir);
  if (dk === "dir") {
    let names: string[];
    try {
      names = readdirSync(domainsDir);
    } catch (e) {
      throw loadError(
        domainsDir,
        `cannot list ${domainsDir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        "make it a readable directory",
      );
    }
    for (const n of names.filter((n) => n.endsWith(".yml")).sort()) {
      const p = join(domainsDir, n);
      const why = notAFile(p, kind(p));
      if (why) throw why;
      paths.push(p);
    }
  } else if (dk !== null) {
    const why = notAFile(domainsDir, dk);
    throw loadError(
      domainsDir,
      dk === "file"
        ? `cannot read ${domainsDir}: it is a file, not a directory of domain files`
        : (why?.issues[0]?.message ?? `cannot read ${domainsDir}`),
      "make domains/ a directory holding one <name>.yml per group of domains",
    );
  }
  const policiesFile = join(dir, "policies.yml");
  const pk = kind(policiesFile);
  if (pk !== null) {
    const why = notAFile(policiesFile, pk);
    if (why) throw why;
    paths.push(policiesFile);
  }
  return { mode: "dir", dir, paths };
}

/**
 * Read every file the input consists of, in load order (path → text).
 * Throws LoadError for an input or a part of it that cannot be read.
 */
export function readInputFiles(arg: string): [string, string][] {
  return inputPaths(arg).paths.map((p) => [p, readInputText(p)]);
}

/**
 * Load the input: a single file or an infra/ directory. Throws LoadError for
 * unreadable input. `preRead` serves texts already read (readInputFiles).
 */
export async function loadInfra(
  arg: string,
  preRead?: ReadonlyMap<string, string>,
): Promise<LoadedInfra> {
  const input = inputPaths(arg);
  const readSource = (file: string) => preRead?.get(file) ?? readInputText(file);
  const resolved = {
    mode: input.mode,
    path: input.mode === "file" ? (input.paths[0] as string) : input.dir,
  };
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
    const policiesFile = join(dir, "policies.yml");
    const domainFiles = input.paths.slice(1).filter((p) => p !== policiesFile);
    const origin = new Map<string, string>();
    if (isObj(merged.domains)) for (const d of Object.keys(merged.domains)) origin.set(d, baseFile);
    for (const file of domainFiles) {
      const name = basename(file);
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
        // Defined, not assigned: a domain named __proto__ stays a key (and is refused by name).
        Object.defineProperty(domains, d, {
          value: cfg,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      merged.domains = domains;
      sources.push({ file, text, mount: ["domains"] });
    }
    if (input.paths.includes(policiesFile)) {
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
