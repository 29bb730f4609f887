import { expect, test } from "bun:test";
import {
  hostCachePorts,
  isPackageCacheSetting,
  NPM_CACHE_PORT,
  PACKAGE_CACHE_PORT,
  PYPI_CACHE_PORT,
} from "./package-cache.ts";

test("settings: auto, booleans and http(s) proxy URLs; nothing else", () => {
  for (const ok of [
    undefined,
    null,
    true,
    false,
    "auto",
    "http://10.0.0.5:3142",
    "https://p.lan/",
  ]) {
    expect(isPackageCacheSetting(ok)).toBe(true);
  }
  for (const bad of ["on", "ftp://x", "http://", "http://a b", "10.0.0.5:3142", 1, [], {}]) {
    expect(isPackageCacheSetting(bad)).toBe(false);
  }
});

test("the host ports (apt, PyPI, npm) are opened for the host caches only (auto, true, absent), not for false or a URL", () => {
  for (const v of [undefined, null, true, "auto"])
    expect(hostCachePorts(v)).toEqual([3142, 3141, 4873]);
  for (const v of [false, "http://10.0.0.5:3142"]) expect(hostCachePorts(v)).toEqual([]);
  expect([PACKAGE_CACHE_PORT, PYPI_CACHE_PORT, NPM_CACHE_PORT]).toEqual([3142, 3141, 4873]);
});

test("each call returns its own list (a caller sorting it never changes the next answer)", () => {
  const a = hostCachePorts("auto");
  a.sort();
  expect(hostCachePorts("auto")).toEqual([3142, 3141, 4873]);
});
