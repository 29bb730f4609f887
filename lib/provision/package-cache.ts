/**
 * The host package caches (`global.package_cache`): instances have no route
 * to a mirror or a registry, so apt goes through apt-cacher-ng, pip through
 * a PyPI caching proxy (proxpi) and npm through an npm caching registry
 * (verdaccio), all three on the host, reached at the gateway of the
 * instance's own bridge. bootstrap.sh --dev installs and starts them; the
 * provisioning play (roles/package_cache) points apt, pip and npm at them;
 * the isolation ruleset opens these ports of the host to the domains.
 *
 * Values: `auto` (the default: the host caches when bootstrap.sh set them
 * up), `true` (the host caches, required), `false` (no proxy: instances
 * reach their mirror themselves), or the URL of the user's own apt proxy
 * (pip and npm then use the role's package_cache_pypi_url and
 * package_cache_npm_url, or their own defaults).
 */

/** apt-cacher-ng's port, on every bridge gateway. Also in roles/package_cache/defaults/main.yml. */
export const PACKAGE_CACHE_PORT = 3142;

/** The PyPI cache's port (proxpi, index at `/index/`). Also in roles/package_cache/defaults/main.yml and bootstrap.sh. */
export const PYPI_CACHE_PORT = 3141;

/** The npm cache's port (verdaccio). Also in roles/package_cache/defaults/main.yml and bootstrap.sh. */
export const NPM_CACHE_PORT = 4873;

/** Every host cache port: apt, PyPI, npm. */
export const HOST_CACHE_PORTS = [PACKAGE_CACHE_PORT, PYPI_CACHE_PORT, NPM_CACHE_PORT];

/** A proxy URL the user may give instead of the host cache. */
export const PACKAGE_CACHE_URL_RE = /^https?:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?\/?$/;

/** Is `value` a valid setting (absent and null mean `auto`)? */
export function isPackageCacheSetting(value: unknown): boolean {
  if (value === undefined || value === null || typeof value === "boolean" || value === "auto") {
    return true;
  }
  return typeof value === "string" && PACKAGE_CACHE_URL_RE.test(value);
}

/** The host ports the domains need for this setting: the caches', unless off or elsewhere. */
export function hostCachePorts(value: unknown): number[] {
  return value === undefined || value === null || value === true || value === "auto"
    ? [...HOST_CACHE_PORTS]
    : [];
}
