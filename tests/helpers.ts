/**
 * Shared test helpers. Integration tests call `incusOrSkip()` at load time:
 * under CI=true a missing daemon fails the run; locally the tests skip with
 * a message saying how to start one.
 */
import process from "node:process";
import { incusAvailable } from "../lib/incus/client.ts";

let cached: boolean | undefined;

/** True when a real Incus daemon answers; throws under CI=true when none does. */
export async function incusOrSkip(suite: string): Promise<boolean> {
  cached ??= await incusAvailable();
  if (cached) return true;
  if (process.env.CI === "true") {
    throw new Error(`${suite}: no Incus daemon answers, and CI=true requires one (see .ci/run)`);
  }
  console.warn(`skipping ${suite}: no Incus daemon. Start one with: make dev-incus`);
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
