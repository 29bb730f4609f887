/**
 * Where the speed tricks keep their files (the sync stamp and compiled shape
 * of lib/sync/_fast, the parsed generated tree of lib/core/inventory.ts).
 * Everything here is only an optimisation: a missing, unreadable or stale cache costs
 * time, never a different result.
 */
import { homedir } from "node:os";
import { join } from "node:path";
import process from "node:process";

/** $ANKLUME_CACHE_DIR, else $XDG_CACHE_HOME/anklume, else ~/.cache/anklume. */
export function cacheDir(): string {
  if (process.env.ANKLUME_CACHE_DIR) return process.env.ANKLUME_CACHE_DIR;
  const xdg = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(xdg, "anklume");
}

/** False under ANKLUME_NO_CACHE=1: nothing is read from or written to the cache. */
export function cacheEnabled(): boolean {
  return process.env.ANKLUME_NO_CACHE !== "1";
}

/**
 * A hash of a text as hex, for cache keys: Bun's native hash (~0.07 ms for 17 kB),
 * else a 53-bit JavaScript hash (cyrb53, ~2 ms cold). The first letter says
 * which, so Bun and Deno keep apart keys. (node:crypto's import alone costs
 * 15-75 ms in Bun.)
 */
export function textHash(text: string): string {
  const bun = (globalThis as { Bun?: { hash?: (s: string) => number | bigint } }).Bun;
  if (bun?.hash) return `b${bun.hash(text).toString(16).padStart(16, "0")}`;
  return `j${jsHash(text)}`;
}

/** cyrb53, the hash used where Bun is absent (Deno). */
export function jsHash(text: string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16).padStart(14, "0");
}
