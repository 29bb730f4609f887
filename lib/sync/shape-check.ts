/**
 * The shape check of infra.yml: one Issue per offending path, none when the
 * merged data has the schema's shape (lib/sync/schema.ts). The caller never
 * picks a path: a well-shaped file is answered by a compiled yes/no check
 * (private, lib/sync/_fast/shape.ts) without loading valibot; valibot runs only
 * to explain a file that is not. ANKLUME_SHAPE_EXACT=1 always runs valibot (to
 * measure what the fast check buys).
 */
import process from "node:process";
import type { Issue } from "../core/issues.ts";
import { shapeOk } from "./_fast/shape.ts";

/** Check the shape of the merged infra; [] when it is well-shaped. */
export async function checkShape(data: unknown): Promise<Issue[]> {
  if (process.env.ANKLUME_SHAPE_EXACT !== "1" && (await shapeOk(data))) return [];
  const { shapeIssues } = await import("./schema.ts");
  return shapeIssues(data);
}
