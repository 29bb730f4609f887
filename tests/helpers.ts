/**
 * Shared test helpers. Integration tests call `incusOrSkip()` at load time:
 * under CI=true a missing daemon fails the run; locally the tests skip with
 * a message saying how to start one.
 */
import { afterAll, test } from "bun:test";
import process from "node:process";
import { $ } from "zx";
import { incusAvailable } from "../lib/incus/client.ts";

let cached: boolean | undefined;

/**
 * True when the CI variable is set to anything but "", "0" or "false"
 * (case-insensitive): CI=1 and CI=yes must not turn integration suites into skips.
 */
export function isCI(env: Record<string, string | undefined> = process.env): boolean {
  const v = (env.CI ?? "").trim().toLowerCase();
  return v !== "" && v !== "0" && v !== "false";
}

/** True when a real Incus daemon answers; throws under CI=true when none does. */
export async function incusOrSkip(suite: string): Promise<boolean> {
  cached ??= await incusAvailable();
  if (cached) return true;
  if (isCI()) {
    throw new Error(`${suite}: no Incus daemon answers, and CI=true requires one (see .ci/run)`);
  }
  console.warn(`skipping ${suite}: no Incus daemon. Start one with: make dev-incus`);
  return false;
}

let netns: boolean | undefined;

/**
 * True when this process can create network namespaces (root); throws under
 * CI=true when it cannot, locally warns how to run the suite and returns false.
 */
export async function netnsOrSkip(suite: string): Promise<boolean> {
  if (netns === undefined) {
    const probe = `anp-${uniq()}`;
    const q = $({ quiet: true, nothrow: true });
    netns = (await q`ip netns add ${probe}`).exitCode === 0;
    if (netns) await q`ip netns delete ${probe}`;
  }
  if (netns) return true;
  if (isCI()) {
    throw new Error(
      `${suite}: cannot create network namespaces, and CI=true requires it (run as root)`,
    );
  }
  console.warn(
    `skipping ${suite}: creating network namespaces needs root. Run it with: sudo bun test ${suite}`,
  );
  return false;
}

/** A short random suffix so names never collide with a leftover from an earlier run. */
export function uniq(): string {
  return Math.random().toString(36).slice(2, 7);
}

/**
 * The image test containers use: $ANKLUME_TEST_IMAGE, else anklume-busybox,
 * which bootstrap.sh builds (no image server is reachable here).
 */
export function testImage(): string {
  return process.env.ANKLUME_TEST_IMAGE ?? "anklume-busybox";
}

function setEnv(vars: Record<string, string | undefined>): void {
  for (const [k, v] of Object.entries(vars)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
}

/**
 * Set environment variables for the test file that calls this at its top
 * level; afterAll puts the previous values back. Bun runs every test file in
 * one process: a variable left set leaks into every later file and into every
 * child process they spawn.
 */
export function fileEnv(vars: Record<string, string | undefined>): void {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  setEnv(vars);
  afterAll(() => setEnv(saved));
}

/** True when this run filters tests by name (`bun test -t ...`). */
const FILTERED = process.argv.some(
  (a) => a === "-t" || a.startsWith("--test-name-pattern") || a.startsWith("-t="),
);

/**
 * The steps of a declared scenario (test audit 5.6): tests that run in order,
 * each on the state the step before left. After a failed step, the later ones
 * do not run their bodies: each fails at once naming the step that broke the
 * chain, so one failure reads as one. A step whose earlier steps were filtered
 * out (`-t`) first replays them, so any step also runs alone; under `-t` a
 * step's timeout covers the steps it may replay.
 */
export function scenario(
  defaultTimeout = 600_000,
): (title: string, fn: () => Promise<void> | void, timeout?: number) => void {
  const steps: { title: string; fn: () => Promise<void> | void }[] = [];
  let done = 0;
  let broken: string | undefined;
  let cumulative = 0;
  return (title, fn, timeout) => {
    const index = steps.push({ title, fn }) - 1;
    cumulative += timeout ?? defaultTimeout;
    test(
      title,
      async () => {
        if (broken !== undefined) {
          throw new Error(`not run: the earlier step "${broken}" of this scenario failed`);
        }
        for (; done < index; done++) {
          const step = steps[done] as (typeof steps)[number];
          try {
            await step.fn();
          } catch (e) {
            broken = step.title;
            throw new Error(
              `the earlier step "${step.title}", replayed because -t left it out, failed: ${(e as Error).message}`,
            );
          }
        }
        try {
          await fn();
        } catch (e) {
          broken = title;
          throw e;
        }
        done = index + 1;
      },
      FILTERED ? cumulative : (timeout ?? defaultTimeout),
    );
  };
}
