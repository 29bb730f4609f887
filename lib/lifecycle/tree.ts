/**
 * The generated tree under flush: files anklume wrote (inventory/,
 * group_vars/, host_vars/) go; what the user wrote stays. A file holding a
 * managed block and nothing of the user's is deleted; a file with user
 * content outside the block keeps that content and loses the block (the
 * next `make sync` puts it back); a file without a block is the user's and
 * is left alone. Empty folders are removed.
 */
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { writeIfChanged } from "../core/fswrite.ts";
import { MANAGED_BEGIN, MANAGED_END, MANAGED_NOTICE, USER_SECTION } from "../sync/managed.ts";

export const TREE_DIRS = ["inventory", "group_vars", "host_vars"] as const;

/** What flush does to one file of the tree. */
export type FileAction =
  | { path: string; action: "delete" }
  | { path: string; action: "strip"; content: string }
  | { path: string; action: "keep"; reason: string };

/**
 * A file's content without its managed block, or null when nothing of the
 * user's remains (only `---`, the notice, the "custom variables" header and
 * blank lines). A file without a block is returned unchanged.
 * @example userPart("---\n# === MANAGED BY infra.yml ===\na: 1\n# === END MANAGED ===\n\n# Your custom variables below:\n") // null
 */
export function userPart(text: string): string | null {
  const start = text.indexOf(MANAGED_BEGIN);
  const end = text.indexOf(MANAGED_END);
  if (start === -1 || end === -1 || end < start) return text;
  const rest = text.slice(0, start) + text.slice(end + MANAGED_END.length);
  const meaningful = rest
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && l !== "---" && l !== USER_SECTION && l !== MANAGED_NOTICE);
  if (meaningful.length === 0) return null;
  // One blank line where the block was, none at the top after `---`.
  return rest.replace(/^(---\n)\n+/, "$1").replace(/\n{3,}/g, "\n\n");
}

/** The action for one file of the tree, from its content. */
export function fileAction(path: string, text: string): FileAction {
  const hasBegin = text.includes(MANAGED_BEGIN);
  const hasEnd = text.includes(MANAGED_END);
  if (!hasBegin && !hasEnd) return { path, action: "keep", reason: "no managed block: yours" };
  if (!hasBegin || !hasEnd || text.indexOf(MANAGED_END) < text.indexOf(MANAGED_BEGIN)) {
    return { path, action: "keep", reason: "broken managed block: left for you to fix" };
  }
  const user = userPart(text);
  return user === null ? { path, action: "delete" } : { path, action: "strip", content: user };
}

function walk(dir: string, out: string[]): void {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return;
  }
  for (const n of names) {
    const p = join(dir, n);
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) walk(p, out);
    else if (st.isFile() && /\.ya?ml$/.test(n)) out.push(p);
  }
}

/** The action for every YAML file of the tree under `baseDir`, sorted by path. */
export function planTree(baseDir: string): FileAction[] {
  const files: string[] = [];
  for (const d of TREE_DIRS) walk(join(baseDir, d), files);
  return files.map((f) => fileAction(f, readFileSync(f, "utf8")));
}

/** Remove the folders of the tree that are empty (deepest first); returns them. */
function removeEmptyDirs(dir: string, removed: string[]): boolean {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return false;
  let empty = true;
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p, { throwIfNoEntry: false })?.isDirectory()) {
      if (!removeEmptyDirs(p, removed)) empty = false;
    } else empty = false;
  }
  if (empty) {
    rmdirSync(dir);
    removed.push(dir);
  }
  return empty;
}

/** Apply a tree plan: delete, strip (atomic write) and remove empty folders. */
export function applyTree(baseDir: string, plan: readonly FileAction[]): { dirs: string[] } {
  for (const a of plan) {
    if (a.action === "delete") rmSync(a.path, { force: true });
    else if (a.action === "strip") writeIfChanged(a.path, a.content);
  }
  const dirs: string[] = [];
  for (const d of TREE_DIRS) removeEmptyDirs(join(baseDir, d), dirs);
  return { dirs: dirs.map((d) => relative(baseDir, d) || d) };
}
