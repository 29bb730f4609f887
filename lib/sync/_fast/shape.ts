/**
 * Private to lib/sync (reached only through `checkShape` in lib/sync/shape-check.ts).
 *
 * Is the merged infra well-shaped? A yes/no answer compiled from the schema's
 * shape: the structure of lib/sync/schema.ts's valibot schema as plain JSON
 * (`describeSchema`), so that a valid file is checked without loading valibot
 * and building the schema.
 *
 * The shape is derived from lib/sync/schema.ts on first use and cached in
 * `<cache>/shape/<key>.json` (the sync stamp's directory, lib/core/cache.ts),
 * the key being a hash of schema.ts, of the deriver (schema-check.ts) and of
 * valibot's package.json: editing the schema needs no manual step, the next sync
 * derives again. Under ANKLUME_NO_CACHE=1 it is derived in every process.
 *
 * Why: it buys ~10 ms (~0.15× a plain write) of bench/sync.ts's first sync:
 * the shape step takes ~21 ms instead of ~34 ms with valibot. Measure without
 * it: `ANKLUME_SHAPE_EXACT=1 make bench-sync` (valibot checks every file). With
 * an empty cache the shape step takes ~32 ms once (bench row "empty cache").
 */
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { cacheDir, cacheEnabled, textHash } from "../../core/cache.ts";
import { compileCheck, type SchemaShape } from "./schema-check.ts";

/** The two schemas the shape check needs (resource_policy is checked apart: it may be `true`). */
export interface Shapes {
  infra: SchemaShape;
  resourcePolicy: SchemaShape;
}

/** What the shape depends on: the schema, the code that describes it, and valibot's version. */
const SOURCES = [
  new URL("../schema.ts", import.meta.url),
  new URL("./schema-check.ts", import.meta.url),
  new URL("../../../node_modules/valibot/package.json", import.meta.url),
];

/** The cache key of the shape: a hash of its sources' texts (an unreadable one counts as empty). */
export function shapeKey(texts: string[] = SOURCES.map(readOrEmpty)): string {
  return textHash(texts.join("\0"));
}

function readOrEmpty(url: URL): string {
  try {
    return readFileSync(url, "utf8");
  } catch {
    return "";
  }
}

/** Derive the shapes from lib/sync/schema.ts (this loads valibot). */
export async function deriveShapes(): Promise<Shapes> {
  const [{ InfraSchema, ResourcePolicySchema }, { describeSchema }] = await Promise.all([
    import("../schema.ts"),
    import("./schema-check.ts"),
  ]);
  return {
    infra: describeSchema(InfraSchema),
    resourcePolicy: describeSchema(ResourcePolicySchema),
  };
}

/** The cache file for a key. */
export function shapeFile(key = shapeKey()): string {
  return join(cacheDir(), "shape", `${key}.json`);
}

/** The shapes from the cache, or derived (and cached for the next process). */
export async function loadShapes(): Promise<Shapes> {
  if (!cacheEnabled()) return deriveShapes();
  const key = shapeKey();
  const file = shapeFile(key);
  try {
    const cached = JSON.parse(readFileSync(file, "utf8")) as Partial<Shapes> | null;
    if (
      typeof cached?.infra?.type === "string" &&
      typeof cached.resourcePolicy?.type === "string"
    ) {
      return cached as Shapes;
    }
  } catch {
    // Cold or unreadable cache: derive below.
  }
  const shapes = await deriveShapes();
  try {
    const dir = join(cacheDir(), "shape");
    mkdirSync(dir, { recursive: true });
    // Shapes of older schemas are of no further use (keys of the other runtime are kept).
    for (const name of readdirSync(dir)) {
      if (name[0] === key[0] && name !== `${key}.json`) unlinkSync(join(dir, name));
    }
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(shapes));
    renameSync(tmp, file);
  } catch {
    // Only an optimisation.
  }
  return shapes;
}

let checks:
  | Promise<{ infra: (x: unknown) => boolean; policy: (x: unknown) => boolean }>
  | undefined;

/** True when `data` has the shape of infra.yml (the same answer as valibot finding no issue). */
export async function shapeOk(data: unknown): Promise<boolean> {
  checks ??= loadShapes().then((s) => ({
    infra: compileCheck(s.infra),
    policy: compileCheck(s.resourcePolicy),
  }));
  const c = await checks;
  const rp = (data as { global?: { resource_policy?: unknown } } | null)?.global?.resource_policy;
  return c.infra(data) && (rp === undefined || rp === null || rp === true || c.policy(rp));
}
