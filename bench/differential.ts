#!/usr/bin/env bun
/**
 * bench/differential.ts — `make bench-differential`: the compiled shape check
 * (lib/sync/_fast) against valibot (lib/sync/schema.ts) on generated documents.
 * They must give the same answer on every input: the generator skips valibot
 * when the compiled check says yes, and valibot explains the no.
 *
 * Documents are built from the schema itself (every field, every map, names
 * such as prototype, constructor and __proto__), so about half are valid; the
 * other half get one mutation (a list, a date, binary data, null, a scalar or
 * an odd key where a value was). Compared on each: the production answer
 * (`shapeOk`) with `shapeIssues` finding nothing, and the compiled InfraSchema
 * with `v.safeParse`. Prints the counts; exit 1 on a disagreement or when too
 * few documents were valid (a generator that never makes one proves nothing).
 *
 * Options: --runs N (default 20000), --seed S (default: random, printed).
 * lib/sync/_fast/schema-check.test.ts runs the same property in CI (fixed seed,
 * a few hundred runs).
 */
import process from "node:process";
import fc from "fast-check";
import * as v from "valibot";
import { compileCheck, describeSchema, type SchemaShape } from "../lib/sync/_fast/schema-check.ts";
import { shapeOk } from "../lib/sync/_fast/shape.ts";
import { InfraSchema, ResourcePolicySchema, shapeIssues } from "../lib/sync/schema.ts";

type Doc = unknown;

/** Map keys, the ones valibot's record skipped and Object.prototype's names included. */
const KEYS = [
  "pro",
  "m1",
  "a",
  "0",
  "limits.cpu",
  "prototype",
  "constructor",
  "__proto__",
  "toString",
  "hasOwnProperty",
] as const;

/** An object with these own keys, `__proto__` included (an assignment would set the prototype). */
function own(entries: [string, unknown][]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, x] of entries) {
    Object.defineProperty(out, k, {
      value: x,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/** Strings a field may hold: names, addresses, the enum words, odd text. */
const STRINGS = fc.constantFrom("x", "pro", "10.100.1.10", "lxc", "all", "", "0 2 * * *", "a b");

/** Values of a field typed `unknown` (ip, base_subnet): anything a user may write. */
const ANY_SCALAR = fc.constantFrom<unknown>("10.100", "10.100.1.10", 10.1, 3, true, null);

/** An arbitrary of documents valid for the schema shape `node` (every one passes valibot). */
export function validArb(node: SchemaShape, field = ""): fc.Arbitrary<Doc> {
  return baseArb(node, field);
}

function intRange(node: SchemaShape): { min: number; max: number } {
  let min = -5;
  let max = 300;
  for (const p of node.pipe ?? []) {
    if (p.type === "min_value") min = p.requirement as number;
    if (p.type === "max_value") max = Math.min(p.requirement as number, min + 300);
  }
  return { min, max: Math.max(min, max) };
}

function baseArb(node: SchemaShape, field: string): fc.Arbitrary<Doc> {
  switch (node.type) {
    case "string":
      return STRINGS;
    case "number":
      return (node.pipe ?? []).some((p) => p.type === "integer")
        ? fc.integer(intRange(node))
        : fc.constantFrom(0, 1, 2.5);
    case "boolean":
      return fc.boolean();
    case "unknown":
      return field === "resource_policy"
        ? fc.oneof(
            fc.constant(true),
            fc.constant(null),
            validArb(describeSchema(ResourcePolicySchema)),
          )
        : ANY_SCALAR;
    case "literal":
      return fc.constant(node.literal);
    case "picklist":
      return fc.constantFrom(...(node.options as unknown[]));
    case "optional":
      return fc.oneof(fc.constant(undefined), validArb(node.wrapped as SchemaShape, field));
    case "nullable":
      return fc.oneof(fc.constant(null), validArb(node.wrapped as SchemaShape, field));
    case "nullish":
      return fc.oneof(
        fc.constant(undefined),
        fc.constant(null),
        validArb(node.wrapped as SchemaShape, field),
      );
    case "union":
      return fc.oneof(...(node.options as SchemaShape[]).map((o) => validArb(o, field)));
    case "array":
      return fc.array(validArb(node.item as SchemaShape, field), { maxLength: 3 });
    case "record":
      return fc
        .uniqueArray(
          fc.tuple(fc.constantFrom(...KEYS), validArb(node.value as SchemaShape, field)),
          { maxLength: 3, selector: ([k]) => k },
        )
        .map(own);
    case "strict_object": {
      const entries = Object.entries(node.entries ?? {});
      return fc
        .tuple(...entries.map(([k, n]) => validArb(n, k)))
        .map((values) =>
          own(
            entries
              .map(([k], i) => [k, values[i]] as [string, unknown])
              .filter(([, x]) => x !== undefined),
          ),
        );
    }
    default:
      throw new Error(`bench/differential.ts: no generator for schema type "${node.type}"`);
  }
}

/** What a mutation may put in place of a value or add as a key. */
const BAD: (() => unknown)[] = [
  () => [],
  () => [1],
  () => ({}),
  () => null,
  () => "x",
  () => 7,
  () => 1.5,
  () => true,
  () => Number.NaN,
  () => new Date(0),
  () => new Uint8Array(1),
  () => own([["__proto__", { polluted: "yes" }]]),
  () => own([["prototype", 1]]),
];

/** Every path to a value in `doc` (the root included). */
function paths(doc: Doc, at: (string | number)[] = [], out: (string | number)[][] = []) {
  out.push(at);
  if (Array.isArray(doc)) {
    for (let i = 0; i < doc.length; i++) paths(doc[i], [...at, i], out);
  } else if (
    doc !== null &&
    typeof doc === "object" &&
    !(doc instanceof Date || doc instanceof Uint8Array)
  ) {
    for (const k of Object.keys(doc)) paths((doc as Record<string, unknown>)[k], [...at, k], out);
  }
  return out;
}

/** A deep copy that keeps own `__proto__` keys, dates and binary data. */
function clone(doc: Doc): Doc {
  if (Array.isArray(doc)) return doc.map(clone);
  if (doc === null || typeof doc !== "object" || doc instanceof Date || doc instanceof Uint8Array) {
    return doc;
  }
  return own(Object.entries(doc).map(([k, x]) => [k, clone(x)]));
}

/** `doc` with one change at the `pick`-th path: a bad value there, an odd key added, or a list around it. */
function mutate(doc: Doc, pick: number, bad: number, how: number): Doc {
  const all = paths(doc);
  const path = all[pick % all.length] as (string | number)[];
  const value = (BAD[bad % BAD.length] as () => unknown)();
  const root = clone(doc);
  const parent = path
    .slice(0, -1)
    .reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], root);
  const last = path.at(-1);
  const target = path.reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], root);
  if (how === 1 && target !== null && typeof target === "object" && !Array.isArray(target)) {
    Object.defineProperty(target, KEYS[bad % KEYS.length] as string, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
    return root;
  }
  const replacement = how === 2 ? [target] : value;
  if (last === undefined) return replacement;
  Object.defineProperty(parent as object, last, {
    value: replacement,
    enumerable: true,
    writable: true,
    configurable: true,
  });
  return root;
}

/** Valid documents, and valid documents with one mutation, half and half. */
export function documentArb(): fc.Arbitrary<Doc> {
  const valid = validArb(describeSchema(InfraSchema));
  return fc.oneof(
    valid,
    fc
      .tuple(valid, fc.nat(), fc.nat(), fc.integer({ min: 0, max: 2 }))
      .map(([doc, pick, bad, how]) => mutate(doc, pick, bad, how)),
  );
}

/** What a run found. */
export interface DifferentialResult {
  runs: number;
  /** Documents both sides found valid. */
  valid: number;
  seed: number;
  /** fast-check's report of the first disagreement, shrunk; undefined when none. */
  failure?: string;
}

const infraCheck = compileCheck(InfraSchema);

/** Compare the compiled check and valibot on `runs` generated documents. */
export async function runDifferential(runs: number, seed: number): Promise<DifferentialResult> {
  let valid = 0;
  const r = await fc.check(
    fc.asyncProperty(documentArb(), async (doc) => {
      const fast = await shapeOk(doc);
      const exact = shapeIssues(doc).length === 0;
      if (fast !== exact) return false;
      if (infraCheck(doc) !== v.safeParse(InfraSchema, doc).success) return false;
      if (fast) valid++;
      return true;
    }),
    { numRuns: runs, seed },
  );
  return {
    runs,
    valid,
    seed,
    failure: r.failed ? fc.defaultReportMessage(r) : undefined,
  };
}

if (import.meta.main) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? Number(process.argv[i + 1]) : undefined;
  };
  const runs = arg("--runs") ?? 20000;
  const seed = arg("--seed") ?? Math.floor(Math.random() * 2 ** 31);
  if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(seed)) {
    console.error("usage: bun bench/differential.ts [--runs N] [--seed S]");
    process.exit(2);
  }
  const t = performance.now();
  const r = await runDifferential(runs, seed);
  const ms = performance.now() - t;
  console.log(
    `compiled shape check vs valibot: ${runs} documents (seed ${seed}), ${r.valid} valid (${((100 * r.valid) / runs).toFixed(1)} %), ${r.failure ? "DISAGREEMENT" : "0 disagreements"}, ${(ms / 1000).toFixed(1)} s`,
  );
  if (r.failure) console.error(r.failure);
  const tooFew = r.valid < runs * 0.25;
  if (tooFew) console.error("too few valid documents: the generator proves nothing");
  process.exit(r.failure || tooFew ? 1 : 0);
}
