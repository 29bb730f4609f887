/**
 * Private to lib/sync (reached only through `parseYaml` in yaml-load.ts): the
 * one-pass scan that decides whether Bun's native YAML parser may read a text.
 *
 * Why: the exact parser (the `yaml` package in YAML 1.1 mode) reads the
 * 12,758-line bench file (bench/sync.ts) in ~1 s cold, Bun's parser in ~5 ms:
 * bench/sync.ts's first sync is ~4× a plain write with this scan, ~20× without.
 * Measure without it: `ANKLUME_YAML_EXACT=1 make bench-sync`.
 */
const INT = /^[-+]?(0|[1-9][0-9]*)$/;
const FLOAT = /^[-+]?(0|[1-9][0-9]*)\.[0-9]+$/;
const SAME_WORDS = new Set([
  "true",
  "True",
  "TRUE",
  "false",
  "False",
  "FALSE",
  "null",
  "Null",
  "NULL",
  "~",
]);
const V11_WORDS = /^(y|n|yes|no|on|off)$/i;
const DOTTED_NUMBERS = /^[0-9]+(\.[0-9]+){2,}$/;

// The conservative plain-scalar alphabet, as lookup tables: a regex here cost
// ~10 ms per 12,000-line file on a cold start, a table lookup a tenth of it.
const PLAIN_FIRST = new Uint8Array(128);
const PLAIN_REST = new Uint8Array(128);
for (const ch of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_~/+-") {
  PLAIN_FIRST[ch.charCodeAt(0)] = 1;
  PLAIN_REST[ch.charCodeAt(0)] = 1;
}
for (const ch of ".():@=%, ") PLAIN_REST[ch.charCodeAt(0)] = 1;

/** True when `s` is made only of the conservative plain-scalar alphabet. */
function plainAlphabet(s: string): boolean {
  const n = s.length;
  if (n === 0 || PLAIN_FIRST[s.charCodeAt(0)] !== 1) return false;
  for (let i = 1; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || PLAIN_REST[c] !== 1) return false;
  }
  return true;
}

/**
 * True when a plain scalar (conservative character set) resolves to the same
 * value under YAML 1.1 and 1.2 core.
 */
function sameInBothSchemas(s: string): boolean {
  const c = s.charCodeAt(0);
  // The common case first: a word starting with a letter other than e/n/o/y.
  if (!plainAlphabet(s) || s.charCodeAt(s.length - 1) === 32) return false;
  // The common case: a word starting with a letter other than e/n/o/y/t/f.
  if (((c >= 97 && c <= 122) || (c >= 65 && c <= 90)) && !"eEnNoOyYtTfF".includes(s[0] as string)) {
    return true;
  }
  if (INT.test(s) || FLOAT.test(s) || SAME_WORDS.has(s) || DOTTED_NUMBERS.test(s)) return true;
  // "e0": the yaml package's 1.1 float pattern (all parts optional) reads it as a number.
  if (V11_WORDS.test(s) || s === "=" || s === "<<" || /^[eE][-+]?[0-9]/.test(s)) return false;
  const digitLike = (c >= 48 && c <= 57) || s[0] === "." || s[0] === "+" || s[0] === "-";
  return !digitLike;
}

/** Read a quoted scalar starting at s[0]; return the index after it, or -1 if it does not close. */
function quotedEnd(s: string): number {
  const quote = s[0];
  for (let i = 1; i < s.length; i++) {
    const ch = s[i];
    if (quote === '"' && ch === "\\") {
      i++;
    } else if (ch === quote) {
      if (quote === "'" && s[i + 1] === "'") i++;
      else return i + 1;
    }
  }
  return -1;
}

/** Strip a trailing ` # comment` from a plain remainder; null when the rest is not a comment. */
function afterToken(rest: string): boolean {
  const t = rest.trimStart();
  return t === "" || t.startsWith("#");
}

/** Check a value (after `key: ` or `- `): scalar, quoted, or a one-line flow sequence. */
function valueOk(v: string): boolean {
  if (v === "" || v.startsWith("#")) return true;
  const c = v[0];
  if (c === '"' || c === "'") {
    const end = quotedEnd(v);
    return end > 0 && afterToken(v.slice(end));
  }
  if (c === "[") return flowSeqOk(v);
  if ("{&*!|>%@`?".includes(c as string)) return false;
  const hash = v.indexOf(" #");
  const plain = (hash >= 0 ? v.slice(0, hash) : v).trimEnd();
  if (plain.includes(": ") || plain.endsWith(":") || plain.includes("\t")) return false;
  return sameInBothSchemas(plain);
}

/** A flow sequence of scalars on one line: `[a, "b", 3]`. */
function flowSeqOk(v: string): boolean {
  let i = 1;
  for (;;) {
    while (v[i] === " ") i++;
    if (v[i] === "]") return afterToken(v.slice(i + 1));
    const c = v[i];
    if (c === undefined) return false;
    if (c === '"' || c === "'") {
      const end = quotedEnd(v.slice(i));
      if (end < 0) return false;
      i += end;
    } else {
      let j = i;
      while (j < v.length && v[j] !== "," && v[j] !== "]") j++;
      const item = v.slice(i, j).trim();
      if (!/^[A-Za-z0-9_./+-][^[\]{}:#&*!|>'"%@`?,]*$/.test(item) || !sameInBothSchemas(item)) {
        return false;
      }
      i = j;
    }
    while (v[i] === " ") i++;
    if (v[i] === ",") i++;
    else if (v[i] !== "]") return false;
  }
}

/** Index of the `:` that ends a plain key at the start of `s` (`key: v`, `key:`), or -1. */
function plainKeyEnd(s: string): number {
  const n = s.length;
  for (let i = 1; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === 58 /* : */) {
      if (i + 1 === n || s.charCodeAt(i + 1) === 32) return i;
    } else if (c === 35 /* # */) {
      return -1;
    }
  }
  return -1;
}

/**
 * True when `text` is plain block YAML that Bun's parser reads exactly as the
 * `yaml` package in YAML 1.1 mode: no anchors, tags, block scalars, flow
 * mappings, multi-line scalars or documents; every plain scalar unambiguous;
 * no duplicate key in any mapping. One pass, index based (it runs on every
 * sync before the fast parser).
 */
export function plainBlockYaml(text: string): boolean {
  const cols: number[] = [];
  // Keys seen per open mapping: a small array (most mappings hold a few keys),
  // turned into a Set past 32 keys.
  const keys: (string[] | Set<string>)[] = [];
  let first = true;
  let pos = 0;
  const n = text.length;
  while (pos < n) {
    let end = text.indexOf("\n", pos);
    if (end < 0) end = n;
    let lineEnd = end;
    if (lineEnd > pos && text.charCodeAt(lineEnd - 1) === 13) lineEnd--;
    let i = pos;
    while (i < lineEnd && text.charCodeAt(i) === 32) i++;
    const lineStart = pos;
    pos = end + 1;
    if (i === lineEnd) continue;
    const c0 = text.charCodeAt(i);
    if (c0 === 35 /* # */) continue;
    const line = text.slice(i, lineEnd);
    if (line.includes("\t") || line.includes("\r")) return false;
    if (first && line === "---" && i === lineStart) {
      first = false;
      continue;
    }
    first = false;
    if (line.startsWith("---") || line.startsWith("...") || c0 === 37 /* % */) return false;
    const lineCol = i - lineStart;
    let col = lineCol;
    let rest = line;
    let isItem = false;
    while (rest.charCodeAt(0) === 45 /* - */ && (rest.length === 1 || rest.charCodeAt(1) === 32)) {
      isItem = true;
      let k = 1;
      while (k < rest.length && rest.charCodeAt(k) === 32) k++;
      col += k;
      rest = rest.slice(k);
      if (rest === "") return false; // a bare "-": nested block on the next lines
    }
    // A key? Read the first token.
    let key: string | undefined;
    let afterKey = "";
    const c = rest.charCodeAt(0);
    if (c === 34 || c === 39 /* " ' */) {
      const e = quotedEnd(rest);
      if (e < 0) return false;
      if (rest.charCodeAt(e) === 58 && (e + 1 === rest.length || rest.charCodeAt(e + 1) === 32)) {
        // An escape can spell any key ("\x69p" is ip): leave those to the exact parser.
        if (c === 34 && rest.lastIndexOf("\\", e) > 0) return false;
        key = unquote(rest.slice(0, e));
        afterKey = rest.slice(e + 1).trimStart();
      } else if (!isItem || !afterToken(rest.slice(e))) {
        return false;
      }
    } else if (c !== 58 /* : */) {
      const k = plainKeyEnd(rest);
      if (k > 0) {
        key = rest.slice(0, k);
        if (key.charCodeAt(key.length - 1) === 32) key = key.trimEnd();
        if (!sameInBothSchemas(key) || SAME_WORDS.has(key)) return false;
        const k0 = key.charCodeAt(0);
        if ((k0 < 65 || k0 === 95 || k0 > 122) && FLOAT.test(key)) return false;
        // An integer key is compared as the number it reads as: +1 and 1 are one key,
        // and so are two integers too large to tell apart as JavaScript numbers.
        if ((k0 < 58 || k0 === 95) && INT.test(key)) key = String(Number(key));
        afterKey = rest.slice(k + 1).trimStart();
      }
    }
    if (key === undefined) {
      // A scalar on its own line: only valid as a sequence item.
      if (!isItem || !valueOk(rest)) return false;
      while (cols.length > 0 && (cols[cols.length - 1] as number) > lineCol) {
        cols.pop();
        keys.pop();
      }
      continue;
    }
    if (isItem) {
      while (cols.length > 0 && (cols[cols.length - 1] as number) >= col) {
        cols.pop();
        keys.pop();
      }
      cols.push(col);
      keys.push([]);
    } else {
      while (cols.length > 0 && (cols[cols.length - 1] as number) > col) {
        cols.pop();
        keys.pop();
      }
      if (cols.length === 0 || cols[cols.length - 1] !== col) {
        cols.push(col);
        keys.push([]);
      }
    }
    // Deep nesting goes to the exact parser, which refuses past MAX_DEPTH (yaml-load.ts).
    if (cols.length > 64) return false;
    const frame = keys[keys.length - 1] as string[] | Set<string>;
    if (Array.isArray(frame)) {
      if (frame.includes(key)) return false;
      frame.push(key);
      if (frame.length > 32) keys[keys.length - 1] = new Set(frame);
    } else {
      if (frame.has(key)) return false;
      frame.add(key);
    }
    if (afterKey !== "" && !valueOk(afterKey)) return false;
  }
  return true;
}

function unquote(s: string): string {
  if (s.startsWith("'")) return s.slice(1, -1).replaceAll("''", "'");
  try {
    return JSON.parse(s) as string;
  } catch {
    return s;
  }
}
