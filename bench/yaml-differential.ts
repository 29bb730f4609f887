#!/usr/bin/env bun
/**
 * bench/yaml-differential.ts — `make bench-yaml-differential`: the fast YAML
 * path (the plain-block scan, then Bun's parser) against the exact path (the
 * `yaml` package in YAML 1.1 mode) on generated documents. The fast path must
 * never accept what the exact path rejects, nor read a value differently.
 *
 * Documents are block mappings and sequences whose keys come in many spellings
 * of the same key (`ip`, `"ip"`, `'ip'`, `"\x69p"`, `"\u0069p"`, `1`, `+1`,
 * `0x1`, `1.0`, two integers too large to tell apart…) and whose scalars are
 * YAML 1.1/1.2 traps (`yes`, `017`, `2e0`, `08`, `1_000`, dates, escapes, tags,
 * anchors). Compared on each: `parseYaml` (what the generator reads) with
 * `parseExact`. Prints the counts; exit 1 on a disagreement, or when the scan
 * accepted too few documents to prove anything.
 *
 * Options: --runs N (default 100000), --seed S (default: random, printed).
 * lib/sync/_fast/plain-yaml.test.ts runs the same property in CI (fixed seed).
 */
import process from "node:process";
import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import { plainBlockYaml } from "../lib/sync/_fast/plain-yaml.ts";
import { parseExact, parseYaml } from "../lib/sync/yaml-load.ts";

/** Scalars that read differently (or fail) under YAML 1.1, 1.2 and PyYAML. */
const SCALARS = [
  "yes",
  "no",
  "on",
  "Off",
  "y",
  "true",
  "False",
  "null",
  "~",
  "10.100",
  "017",
  "08",
  "0o7",
  "0x1F",
  "1e3",
  "2e0",
  "1_000",
  "12:30",
  "190:20:30",
  "2026-01-01",
  ".5",
  ".",
  ".inf",
  "-.Inf",
  ".nan",
  "-1",
  "+1",
  "-0",
  "0",
  "12345678901234567890",
  "10.100.1.10",
  "a b",
  "x #y",
  "images:debian/13",
  "'q'",
  "'it''s'",
  '"d"',
  '"\\x41"',
  '"\\u0041\\t"',
  '"\\N\\_\\e"',
  '"a\\\nb"',
  "-",
  "a:b",
  "=",
  "<<",
  "!!str 1",
  "!foo bar",
  "&a x",
  "[a, 1, yes]",
  "[]",
  "{a: 1}",
  "|\n  text",
];

/** Keys, including many spellings that read as the same key. */
const KEYS = [
  "ip",
  '"ip"',
  "'ip'",
  '"\\x69p"',
  '"\\u0069p"',
  '"i\\x70"',
  "a",
  "b",
  "1",
  "+1",
  "01",
  '"1"',
  "'+1'",
  "0",
  "-0",
  "0x1",
  "1.0",
  "12345678901234567890",
  "12345678901234567891",
  "yes",
  "y",
  "true",
  "null",
  "~",
  "x.y",
  '"x.y"',
  "a b",
  "'a b'",
  "<<",
  ".",
  "2e0",
];

/** Scalars the scan lets through (so that many documents take the fast path). */
const SAFE = ["abc", "web-01", "10", "-3", "1.5", '"q r"', "'s'", "[a, 1]", "images:debian/13", ""];

const scalar = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...SAFE) },
  { weight: 2, arbitrary: fc.constantFrom(...SCALARS) },
  fc.string({ maxLength: 6 }),
  fc.integer().map(String),
);
const key = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...KEYS) },
  fc.string({ minLength: 1, maxLength: 4 }),
);

/** A block document as lines (depth: how many levels it may nest). */
function render(depth: number): fc.Arbitrary<string[]> {
  const leaf = scalar.map((s) => [s]);
  if (depth === 0) return leaf;
  const map = fc
    .array(fc.tuple(key, render(depth - 1)), { minLength: 1, maxLength: 5 })
    .map((pairs) =>
      pairs.flatMap(([k, v]) =>
        v.length === 1 && !v[0]?.startsWith(" ")
          ? [`${k}: ${v[0]}`]
          : [`${k}:`, ...v.map((l) => `  ${l}`)],
      ),
    );
  const seq = fc
    .array(render(depth - 1), { minLength: 1, maxLength: 3 })
    .map((items) => items.flatMap((v) => [`- ${v[0]}`, ...v.slice(1).map((l) => `  ${l}`)]));
  return fc.oneof(leaf, map, map, seq);
}

/** Whole documents: mostly mappings at the top, as infra.yml is. */
export const yamlDocument: fc.Arbitrary<string> = render(3).map((lines) => `${lines.join("\n")}\n`);

/** Same value, same key order (isDeepStrictEqual alone ignores the order of keys). */
function same(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(a, b) && JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Compare the fast path with the exact one on a text: null when they agree,
 * else what differs. `fast` says whether the scan let Bun's parser read it.
 */
export async function yamlDifference(
  text: string,
): Promise<{ fast: boolean; diff: string | null }> {
  const fast = plainBlockYaml(text);
  // A text the scan refuses goes to parseExact itself: nothing to compare.
  if (!fast) return { fast, diff: null };
  const got = await parseYaml(text, "t.yml");
  const exact = await parseExact(text, "t.yml");
  if (got.ok !== exact.ok) {
    return { fast, diff: `parseYaml ok=${got.ok}, parseExact ok=${exact.ok}` };
  }
  if (got.ok && exact.ok && !same(got.value, exact.value)) {
    return {
      fast,
      diff: `parseYaml ${JSON.stringify(got.value)} ≠ parseExact ${JSON.stringify(exact.value)}`,
    };
  }
  return { fast, diff: null };
}

async function main(argv: string[]): Promise<number> {
  const arg = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const runs = Number(arg("--runs") ?? 100_000);
  const seed = arg("--seed") !== undefined ? Number(arg("--seed")) : Date.now() % 2 ** 31;
  if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(seed)) {
    process.stderr.write("usage: bun bench/yaml-differential.ts [--runs N] [--seed S]\n");
    return 2;
  }
  console.log(`yaml differential: ${runs} documents, seed ${seed}`);
  const t0 = performance.now();
  let fastCount = 0;
  let mismatches = 0;
  const samples = fc.sample(yamlDocument, { numRuns: runs, seed });
  for (const text of samples) {
    const { fast, diff } = await yamlDifference(text);
    if (fast) fastCount++;
    if (diff) {
      mismatches++;
      if (mismatches <= 5) console.log(`MISMATCH on ${JSON.stringify(text)}: ${diff}`);
    }
  }
  const s = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(
    `fast path took ${fastCount} of ${runs} documents; ${mismatches} mismatch(es); ${s} s`,
  );
  if (mismatches > 0) return 1;
  if (fastCount < runs / 50) {
    console.log("too few documents took the fast path to prove anything");
    return 1;
  }
  return 0;
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
