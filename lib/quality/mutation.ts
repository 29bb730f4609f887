/**
 * Mutation testing of the pure core: which modules, which tests kill their
 * mutants, the Stryker configuration for one module, and the score read back
 * from Stryker's JSON report (mutation-testing-report-schema).
 */

/** One module under mutation: its source and the tests beside it. */
export interface MutationModule {
  name: string;
  file: string;
  tests: string[];
}

/** The pure modules `make mutation` mutates, smallest first. */
export const MUTATION_MODULES: MutationModule[] = [
  { name: "cidr", file: "lib/core/cidr.ts", tests: ["lib/core/cidr.test.ts"] },
  { name: "naming", file: "lib/snapshots/naming.ts", tests: ["lib/snapshots/naming.test.ts"] },
  { name: "managed", file: "lib/sync/managed.ts", tests: ["lib/sync/managed.test.ts"] },
  { name: "render", file: "lib/sync/render.ts", tests: ["lib/sync/render.test.ts"] },
  { name: "orphans", file: "lib/sync/orphans.ts", tests: ["lib/sync/orphans.test.ts"] },
  { name: "reconcile", file: "lib/apply/reconcile.ts", tests: ["lib/apply/reconcile.test.ts"] },
  { name: "instances", file: "lib/apply/instances.ts", tests: ["lib/apply/instances.test.ts"] },
  { name: "ruleset", file: "lib/nftables/ruleset.ts", tests: ["lib/nftables/ruleset.test.ts"] },
  { name: "kinds", file: "lib/apply/kinds.ts", tests: ["lib/apply/kinds.test.ts"] },
  // Most validation rules are tested through the generator, in-process (114 cases, 3 s).
  {
    name: "validate",
    file: "lib/sync/validate.ts",
    tests: ["lib/sync/validate.test.ts", "tests/validation.test.ts"],
  },
];

/** The modules named in a comma-separated list (all when empty); unknown names throw. */
export function selectModules(list: string | undefined): MutationModule[] {
  const names = (list ?? "")
    .split(/[,\s]+/)
    .map((n) => n.trim())
    .filter((n) => n !== "");
  if (names.length === 0) return MUTATION_MODULES;
  return names.map((n) => {
    const m = MUTATION_MODULES.find((x) => x.name === n);
    if (!m) {
      const known = MUTATION_MODULES.map((x) => x.name).join(", ");
      throw new Error(`Cannot mutate module "${n}": unknown; pick from ${known}`);
    }
    return m;
  });
}

/**
 * Stryker's configuration for one module, its reports under `dir`, its
 * sandboxes in `tempDir` (outside the project: Biome and tsc would read a
 * sandbox inside it as a second copy of the project).
 */
export function strykerConfig(
  m: MutationModule,
  dir: string,
  tempDir: string,
): Record<string, unknown> {
  return {
    mutate: [m.file],
    testRunner: "command",
    // --bail: a killed mutant stops at its first failing test.
    commandRunner: { command: `bun test --bail ${m.tests.join(" ")}` },
    coverageAnalysis: "off",
    concurrency: 1,
    incremental: true,
    incrementalFile: `${dir}/${m.name}.incremental.json`,
    reporters: ["json", "clear-text"],
    jsonReporter: { fileName: `${dir}/${m.name}.json` },
    clearTextReporter: { reportTests: false, reportMutants: true, reportScoreTable: true },
    tempDirName: tempDir,
    cleanTempDir: true,
    timeoutMS: 10000,
  };
}

/** The counts and score of one module. */
export interface MutationScore {
  mutants: number;
  killed: number;
  timeout: number;
  survived: number;
  noCoverage: number;
  errors: number;
  /** (killed + timeout) / (killed + timeout + survived + noCoverage), in percent. */
  score: number;
}

interface Report {
  files?: Record<string, { mutants?: { status?: string }[] }>;
}

/** The score of the mutants of `file` in Stryker's JSON report. */
export function scoreOf(report: Report, file: string): MutationScore {
  const entry = Object.entries(report.files ?? {}).find(
    ([path]) => path === file || path.endsWith(`/${file}`),
  );
  const s = { mutants: 0, killed: 0, timeout: 0, survived: 0, noCoverage: 0, errors: 0, score: 0 };
  for (const m of entry?.[1].mutants ?? []) {
    s.mutants++;
    if (m.status === "Killed") s.killed++;
    else if (m.status === "Timeout") s.timeout++;
    else if (m.status === "Survived") s.survived++;
    else if (m.status === "NoCoverage") s.noCoverage++;
    else s.errors++;
  }
  const valid = s.killed + s.timeout + s.survived + s.noCoverage;
  s.score = valid === 0 ? 0 : Math.round(((s.killed + s.timeout) / valid) * 1000) / 10;
  return s;
}

/** One table: module, mutants, killed, survived, score, minutes. */
export function formatScores(
  rows: { name: string; score: MutationScore; minutes?: number }[],
): string {
  const head = [
    "module",
    "mutants",
    "killed",
    "timeout",
    "survived",
    "no cover",
    "errors",
    "score",
    "minutes",
  ];
  const lines = rows.map(({ name, score: s, minutes }) => [
    name,
    String(s.mutants),
    String(s.killed),
    String(s.timeout),
    String(s.survived),
    String(s.noCoverage),
    String(s.errors),
    `${s.score.toFixed(1)}%`,
    minutes === undefined ? "-" : minutes.toFixed(1),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? "").length)));
  const fmt = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join("  ");
  return `${[fmt(head), ...lines.map(fmt)].join("\n")}\n`;
}
