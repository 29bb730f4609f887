/**
 * Block-style YAML emission for the generated files (generator-contract §9).
 *
 * The output matches PyYAML's `safe_dump(default_flow_style=False,
 * sort_keys=False, allow_unicode=True)` with v1's dumper tweaks: sequences
 * indented two spaces under their key, null written as nothing (`key:` and
 * `-` alone). Deliberate differences, so that every file reads back the same
 * under PyYAML (YAML 1.1, what Ansible uses) and under the `yaml` package in
 * both its 1.1 and 1.2 schemas:
 *
 * - no line width: long strings are never folded (decision 4);
 * - a string with a line break or a control character is double-quoted with
 *   escapes (PyYAML would fold line breaks into a single-quoted scalar);
 * - a string is single-quoted when any of those readers would resolve it as
 *   something other than a string (`y`, `1e3`, `0o7`, `.` as well as PyYAML's
 *   own `true`, `10.100`, `~`, `2026-01-01`…).
 *
 * Hand-written because it runs once per generated file and the `yaml`
 * package's stringify is slow on a cold start.
 */

/** A value `dumpYaml` accepts. */
export type YamlValue = null | boolean | number | string | YamlValue[] | { [k: string]: YamlValue };

// Plain scalars that some YAML reader resolves to a non-string: the union of
// PyYAML's implicit resolvers and the `yaml` package's yaml-1.1 and core schemas.
export const NON_STRING: readonly RegExp[] = [
  /^(?:~|null|Null|NULL)$/,
  /^(?:[yYnN]|yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$/,
  /^(?:<<|=)$/,
  // integers: binary, octal (1.1 and 1.2), decimal, hex, sexagesimal
  /^[-+]?0b[0-1_]+$/,
  /^[-+]?0[0-7_]+$/,
  /^0o[0-7]+$/,
  /^[-+]?[0-9][0-9_]*$/,
  /^[-+]?0x[0-9a-fA-F_]+$/,
  /^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$/,
  // floats: with a dot, with an exponent, infinities and NaN
  /^[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?$/,
  /^[-+]?(?:[0-9][0-9_]*)?[eE][-+]?[0-9]+$/,
  /^[-+]?\.(?:inf|Inf|INF)$/,
  /^\.(?:nan|NaN|NAN)$/,
  // timestamps (PyYAML's and the yaml package's)
  /^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)?$/,
];

// First characters of every NON_STRING pattern: a cheap filter.
export const NON_STRING_FIRST = "~nNyYtTfFoOeE<=+-.0123456789";
const FIRST = new Set(NON_STRING_FIRST);

// All of NON_STRING as one regex: one test per candidate on the hot path.
const NON_STRING_ANY = new RegExp(NON_STRING.map((re) => `(?:${re.source})`).join("|"));

/** True when a plain scalar `s` would be read as something other than a string. */
export function resolvesNonString(s: string): boolean {
  if (s === "") return true;
  return FIRST.has(s[0] as string) && NON_STRING_ANY.test(s);
}

enum Style {
  Plain = 0,
  Single = 1,
  Double = 2,
}

interface Analysis {
  style: Style;
  multiline: boolean;
  length: number; // in code points, as PyYAML counts
}

const isBreak = (c: number) => c === 0x0a || c === 0x85 || c === 0x2028 || c === 0x2029;
const isSpaceOrEnd = (c: number) =>
  c === 0x20 || c === 0x00 || c === 0x09 || c === 0x0d || isBreak(c);

/** PyYAML's printable set with allow_unicode (analyze_scalar). */
function isPrintable(c: number): boolean {
  if (c >= 0x20 && c <= 0x7e) return true;
  if (c === 0xfeff) return false;
  return (
    c === 0x85 ||
    (c >= 0xa0 && c <= 0xd7ff) ||
    (c >= 0xe000 && c <= 0xfffd) ||
    (c >= 0x10000 && c < 0x10ffff)
  );
}

// Strings made only of these characters need none of the general analysis.
const SIMPLE = /^[-A-Za-z0-9_./: ]+$/;

// Keys and many values repeat across the 1,501 files of a large tree: the
// style of a short string is computed once.
const analysed = new Map<string, Analysis>();

/** Choose the scalar style PyYAML would, with the differences above (memoised). */
function analyze(s: string): Analysis {
  if (s.length > 64) return analyzeString(s);
  let a = analysed.get(s);
  if (a === undefined) {
    a = analyzeString(s);
    if (analysed.size < 50_000) analysed.set(s, a);
  }
  return a;
}

function analyzeString(s: string): Analysis {
  if (SIMPLE.test(s)) {
    const n = s.length;
    const last = s.charCodeAt(n - 1);
    const quote =
      s.charCodeAt(0) === 0x20 ||
      last === 0x20 ||
      last === 0x3a ||
      s.includes(": ") ||
      (s.charCodeAt(0) === 0x2d && (n === 1 || s.charCodeAt(1) === 0x20)) ||
      s.startsWith("---") ||
      s.startsWith("...") ||
      resolvesNonString(s);
    return { style: quote ? Style.Single : Style.Plain, multiline: false, length: n };
  }
  const cps: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        cps.push(((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000);
        i++;
        continue;
      }
    }
    cps.push(c);
  }
  const n = cps.length;
  if (n === 0) return { style: Style.Single, multiline: false, length: 0 };
  let blockIndicators = s.startsWith("---") || s.startsWith("...");
  let multiline = false;
  let special = false;
  for (let i = 0; i < n; i++) {
    const c = cps[i] as number;
    const followedBySpace = i + 1 >= n || isSpaceOrEnd(cps[i + 1] as number);
    if (i === 0) {
      // # , [ ] { } & * ! | > ' " % @ `
      if (c < 0x80 && "#,[]{}&*!|>'\"%@`".includes(String.fromCharCode(c))) blockIndicators = true;
      if ((c === 0x3f || c === 0x3a || c === 0x2d) && followedBySpace) blockIndicators = true;
    } else {
      if (c === 0x3a && followedBySpace) blockIndicators = true;
      if (c === 0x23 && isSpaceOrEnd(cps[i - 1] as number)) blockIndicators = true;
    }
    if (isBreak(c)) multiline = true;
    else if (!isPrintable(c)) special = true;
  }
  let style: Style;
  if (special || multiline) style = Style.Double;
  else if (blockIndicators || cps[0] === 0x20 || cps[n - 1] === 0x20 || resolvesNonString(s))
    style = Style.Single;
  else style = Style.Plain;
  return { style, multiline, length: n };
}

const ESCAPES: Record<number, string> = {
  0: "0",
  7: "a",
  8: "b",
  9: "t",
  10: "n",
  11: "v",
  12: "f",
  13: "r",
  27: "e",
  34: '"',
  92: "\\",
  133: "N",
  160: "_",
  8232: "L",
  8233: "P",
};

function hex(c: number, width: number): string {
  return c.toString(16).toUpperCase().padStart(width, "0");
}

/** PyYAML's double-quoted writer, without line splitting. */
function doubleQuoted(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) as number;
    const raw =
      c !== 0x22 &&
      c !== 0x5c &&
      c !== 0x85 &&
      c !== 0x2028 &&
      c !== 0x2029 &&
      c !== 0xfeff &&
      ((c >= 0x20 && c <= 0x7e) || (c >= 0xa0 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd));
    if (raw) out += ch;
    else if (ESCAPES[c] !== undefined) out += `\\${ESCAPES[c]}`;
    else if (c <= 0xff) out += `\\x${hex(c, 2)}`;
    else if (c <= 0xffff) out += `\\u${hex(c, 4)}`;
    else out += `\\U${hex(c, 8)}`;
  }
  return `${out}"`;
}

function scalarText(s: string, a: Analysis): string {
  if (a.style === Style.Plain) return s;
  if (a.style === Style.Single) return `'${s.replaceAll("'", "''")}'`;
  return doubleQuoted(s);
}

/** Format a finite number as PyYAML prints an int or a Python float's repr. */
function numberText(n: number): string {
  if (Number.isNaN(n)) return ".nan";
  if (n === Number.POSITIVE_INFINITY) return ".inf";
  if (n === Number.NEGATIVE_INFINITY) return "-.inf";
  if (Object.is(n, -0)) return "-0.0";
  if (Number.isSafeInteger(n)) return String(n);
  // Anything else as a Python float's repr: shortest digits, exponent form
  // when exp < -4 or exp >= 16, and PyYAML adds ".0" to a mantissa without a
  // dot. Integers beyond 2**53 are floats too: they read back as the same number.
  const [mant, expText] = n.toExponential().split("e") as [string, string];
  const exp = Number(expText);
  if (exp < -4 || exp >= 16) {
    const m = mant.includes(".") ? mant : `${mant}.0`;
    const sign = exp < 0 ? "-" : "+";
    return `${m}e${sign}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  const fixed = String(n);
  return fixed.includes(".") ? fixed : `${fixed}.0`;
}

function describe(v: unknown): string {
  if (v === undefined) return "undefined";
  if (typeof v === "object") return (v as object).constructor?.name ?? "object";
  return typeof v;
}

function isPlainObject(v: object): v is Record<string, unknown> {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Text of a scalar in value position, with its leading space (nothing for null). */
function scalarValue(v: unknown): string | undefined {
  if (v === null) return "";
  switch (typeof v) {
    case "string":
      return ` ${scalarText(v, analyze(v))}`;
    case "number":
      return ` ${numberText(v)}`;
    case "boolean":
      return v ? " true" : " false";
    case "object":
      if (Array.isArray(v)) return v.length === 0 ? " []" : undefined;
      if (isPlainObject(v)) {
        for (const k in v) if (v[k] !== undefined) return undefined;
        return " {}";
      }
  }
  throw new TypeError(
    `Cannot write ${describe(v)} at ${pathText() || "the top level"} as YAML: only null, booleans, numbers, strings, arrays and plain objects are supported; convert it first`,
  );
}

const PADS: string[] = [];

// Where the emitter is, for error messages only: keys and indexes.
const PATH: (string | number)[] = [];
const pathText = () =>
  PATH.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");

/**
 * Append the value that follows an indicator (`key:`, `-`, `?` or `:`) that
 * the caller has just written. A collection goes on the same line after `-`,
 * `?` and `:` of a complex key (compact form), on the next line after `key:`.
 */
function emitAfter(out: string[], v: unknown, indent: number, compact: boolean) {
  const s = scalarValue(v);
  if (s !== undefined) {
    out.push(s);
    return;
  }
  let pad = PADS[indent];
  if (pad === undefined) {
    pad = " ".repeat(indent);
    PADS[indent] = pad;
  }
  let lead = compact ? " " : `\n${pad}`;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      out.push(lead, "-");
      PATH.push(i);
      emitAfter(out, v[i], indent + 2, true);
      PATH.pop();
      lead = `\n${pad}`;
    }
    return;
  }
  const obj = v as Record<string, unknown>;
  for (const k in obj) {
    const item = obj[k];
    if (item === undefined) continue;
    const a = analyze(k);
    const key = scalarText(k, a);
    PATH.push(k);
    if (a.length === 0 || a.multiline || a.length >= 128) {
      // PyYAML's complex key: `? key` then `: value` on the next line.
      out.push(lead, "? ", key, `\n${pad}:`);
      emitAfter(out, item, indent + 2, true);
    } else {
      out.push(lead, key, ":");
      emitAfter(out, item, indent + 2, false);
    }
    PATH.pop();
    lead = `\n${pad}`;
  }
}

/**
 * Dump a JSON-like value as block-style YAML ending with a newline.
 * Keys whose value is `undefined` are left out, as JSON.stringify does.
 * @example dumpYaml({ a: [1, null], b: "10.100" }) // "a:\n  - 1\n  -\nb: '10.100'\n"
 */
export function dumpYaml(value: unknown): string {
  const out: string[] = [];
  PATH.length = 0;
  emitAfter(out, value, 0, false);
  // A top-level collection starts with the newline meant to follow a key.
  const text = out.join("");
  const body = text.startsWith("\n") ? text.slice(1) : text.startsWith(" ") ? text.slice(1) : text;
  return `${body}\n`;
}
