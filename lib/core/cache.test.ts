import { expect, test } from "bun:test";
import { homedir } from "node:os";
import { join } from "node:path";
import { cacheDir, cacheEnabled, jsHash, textHash } from "./cache.ts";

test("textHash is stable, tells texts apart, and says which hash made it", () => {
  expect(textHash("schema")).toBe(textHash("schema"));
  expect(textHash("schema")).not.toBe(textHash("schema "));
  expect(textHash("schema")).toMatch(/^b[0-9a-f]{16}$/); // under Bun: Bun.hash
});

test("the JavaScript hash (Deno) is stable and tells texts apart", () => {
  expect(jsHash("schema")).toBe(jsHash("schema"));
  expect(jsHash("schema")).toMatch(/^[0-9a-f]{14}$/);
  const seen = new Set(Array.from({ length: 2000 }, (_, i) => jsHash(`v${i}`)));
  expect(seen.size).toBe(2000);
});

test("the cache directory and switch follow the environment", () => {
  const saved = { ...process.env };
  try {
    process.env.ANKLUME_CACHE_DIR = "/x/cache";
    expect(cacheDir()).toBe("/x/cache");
    delete process.env.ANKLUME_CACHE_DIR;
    process.env.XDG_CACHE_HOME = "/x/xdg";
    expect(cacheDir()).toBe("/x/xdg/anklume");
    delete process.env.XDG_CACHE_HOME;
    expect(cacheDir()).toBe(join(homedir(), ".cache", "anklume"));
    process.env.ANKLUME_NO_CACHE = "1";
    expect(cacheEnabled()).toBe(false);
  } finally {
    for (const k of ["ANKLUME_CACHE_DIR", "XDG_CACHE_HOME", "ANKLUME_NO_CACHE"]) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }
});
