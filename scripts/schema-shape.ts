#!/usr/bin/env bun
// Usage: bun scripts/schema-shape.ts [--check]
//
// Write lib/sync/schema-shape.json: the structure of the infra.yml schema
// (lib/sync/schema.ts) as plain JSON, from which the generator compiles its fast
// shape check without loading valibot. Run it (make schema-shape) after any
// change to lib/sync/schema.ts; lib/sync/shape-check.test.ts fails until you do.
//
//   --check     write nothing; exit 1 when the file is out of date
//   -h, --help  show this help
//
// Exit: 0 success, 1 out of date (--check), 2 usage error.
import { readFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import { parseCli, runMain, say, topComment } from "../lib/core/cli.ts";
import { InfraSchema, ResourcePolicySchema } from "../lib/sync/schema.ts";
import { describeSchema } from "../lib/sync/schema-check.ts";
import { SHAPE_FILE } from "../lib/sync/shape-check.ts";

const USAGE = "Usage: bun scripts/schema-shape.ts [--check]";

/** The shape file's content for the current schema. */
export function shapeText(): string {
  const shapes = {
    infra: describeSchema(InfraSchema),
    resourcePolicy: describeSchema(ResourcePolicySchema),
  };
  return `${JSON.stringify(shapes, null, 1)}\n`;
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseCli(
    argv,
    { check: { type: "boolean" }, help: { type: "boolean", short: "h" } },
    false,
  );
  if (values.help) {
    process.stdout.write(`${topComment(import.meta.url)}\n`);
    return 0;
  }
  const text = shapeText();
  let current = "";
  try {
    current = readFileSync(SHAPE_FILE, "utf8");
  } catch {
    // Missing: written below, or reported by --check.
  }
  if (values.check) {
    if (current === text) return 0;
    say("lib/sync/schema-shape.json is out of date: run make schema-shape");
    return 1;
  }
  if (current !== text) writeFileSync(SHAPE_FILE, text);
  say(
    current === text
      ? "lib/sync/schema-shape.json is up to date"
      : "wrote lib/sync/schema-shape.json",
  );
  return 0;
}

if (import.meta.main) await runMain(main, USAGE);
