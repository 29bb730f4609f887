/** Read the parent's nesting context from /etc/anklume (or a test directory). */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { NestingContext } from "./reconcile.ts";

function readOr(dir: string, name: string): string | undefined {
  try {
    return readFileSync(join(dir, name), "utf8").trim();
  } catch {
    return undefined;
  }
}

/** Missing files read as level 0, relative 0, vm_nested false, yolo false (as v1). */
export function readContext(dir: string): NestingContext {
  const int = (s: string | undefined) => {
    const n = Number.parseInt(s ?? "", 10);
    return Number.isFinite(n) ? n : 0;
  };
  return {
    absolute_level: int(readOr(dir, "absolute_level")),
    relative_level: int(readOr(dir, "relative_level")),
    vm_nested: readOr(dir, "vm_nested")?.toLowerCase() === "true",
    yolo: readOr(dir, "yolo")?.toLowerCase() === "true",
  };
}
