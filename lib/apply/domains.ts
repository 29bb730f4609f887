/**
 * An apply that creates bridges goes on domain by domain: the daemon creates
 * bridges one after the other (about 0.6 s each, mostly waiting: 0.2 s of
 * CPU), so the domains whose project and bridge exist get their profiles,
 * images and instances while the others' bridges are still being made
 * (docs/apply.md, the first apply). This module holds the pure part: each
 * project's share of a kind's desired state, and what that share waits for.
 * `reconcile()` in live.ts runs it.
 */
import * as v from "valibot";
import { InstancesDesiredSchema } from "./instances.ts";
import { FirewallDesiredSchema, ImagesDesiredSchema, ProfilesDesiredSchema } from "./kinds.ts";

/** The kinds that run per project once its project and bridges exist, in their stage order. */
export const DOMAIN_KINDS = ["profiles", "images", "firewall", "instances"] as const;
export type DomainKind = (typeof DOMAIN_KINDS)[number];

/**
 * One project's share of a kind's desired state (already valid: the first
 * plan parsed it), or null when the project has nothing of that kind. The
 * instances' share keeps the inventory's `declared` list (orphans are told
 * by it) and drops `orphan_domains` (removed domains are planned once, after
 * every project).
 */
export function sliceDesired(kind: DomainKind, raw: unknown, project: string): unknown {
  switch (kind) {
    case "profiles": {
      const want = v.parse(ProfilesDesiredSchema, raw);
      const domains = want.domains.filter((d) => d.project === project);
      return domains.length > 0 ? { ...want, domains } : null;
    }
    case "images": {
      const want = v.parse(ImagesDesiredSchema, raw);
      const images = want.images.filter((i) => i.project === project);
      return images.length > 0 ? { ...want, images } : null;
    }
    case "firewall": {
      if (raw === null || raw === undefined) return null;
      const want = v.parse(FirewallDesiredSchema, raw);
      return want.project === project ? want : null;
    }
    case "instances": {
      const want = v.parse(InstancesDesiredSchema, raw);
      const instances = want.instances.filter((i) => i.project === project);
      const projects = (want.projects ?? []).filter((p) => p === project);
      if (instances.length === 0 && projects.length === 0) return null;
      return { ...want, instances, projects, orphan_domains: null };
    }
  }
}

/** Every project a per-project kind names, in the order first seen. */
export function domainProjects(desired: Partial<Record<DomainKind, unknown>>): string[] {
  const out = new Set<string>();
  if (desired.profiles)
    for (const d of v.parse(ProfilesDesiredSchema, desired.profiles).domains) out.add(d.project);
  if (desired.images)
    for (const i of v.parse(ImagesDesiredSchema, desired.images).images) out.add(i.project);
  if (desired.firewall) out.add(v.parse(FirewallDesiredSchema, desired.firewall).project);
  if (desired.instances) {
    const want = v.parse(InstancesDesiredSchema, desired.instances);
    for (const i of want.instances) out.add(i.project);
    for (const p of want.projects ?? []) out.add(p);
  }
  return [...out];
}

/**
 * The bridges of `bridges` that a share names anywhere (a default profile's
 * eth0, an instance's bridge, a device's `network` or `parent`, the
 * firewall's NICs): a string equal to a bridge's name is a dependency, which
 * can only make a share wait longer than it must, never start too early.
 */
export function bridgesNamed(value: unknown, bridges: ReadonlySet<string>): string[] {
  const found = new Set<string>();
  const walk = (x: unknown): void => {
    if (typeof x === "string") {
      if (bridges.has(x)) found.add(x);
    } else if (Array.isArray(x)) {
      for (const y of x) walk(y);
    } else if (x !== null && typeof x === "object") {
      for (const y of Object.values(x)) walk(y);
    }
  };
  walk(value);
  return [...found].sort();
}
