import { expect, test } from "bun:test";
import { hostCachePorts, isPackageCacheSetting, PACKAGE_CACHE_PORT } from "./package-cache.ts";

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

test("the host port is opened for the host cache only (auto, true, absent), not for false or a URL", () => {
  for (const v of [undefined, null, true, "auto"])
    expect(hostCachePorts(v)).toEqual([PACKAGE_CACHE_PORT]);
  for (const v of [false, "http://10.0.0.5:3142"]) expect(hostCachePorts(v)).toEqual([]);
  expect(PACKAGE_CACHE_PORT).toBe(3142);
});
