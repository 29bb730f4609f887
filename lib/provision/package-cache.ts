/**
 * The host package cache (`global.package_cache`): instances have no route
 * to a mirror, so apt goes through apt-cacher-ng on the host, reached at the
 * gateway of the instance's own bridge. bootstrap.sh --dev installs and
 * starts it; the provisioning play (roles/package_cache) points apt at it;
 * the isolation ruleset opens this one port of the host to the domains.
 *
 * Values: `auto` (the default: the host cache when bootstrap.sh set it up),
 * `true` (the host cache, required), `false` (no proxy: instances reach
 * their mirror themselves), or the URL of the user's own apt proxy.
 */

/** apt-cacher-ng's port, on every bridge gateway. Also in roles/package_cache/defaults/main.yml. */
export const PACKAGE_CACHE_PORT = 3142;

/** A proxy URL the user may give instead of the host cache. */
export const PACKAGE_CACHE_URL_RE = /^https?:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?\/?$/;

/** Is `value` a valid setting (absent and null mean `auto`)? */
export function isPackageCacheSetting(value: unknown): boolean {
  if (value === undefined || value === null || typeof value === "boolean" || value === "auto") {
    return true;
  }
  return typeof value === "string" && PACKAGE_CACHE_URL_RE.test(value);
}

/** The host ports the domains need for this setting: the cache's, unless off or elsewhere. */
export function hostCachePorts(value: unknown): number[] {
  return value === undefined || value === null || value === true || value === "auto"
    ? [PACKAGE_CACHE_PORT]
    : [];
}
