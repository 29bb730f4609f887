/**
 * Pure planners for the domain-level kinds of `make apply`: projects, bridges,
 * profiles (default + custom), images, the firewall VM's multi-NIC profile and
 * the orphan projects/bridges of removed domains. Each takes the desired slice
 * (validated here) and the parsed current state and returns a Plan: their
 * steps go to `before` (run in order), orphan deletions to `after`.
 */
import * as v from "valibot";
import type {
  IncusImage,
  IncusInstance,
  IncusNetwork,
  IncusProfile,
  IncusProject,
} from "../incus/objects.ts";
import {
  type Config,
  type Devices,
  deviceArgs,
  dhcpRange,
  diffConfig,
  diffDevices,
  emptyPlan,
  INFRA_KEY,
  kv,
  MANAGED_DEVICES,
  type Plan,
  splitImageRef,
  splitMarker,
  toConfig,
} from "./reconcile.ts";

const Scalar = v.union([v.string(), v.number(), v.boolean()]);

// ---------------------------------------------------------------- projects

export const ProjectsDesiredSchema = v.looseObject({
  infra: v.string(),
  projects: v.array(v.object({ name: v.string(), description: v.nullish(v.string(), "") })),
  features: v.nullish(v.record(v.string(), Scalar), {}),
});
export type ProjectsDesired = v.InferOutput<typeof ProjectsDesiredSchema>;

/** The fields of an Incus project the planners read. */
export type CurrentProject = Pick<IncusProject, "name" | "description" | "config">;

/** v1's project features: own images, profiles and volumes; networks shared. */
export const DEFAULT_FEATURES: Config = {
  "features.images": "true",
  "features.profiles": "true",
  "features.storage.volumes": "true",
  "features.networks": "false",
};

/** Create missing projects with their features and marker; fix marker and description drift. */
export function planProjects(want: ProjectsDesired, current: CurrentProject[]): Plan {
  const plan = emptyPlan();
  const features = { ...DEFAULT_FEATURES, ...toConfig(want.features) };
  const byName = new Map(current.map((p) => [p.name, p]));
  for (const p of want.projects) {
    const cur = byName.get(p.name);
    const desc = p.description ?? "";
    if (!cur) {
      const cfg = kv({ ...features, [INFRA_KEY]: want.infra }).flatMap((x) => ["-c", x]);
      plan.before.push({
        desc: `project ${p.name}: create`,
        args: ["project", "create", p.name, ...cfg, ...(desc ? ["--description", desc] : [])],
      });
      plan.changes.push(`project ${p.name}: create`);
      continue;
    }
    const owner = cur.config[INFRA_KEY];
    if (owner && owner !== want.infra) {
      plan.warnings.push(
        `project ${p.name}: belongs to infra "${owner}", not "${want.infra}"; left unmarked (rename a domain or the project_name to avoid sharing it)`,
      );
    } else if (owner !== want.infra) {
      plan.before.push({
        desc: `project ${p.name}: mark`,
        args: ["project", "set", p.name, `${INFRA_KEY}=${want.infra}`],
      });
      plan.changes.push(`project ${p.name}: set ${INFRA_KEY}=${want.infra}`);
    }
    if ((cur.description ?? "") !== desc) {
      plan.before.push({
        desc: `project ${p.name}: description`,
        args: ["project", "set", p.name, "description", desc, "--property"],
      });
      plan.changes.push(`project ${p.name}: description "${cur.description ?? ""}" -> "${desc}"`);
    }
    for (const [k, val] of Object.entries(features)) {
      if ((cur.config[k] ?? "false") !== val) {
        plan.warnings.push(
          `project ${p.name}: ${k} is ${cur.config[k] ?? "unset"}, anklume wants ${val}; Incus only changes features on an empty project`,
        );
      }
    }
  }
  return plan;
}

// ---------------------------------------------------------------- networks

export const NetworksDesiredSchema = v.looseObject({
  infra: v.string(),
  nat: v.nullish(v.boolean(), true),
  networks: v.array(v.object({ name: v.string(), gateway: v.string() })),
});
export type NetworksDesired = v.InferOutput<typeof NetworksDesiredSchema>;

/** The fields of an Incus network the planners read. */
export type CurrentNetwork = Pick<IncusNetwork, "name" | "config">;

/** The bridge config anklume sets (SPEC: /24, gateway .254, DHCP .100-.249, IPv6 off). */
export function bridgeConfig(gateway: string, nat: boolean, infra: string): Config {
  return {
    "ipv4.address": `${gateway}/24`,
    "ipv4.nat": nat ? "true" : "false",
    "ipv4.firewall": "true",
    "ipv4.dhcp.ranges": dhcpRange(gateway),
    "ipv6.address": "none",
    [INFRA_KEY]: infra,
  };
}

/** Create missing bridges; set every differing key in one call. */
/**
 * Bridges to create or fix. On a cluster (`members`, the cluster's member
 * names; empty outside one) a new bridge is first defined on each member
 * (`incus network create <name> --target <member>`, pending), then created
 * with its config, as Incus requires.
 */
export function planNetworks(
  want: NetworksDesired,
  current: CurrentNetwork[],
  members: string[] = [],
): Plan {
  const plan = emptyPlan();
  const byName = new Map(current.map((n) => [n.name, n]));
  for (const n of want.networks) {
    const cfg = bridgeConfig(n.gateway, want.nat ?? true, want.infra);
    const cur = byName.get(n.name);
    if (!cur) {
      for (const m of members) {
        plan.before.push({
          desc: `bridge ${n.name}: define on member ${m}`,
          args: ["network", "create", n.name, "--target", m],
        });
      }
      plan.before.push({
        desc: `bridge ${n.name}: create`,
        args: ["network", "create", n.name, ...kv(cfg)],
      });
      plan.changes.push(
        `bridge ${n.name}: create (${cfg["ipv4.address"]}, nat ${cfg["ipv4.nat"]})`,
      );
      continue;
    }
    const diff: Config = {};
    const owner = cur.config[INFRA_KEY];
    if (owner && owner !== want.infra) {
      plan.warnings.push(
        `bridge ${n.name}: belongs to infra "${owner}", not "${want.infra}"; its marker is left alone`,
      );
      delete cfg[INFRA_KEY];
    }
    for (const [k, val] of Object.entries(cfg)) {
      if (cur.config[k] !== val) {
        diff[k] = val;
        plan.changes.push(`bridge ${n.name}: set ${k}=${val} (was ${cur.config[k] ?? "unset"})`);
      }
    }
    if (Object.keys(diff).length > 0) {
      plan.before.push({
        desc: `bridge ${n.name}: fix drift`,
        args: ["network", "set", n.name, ...kv(diff)],
      });
    }
  }
  return plan;
}

// ---------------------------------------------------------------- profiles

const DeviceMap = v.nullish(
  v.record(v.string(), v.nullish(v.record(v.string(), v.nullish(Scalar)))),
  {},
);
export const ProfilesDesiredSchema = v.looseObject({
  infra: v.string(),
  pool: v.nullish(v.string(), "default"),
  nic_filtering: v.nullish(v.boolean(), true),
  /** Profiles never reported as orphans (the firewall VM's, built by its own role). */
  keep: v.nullish(v.array(v.string()), []),
  domains: v.array(
    v.object({
      project: v.string(),
      bridge: v.string(),
      profiles: v.nullish(
        v.record(
          v.string(),
          v.nullish(
            v.looseObject({
              description: v.nullish(v.string()),
              config: v.nullish(v.record(v.string(), v.nullish(Scalar)), {}),
              devices: DeviceMap,
            }),
          ),
        ),
        {},
      ),
    }),
  ),
});
export type ProfilesDesired = v.InferOutput<typeof ProfilesDesiredSchema>;

/** The fields of an Incus profile the planners read. */
export type CurrentProfile = Pick<
  IncusProfile,
  "name" | "project" | "description" | "config" | "devices" | "used_by"
>;

/** The default profile's eth0 (on the domain bridge, NIC filtering on) and root disk. */
export function defaultProfileDevices(bridge: string, pool: string, filtering: boolean): Devices {
  const eth0: Record<string, string> = { type: "nic", network: bridge, name: "eth0" };
  if (filtering) {
    eth0["security.mac_filtering"] = "true";
    eth0["security.ipv4_filtering"] = "true";
    eth0["security.ipv6_filtering"] = "true";
  }
  return { eth0, root: { type: "disk", pool, path: "/" } };
}

/** Default profile devices, custom profiles (config with managed keys, devices), orphan profiles. */
export function planProfiles(
  want: ProfilesDesired,
  current: CurrentProfile[],
  autoCleanup: boolean,
): Plan {
  const plan = emptyPlan();
  const key = (proj: string, name: string) => `${proj}/${name}`;
  const byKey = new Map(current.map((p) => [key(p.project ?? "default", p.name), p]));
  for (const dom of want.domains) {
    const p = ["--project", dom.project];
    const defCur = byKey.get(key(dom.project, "default"));
    const defWant = defaultProfileDevices(
      dom.bridge,
      want.pool ?? "default",
      want.nic_filtering ?? true,
    );
    // A project about to be created has a default profile with no devices.
    const dd = diffDevices(defWant, defCur?.devices ?? {}, []);
    for (const args of deviceArgs(dd.ops, {
      verb: "profile",
      name: "default",
      project: dom.project,
    })) {
      plan.before.push({ desc: `${dom.project}/default: ${args[2]} ${args[4]}`, args });
    }
    for (const c of dd.changes) plan.changes.push(`${dom.project}/default: ${c}`);

    const declared = dom.profiles ?? {};
    for (const [name, spec] of Object.entries(declared)) {
      const cur = byKey.get(key(dom.project, name));
      const cfg = { ...toConfig(spec?.config ?? {}), [INFRA_KEY]: want.infra };
      const devs: Devices = {};
      for (const [d, dev] of Object.entries(spec?.devices ?? {})) devs[d] = toConfig(dev ?? {});
      const desc = spec?.description ?? "";
      const where = `${dom.project}/${name}`;
      if (!cur) {
        plan.before.push({
          desc: `${where}: create`,
          args: ["profile", "create", name, ...p, ...(desc ? ["--description", desc] : [])],
        });
        plan.changes.push(`${where}: create profile`);
      }
      const cd = diffConfig(cfg, cur?.config ?? {});
      const managedDevs = Object.keys(devs).sort().join(",");
      const setMap = { ...cd.set };
      if ((cur?.config[MANAGED_DEVICES] ?? "") !== managedDevs)
        setMap[MANAGED_DEVICES] = managedDevs;
      if (Object.keys(setMap).length > 0) {
        plan.before.push({
          desc: `${where}: set config`,
          args: ["profile", "set", name, ...kv(setMap), ...p],
        });
      }
      if (cur) for (const c of cd.changes) plan.changes.push(`${where}: ${c}`);
      const pd = diffDevices(devs, cur?.devices ?? {}, splitMarker(cur?.config[MANAGED_DEVICES]));
      for (const args of deviceArgs(pd.ops, { verb: "profile", name, project: dom.project })) {
        plan.before.push({ desc: `${where}: ${args[2]} ${args[4]}`, args });
      }
      if (cur) for (const c of pd.changes) plan.changes.push(`${where}: ${c}`);
      if (cur && (cur.description ?? "") !== desc) {
        plan.before.push({
          desc: `${where}: description`,
          args: ["profile", "set", name, "description", desc, "--property", ...p],
        });
        plan.changes.push(`${where}: description -> "${desc}"`);
      }
    }
    // Orphan profiles: created by this infra (marker), no longer declared.
    for (const cur of current) {
      if (cur.project !== dom.project || cur.name === "default" || cur.name in declared) continue;
      if (cur.config[INFRA_KEY] !== want.infra || (want.keep ?? []).includes(cur.name)) continue;
      const inUse = (cur.used_by ?? []).length > 0;
      const del = autoCleanup && !inUse;
      plan.orphans.push({
        kind: "profile",
        name: cur.name,
        project: dom.project,
        protected: false,
        action: del ? "deleted" : autoCleanup ? "kept (in use)" : "reported",
      });
      if (del) {
        plan.after.push({
          desc: `${dom.project}/${cur.name}: delete orphan profile`,
          args: ["profile", "delete", cur.name, ...p],
        });
        plan.changes.push(`${dom.project}/${cur.name}: delete orphan profile (auto_cleanup)`);
      }
    }
  }
  return plan;
}

// ---------------------------------------------------------------- images

export const ImagesDesiredSchema = v.looseObject({
  images: v.array(v.object({ project: v.string(), ref: v.string() })),
  source_project: v.nullish(v.string(), "default"),
});
export type ImagesDesired = v.InferOutput<typeof ImagesDesiredSchema>;

/** The fields of an Incus image the planners read. */
export type CurrentImage = Pick<IncusImage, "fingerprint" | "project" | "aliases">;

/** Find the fingerprint behind an alias in one project. */
export function aliasFingerprint(
  images: CurrentImage[],
  project: string,
  alias: string,
): string | undefined {
  return images.find((i) => i.project === project && i.aliases.some((a) => a.name === alias))
    ?.fingerprint;
}

/**
 * Make every image an instance needs available in its project: a local alias
 * of the source project is copied in (`--mode relay`, re-copied when the
 * source was rebuilt); a remote ref is downloaded into the project's cache.
 * A local alias found nowhere is a warning: the instances kind then fails
 * the machines that use it, and only them. `daemon` is the remote the copies
 * go to (the CLI's current remote: `local`, or INCUS_REMOTE).
 */
export function planImages(want: ImagesDesired, current: CurrentImage[], daemon: string): Plan {
  const plan = emptyPlan();
  const src = want.source_project ?? "default";
  const seen = new Set<string>();
  for (const { project, ref } of want.images) {
    if (seen.has(`${project}|${ref}`)) continue;
    seen.add(`${project}|${ref}`);
    const { remote, alias } = splitImageRef(ref);
    const have = aliasFingerprint(current, project, alias);
    if (remote) {
      if (!have) {
        plan.before.push({
          desc: `${project}: download ${ref}`,
          args: [
            "image",
            "copy",
            ref,
            `${daemon}:`,
            "--target-project",
            project,
            "--alias",
            alias,
            "--auto-update",
          ],
        });
        plan.changes.push(`${project}: download image ${ref}`);
      }
      continue;
    }
    const source = aliasFingerprint(current, src, alias);
    if (!source) {
      if (have) continue; // the project has its own copy; nothing to compare with
      // Not fatal here: the machines that need it fail at their creation, the others converge.
      plan.warnings.push(
        `Cannot find image "${alias}" in project "${src}" nor in "${project}": the machines of ${project} that use it cannot be created; build it (bootstrap.sh --dev builds anklume-busybox and anklume-debian12) or set OS_IMAGE=<a local alias> (make apply-infra OS_IMAGE=anklume-busybox)`,
      );
      continue;
    }
    if (project === src || have === source) continue;
    if (have) {
      plan.before.push({
        desc: `${project}: drop stale alias ${alias}`,
        args: ["image", "alias", "delete", alias, "--project", project],
      });
    }
    plan.before.push({
      desc: `${project}: copy ${alias} from ${src}`,
      args: [
        "image",
        "copy",
        alias,
        `${daemon}:`,
        "--project",
        src,
        "--target-project",
        project,
        "--alias",
        alias,
        "--mode",
        "relay",
      ],
    });
    plan.changes.push(
      `${project}: ${have ? "refresh" : "copy"} image ${alias} from project ${src}`,
    );
  }
  return plan;
}

// ---------------------------------------------------------------- firewall VM

export const FirewallDesiredSchema = v.looseObject({
  infra: v.string(),
  project: v.string(),
  profile: v.nullish(v.string(), "firewall-multi-nic"),
  bridges: v.array(v.string()),
});
export type FirewallDesired = v.InferOutput<typeof FirewallDesiredSchema>;

/** The multi-NIC profile's devices: eth<i> on bridge i (admin bridge first, as given). */
export function firewallNics(bridges: string[]): Devices {
  const out: Devices = {};
  bridges.forEach((b, i) => {
    out[`eth${i}`] = { type: "nic", network: b, name: `eth${i}` };
  });
  return out;
}

/** The firewall_router_interfaces list that matches firewallNics. */
export function firewallInterfaces(bridges: string[]): { name: string; bridge: string }[] {
  return bridges.map((b, i) => ({ name: `eth${i}`, bridge: b }));
}

/** Build the multi-NIC profile with exactly one NIC per bridge (vanished bridges' NICs removed). */
export function planFirewall(
  want: FirewallDesired,
  current: Pick<IncusProfile, "name" | "project" | "config" | "devices">[],
): Plan {
  const name = want.profile ?? "firewall-multi-nic";
  const plan = emptyPlan();
  const devices = firewallNics(want.bridges);
  const cur = current.find((p) => p.project === want.project && p.name === name);
  const p = ["--project", want.project];
  const where = `${want.project}/${name}`;
  if (!cur) {
    plan.before.push({ desc: `${where}: create`, args: ["profile", "create", name, ...p] });
    plan.changes.push(`${where}: create profile`);
  }
  const managed = Object.keys(devices).sort().join(",");
  const setMap: Config = {};
  if (cur?.config[INFRA_KEY] !== want.infra) setMap[INFRA_KEY] = want.infra;
  if ((cur?.config[MANAGED_DEVICES] ?? "") !== managed) setMap[MANAGED_DEVICES] = managed;
  if (Object.keys(setMap).length > 0) {
    plan.before.push({
      desc: `${where}: set config`,
      args: ["profile", "set", name, ...kv(setMap), ...p],
    });
  }
  const dd = diffDevices(devices, cur?.devices ?? {}, splitMarker(cur?.config[MANAGED_DEVICES]));
  for (const args of deviceArgs(dd.ops, { verb: "profile", name, project: want.project })) {
    plan.before.push({ desc: `${where}: ${args[2]} ${args[4]}`, args });
  }
  for (const c of dd.changes) plan.changes.push(`${where}: ${c}`);
  return plan;
}

// ---------------------------------------------------------------- orphan domains

export const DomainOrphansDesiredSchema = v.looseObject({
  infra: v.string(),
  projects: v.array(v.string()),
  networks: v.array(v.string()),
  auto_cleanup: v.nullish(v.boolean(), false),
});
export type DomainOrphansDesired = v.InferOutput<typeof DomainOrphansDesiredSchema>;

export interface OrphanInputs {
  projects: Pick<IncusProject, "name" | "config">[];
  networks: Pick<IncusNetwork, "name" | "config" | "used_by">[];
  instances: Pick<IncusInstance, "name" | "project" | "config">[];
  images: Pick<IncusImage, "fingerprint" | "project">[];
  profiles: Pick<IncusProfile, "name" | "project">[];
}

/** The project named in an Incus `used_by` URL (`...?project=p`), default when absent. */
export function usedByProject(url: string): string {
  const m = /[?&]project=([^&]+)/.exec(url);
  return m ? decodeURIComponent(m[1] as string) : "default";
}

/**
 * Projects and bridges this infra created (marker) that the inventory no
 * longer declares. With auto_cleanup, an orphan project is emptied (its
 * unprotected instances, images, profiles) and deleted unless a protected
 * instance remains; an orphan bridge is deleted once nothing else uses it.
 */
export function planDomainOrphans(want: DomainOrphansDesired, cur: OrphanInputs): Plan {
  const plan = emptyPlan();
  const clean = Boolean(want.auto_cleanup);
  const declaredP = new Set(want.projects);
  const deleted = new Set<string>();
  for (const proj of [...cur.projects].sort((a, b) => a.name.localeCompare(b.name))) {
    if (proj.config[INFRA_KEY] !== want.infra || declaredP.has(proj.name)) continue;
    const inst = cur.instances.filter((i) => i.project === proj.name);
    const prot = inst.filter((i) => i.config["security.protection.delete"] === "true");
    for (const i of inst) {
      const isProt = prot.includes(i);
      plan.orphans.push({
        kind: "instance",
        name: i.name,
        project: proj.name,
        protected: isProt,
        action: clean ? (isProt ? "kept (protected)" : "deleted") : "reported",
      });
      if (clean && !isProt) {
        plan.after.push({
          desc: `${proj.name}/${i.name}: delete orphan instance`,
          args: ["delete", i.name, "--project", proj.name, "--force"],
        });
        plan.changes.push(`${proj.name}/${i.name}: delete orphan instance (auto_cleanup)`);
      }
    }
    const canDelete = clean && prot.length === 0;
    plan.orphans.push({
      kind: "project",
      name: proj.name,
      protected: prot.length > 0,
      action: canDelete ? "deleted" : clean ? "kept (protected)" : "reported",
    });
    if (!canDelete) continue;
    for (const img of cur.images.filter((i) => i.project === proj.name)) {
      plan.after.push({
        desc: `${proj.name}: delete image`,
        args: ["image", "delete", img.fingerprint, "--project", proj.name],
      });
    }
    for (const prof of cur.profiles.filter(
      (p) => p.project === proj.name && p.name !== "default",
    )) {
      plan.after.push({
        desc: `${proj.name}: delete profile ${prof.name}`,
        args: ["profile", "delete", prof.name, "--project", proj.name],
      });
    }
    plan.after.push({
      desc: `project ${proj.name}: delete orphan`,
      args: ["project", "delete", proj.name],
    });
    plan.changes.push(`project ${proj.name}: delete orphan project (auto_cleanup)`);
    deleted.add(proj.name);
  }
  const declaredN = new Set(want.networks);
  for (const net of [...cur.networks].sort((a, b) => a.name.localeCompare(b.name))) {
    if (net.config[INFRA_KEY] !== want.infra || declaredN.has(net.name)) continue;
    const users = (net.used_by ?? []).filter((u) => !deleted.has(usedByProject(u)));
    const del = clean && users.length === 0;
    plan.orphans.push({
      kind: "network",
      name: net.name,
      protected: false,
      action: del ? "deleted" : clean ? "kept (in use)" : "reported",
    });
    if (del) {
      plan.after.push({
        desc: `bridge ${net.name}: delete orphan`,
        args: ["network", "delete", net.name],
      });
      plan.changes.push(`bridge ${net.name}: delete orphan bridge (auto_cleanup)`);
    }
  }
  return plan;
}
