/**
 * The nesting context a parent wrote into this machine:
 * `/etc/anklume/{absolute_level,relative_level,vm_nested,yolo}` (ANKLUME_CONTEXT_DIR
 * in tests). One reader of the files, and the two interpretations the specs
 * give them: they disagree on what an absent file means, and both are right
 * for their reader.
 *
 * - `generatorContext`: what `make sync` reads (level **1** when absent);
 * - `parentContext`: what apply copies into a child (level **0** when absent).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";

/** The context files, in the order the stamp records them. */
export const CONTEXT_FILES = ["absolute_level", "relative_level", "vm_nested", "yolo"] as const;
type ContextFile = (typeof CONTEXT_FILES)[number];

/** The raw context: the directory read and each file's text (null when absent or unreadable). */
export interface ContextFiles {
  dir: string;
  texts: Record<ContextFile, string | null>;
}

/** The context directory: ANKLUME_CONTEXT_DIR, else `/etc/anklume`. */
export function contextDir(): string {
  return process.env.ANKLUME_CONTEXT_DIR ?? "/etc/anklume";
}

/** Read the context files as they are (the one reader of `/etc/anklume`). */
export function readContextFiles(dir = contextDir()): ContextFiles {
  const texts = {} as Record<ContextFile, string | null>;
  for (const name of CONTEXT_FILES) {
    try {
      texts[name] = readFileSync(join(dir, name), "utf8");
    } catch {
      texts[name] = null;
    }
  }
  return { dir, texts };
}

/** The context as the generator reads it (camelCase, as the rest of lib/sync). */
export interface GeneratorContext {
  /** Absolute nesting level (1 when the file is absent or not an integer). */
  absoluteLevel: number;
  /** true/false from the file; null when the file is absent. */
  vmNested: boolean | null;
  yolo: boolean;
}

/**
 * The generator's reading. generator-contract §7: the level is the int of the
 * stripped `absolute_level`, **1** when the file is missing or not an int.
 * generator-contract §5.1: `vm_nested` is true/false when the file exists and
 * None when absent; `yolo` is false unless the file says "true".
 */
export function generatorContext(files: ContextFiles = readContextFiles()): GeneratorContext {
  const { absolute_level: level, vm_nested: vm, yolo } = files.texts;
  const l = level?.trim();
  return {
    absoluteLevel: l !== undefined && /^-?\d+$/.test(l) ? Number(l) : 1,
    vmNested: vm === null ? null : vm.trim().toLowerCase() === "true",
    yolo: yolo !== null && yolo.trim().toLowerCase() === "true",
  };
}

/** The context apply copies into a child (snake_case: the names of the files and the marker). */
export interface ParentContext {
  absolute_level: number;
  relative_level: number;
  vm_nested: boolean;
  yolo: boolean;
}

/**
 * The reconciler's reading. operations-contract §3.5 step 13: read on the
 * controller, "missing → 0/0/false/false" (the level is **0** if absent, as v1's
 * `incus_instances` role), so the child of an unmarked host is level 1.
 */
export function parentContext(files: ContextFiles): ParentContext {
  const int = (s: string | null) => {
    const n = Number.parseInt(s?.trim() ?? "", 10);
    return Number.isFinite(n) ? n : 0;
  };
  const bool = (s: string | null) => s?.trim().toLowerCase() === "true";
  return {
    absolute_level: int(files.texts.absolute_level),
    relative_level: int(files.texts.relative_level),
    vm_nested: bool(files.texts.vm_nested),
    yolo: bool(files.texts.yolo),
  };
}

/** `parentContext` of a directory (`/etc/anklume`, or a test directory). */
export function readParentContext(dir: string): ParentContext {
  return parentContext(readContextFiles(dir));
}
