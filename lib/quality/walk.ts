/**
 * Walk a project tree: every regular file under a root, as sorted paths
 * relative to it, without descending into the directories given (by name).
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";

/** Every file under `root` (relative paths, `/`-separated, sorted); skips `skip` directory names and symlinks. */
export function walkFiles(root: string, skip: ReadonlySet<string>): string[] {
  const out: string[] = [];
  const visit = (rel: string) => {
    for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
      const path = rel === "" ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) {
        if (!skip.has(e.name)) visit(path);
      } else if (e.isFile()) {
        out.push(path);
      }
    }
  };
  visit("");
  return out.sort();
}
