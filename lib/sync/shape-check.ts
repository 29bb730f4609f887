/**
 * Is the merged infra well-shaped? A yes/no answer compiled from the schema's
 * shape (lib/schema-shape.json, derived from lib/schema.ts by
 * `make schema-shape`), so a valid file is checked without loading valibot and
 * building the schema (~7 ms of a first sync). When the answer is no, the
 * generator loads lib/schema.ts, whose valibot schema explains every issue.
 * lib/shape-check.test.ts fails when the JSON no longer matches the schema.
 */
import { readFileSync } from "node:fs";
import { compileCheck, type SchemaShape } from "./schema-check.ts";

/** Where the shape file lives (beside this module). */
export const SHAPE_FILE = new URL("./schema-shape.json", import.meta.url);

interface Shapes {
  infra: SchemaShape;
  resourcePolicy: SchemaShape;
}

let checks: { infra: (x: unknown) => boolean; policy: (x: unknown) => boolean } | undefined;

/** True when `data` has the shape of infra.yml (the same answer as checkShape() returning []). */
export function shapeOk(data: unknown): boolean {
  if (!checks) {
    const shapes = JSON.parse(readFileSync(SHAPE_FILE, "utf8")) as Shapes;
    checks = { infra: compileCheck(shapes.infra), policy: compileCheck(shapes.resourcePolicy) };
  }
  const rp = (data as { global?: { resource_policy?: unknown } } | null)?.global?.resource_policy;
  return (
    checks.infra(data) && (rp === undefined || rp === null || rp === true || checks.policy(rp))
  );
}
