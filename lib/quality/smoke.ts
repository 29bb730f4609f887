/**
 * `make smoke` (SPEC-operations section 18): the five steps, which of them a
 * run selects, and the report. Every step can fail (decision 12): each is a
 * command whose exit code is checked, or, for the last, an answer of Incus
 * that must parse.
 */

/** One smoke step: its number, name and the make target it runs (none for the Incus probe). */
export interface SmokeStep {
  n: number;
  name: string;
  target: string | null;
  why: string;
}

export const STEPS: readonly SmokeStep[] = [
  {
    n: 1,
    name: "generator dry run",
    target: "sync-dry",
    why: "the generator reads the real infra.yml",
  },
  {
    n: 2,
    name: "check mode apply",
    target: "check",
    why: "ansible-playbook --check on the generated tree",
  },
  { n: 3, name: "validators", target: "lint", why: "every validator of make lint passes" },
  { n: 4, name: "snapshot listing", target: "snap-list", why: "the snapshot tooling answers" },
  { n: 5, name: "Incus reachable", target: null, why: "incus list --format json answers a list" },
];

/** Parse `--steps 1,3-5`; throws a message for anything else. */
export function parseSteps(spec: string | undefined): SmokeStep[] {
  if (spec === undefined || spec.trim() === "") return [...STEPS];
  const wanted = new Set<number>();
  for (const part of spec.split(",")) {
    const m = /^\s*(\d)\s*(?:-\s*(\d)\s*)?$/.exec(part);
    const from = Number(m?.[1]);
    const to = m?.[2] !== undefined ? Number(m[2]) : from;
    if (!m || from < 1 || to > STEPS.length || from > to) {
      throw new Error(`"${part.trim()}" is not a step: use numbers 1-${STEPS.length}, e.g. 1,3-5`);
    }
    for (let i = from; i <= to; i++) wanted.add(i);
  }
  return STEPS.filter((s) => wanted.has(s.n));
}

/** The outcome of one step. */
export interface StepResult {
  step: SmokeStep;
  ok: boolean;
  detail: string;
}

/** The header printed before a step runs. */
export function stepHeader(s: SmokeStep): string {
  const what = s.target === null ? "incus list --format json" : `make ${s.target}`;
  return `--- Step ${s.n}/${STEPS.length}: ${s.name} (${what}) ---`;
}

/** The summary line, and whether the run passed (at least one step, none failed). */
export function smokeSummary(results: StepResult[]): { line: string; ok: boolean } {
  const failed = results.filter((r) => !r.ok);
  const passed = results.length - failed.length;
  const names = failed.map((r) => `${r.step.n} ${r.step.name}`).join(", ");
  return {
    line: `Smoke: ${passed} passed, ${failed.length} failed${failed.length ? ` (${names})` : ""}`,
    ok: results.length > 0 && failed.length === 0,
  };
}

/** The last `n` non-empty lines of a command's output, indented, to show why a step failed. */
export function tail(output: string, n = 15): string {
  const lines = output.split("\n").filter((l) => l.trim() !== "");
  return lines
    .slice(-n)
    .map((l) => `    ${l}`)
    .join("\n");
}
