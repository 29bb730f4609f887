/**
 * Managed sections of the generated files (generator-contract §10, decision 4).
 *
 * A generated file holds one block between `MANAGED_BEGIN` and `MANAGED_END`
 * that `make sync` rewrites; every other byte belongs to the user and is never
 * parsed nor changed. Markers are matched as plain text anywhere in the file.
 * Differences from v1: in a file without markers that starts with a `---`
 * line, the block goes after that line (one YAML document, not two); a file
 * with two blocks, or with a marker missing its partner, is an error instead of
 * being silently half-updated.
 */

export const MANAGED_BEGIN = "# === MANAGED BY infra.yml ===";
export const MANAGED_END = "# === END MANAGED ===";
export const MANAGED_NOTICE = "# Do not edit this section — it will be overwritten by `make sync`";
export const USER_SECTION = "# Your custom variables below:";

/** The managed block for a YAML body: markers, notice, body without trailing blanks. */
export function managedBlock(yamlBody: string): string {
  // trimEnd, not /\s+$/: the regex is quadratic on a body with many indented lines.
  const body = yamlBody.trimEnd();
  return body === ""
    ? `${MANAGED_BEGIN}\n${MANAGED_NOTICE}\n${MANAGED_END}`
    : `${MANAGED_BEGIN}\n${MANAGED_NOTICE}\n${body}\n${MANAGED_END}`;
}

/** Every index at which `needle` occurs in `text`. */
function indicesOf(text: string, needle: string): number[] {
  const found: number[] = [];
  for (let i = text.indexOf(needle); i !== -1; i = text.indexOf(needle, i + needle.length)) {
    found.push(i);
  }
  return found;
}

/**
 * 1-based line numbers of sorted character offsets, in one pass over the text
 * (a rescan per offset was quadratic: 40,000 stray markers took 5 s).
 */
function linesOf(text: string, offsets: readonly number[]): number[] {
  const out: number[] = [];
  let line = 1;
  let nl = text.indexOf("\n");
  for (const offset of offsets) {
    while (nl !== -1 && nl < offset) {
      line++;
      nl = text.indexOf("\n", nl + 1);
    }
    out.push(line);
  }
  return out;
}

/** The most line numbers a message lists (then "and N more"). */
const MAX_LISTED = 10;

/** "3, 7, 9" or "3, 7, … and 120 more". */
function listLines(text: string, offsets: readonly number[]): string {
  const shown = linesOf(text, offsets.slice(0, MAX_LISTED)).join(", ");
  return offsets.length > MAX_LISTED ? `${shown} and ${offsets.length - MAX_LISTED} more` : shown;
}

export type MergeResult = { ok: true; content: string } | { ok: false; error: string };

/**
 * Put the managed block for `yamlBody` into a file's content (`null` for a new file).
 * The caller prefixes an error with the file's path.
 * @example mergeManaged(null, "a: 1\n") // { ok: true, content: "---\n# === MANAGED…\na: 1\n# === END MANAGED ===\n\n# Your custom variables below:\n" }
 */
export function mergeManaged(existing: string | null, yamlBody: string): MergeResult {
  const block = managedBlock(yamlBody);
  if (existing === null) return { ok: true, content: `---\n${block}\n\n${USER_SECTION}\n` };

  const begins = indicesOf(existing, MANAGED_BEGIN);
  const ends = indicesOf(existing, MANAGED_END);
  const lines = (xs: number[]) => listLines(existing, xs);

  if (begins.length === 0 && ends.length === 0) {
    const firstEnd = existing.indexOf("\n");
    const firstLine = firstEnd === -1 ? existing : existing.slice(0, firstEnd);
    if (firstLine.trimEnd() === "---") {
      const rest = firstEnd === -1 ? "" : existing.slice(firstEnd + 1);
      return { ok: true, content: `${firstLine}\n${block}\n\n${rest}` };
    }
    return { ok: true, content: `---\n${block}\n\n${existing}` };
  }
  if (begins.length === 1 && ends.length === 1 && (begins[0] as number) < (ends[0] as number)) {
    const start = begins[0] as number;
    const stop = (ends[0] as number) + MANAGED_END.length;
    return { ok: true, content: existing.slice(0, start) + block + existing.slice(stop) };
  }

  if (begins.length > 1 || ends.length > 1) {
    return {
      ok: false,
      error:
        `Cannot update the managed block: the file has ${Math.max(begins.length, ends.length)} managed blocks ` +
        `("${MANAGED_BEGIN}" on line(s) ${lines(begins) || "none"}, "${MANAGED_END}" on line(s) ${lines(ends) || "none"}); ` +
        "keep exactly one block (delete the other ones, markers included, and move any keys of yours below the remaining one), then run `make sync` again",
    };
  }
  if (ends.length === 0) {
    return {
      ok: false,
      error:
        `Cannot update the managed block: "${MANAGED_BEGIN}" on line ${lines(begins)} has no "${MANAGED_END}" after it; ` +
        `add a "${MANAGED_END}" line where the generated keys end, or delete the marker line and the generated keys under it, then run \`make sync\` again`,
    };
  }
  return {
    ok: false,
    error:
      begins.length === 0
        ? `Cannot update the managed block: "${MANAGED_END}" on line ${lines(ends)} has no "${MANAGED_BEGIN}" before it; ` +
          `add a "${MANAGED_BEGIN}" line where the generated keys start, or delete the stray marker line, then run \`make sync\` again`
        : `Cannot update the managed block: "${MANAGED_END}" (line ${lines(ends)}) comes before "${MANAGED_BEGIN}" (line ${lines(begins)}); ` +
          "put the markers back around the generated keys, begin marker first, or delete both marker lines and the generated keys, then run `make sync` again",
  };
}
