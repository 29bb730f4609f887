/**
 * The one mapping from the generated variables (what `make sync` wrote and
 * Ansible loaded: host_vars, group_vars) to the desired state of every kind
 * of Incus resource. The `incus_reconcile` role passes the variables through
 * untouched (a whitelisted slice of `hostvars` plus the role's knobs); every
 * default, fallback and derived value lives here, written once.
 *
 * The output of each kind is the input of its planner (the `*DesiredSchema`s
 * in kinds.ts and instances.ts).
 */
import * as v from "valibot";

/** Image of machines that name none, when infra.yml sets no `default_os_image` (v1's). */
export const DEFAULT_IMAGE = "images:debian/13";
/** v1's project features: own images, profiles and volumes; networks shared. */
export const DEFAULT_FEATURES: Record<string, boolean> = {
  "features.images": true,
  "features.profiles": true,
  "features.storage.volumes": true,
  "features.networks": false,
};
/** v1's name of the firewall VM's multi-NIC profile. */
export const FIREWALL_PROFILE = "firewall-multi-nic";
/** The provisioning role that makes a machine the firewall (firewall_mode: vm adds it). */
export const FIREWALL_ROLE = "firewall_router";

/** How many instances are created or changed side by side (incus_instances_parallel). */
export const DEFAULT_PARALLEL = 4;

/** The kinds, in the order they are reconciled (each one may need the ones before). */
export const KINDS = [
  "projects",
  "networks",
  "profiles",
  "images",
  "firewall",
  "instances",
] as const;
export type Kind = (typeof KINDS)[number];

const Scalar = v.union([v.string(), v.number(), v.boolean()]);
const Map_ = v.record(v.string(), v.unknown());
/** Ansible sends an undefined-but-declared variable as null: null means "absent" everywhere. */
const opt = <S extends v.GenericSchema>(s: S) => v.nullish(s);

/** The generated variables of one host that the mapping reads (others are ignored). */
export const HostVarsSchema = v.looseObject({
  instance_name: opt(v.string()),
  instance_type: opt(v.string()),
  instance_os_image: opt(v.string()),
  instance_profiles: opt(v.array(v.string())),
  instance_roles: opt(v.array(v.string())),
  instance_config: opt(Map_),
  instance_devices: opt(Map_),
  instance_storage_volumes: opt(Map_),
  instance_ephemeral: opt(Scalar),
  instance_ip: opt(v.string()),
  instance_boot_autostart: opt(v.boolean()),
  instance_target: opt(v.string()),
  instance_boot_priority: opt(v.number()),
  instance_snapshots_schedule: opt(v.string()),
  instance_snapshots_expiry: opt(v.string()),
  incus_project: opt(v.string()),
  incus_network: opt(v.looseObject({ name: v.string(), gateway: opt(v.string()) })),
  incus_profiles: opt(Map_),
  domain_name: opt(v.string()),
  domain_description: opt(v.string()),
  project_name: opt(v.string()),
  default_os_image: opt(v.string()),
  auto_cleanup: opt(Scalar),
});
export type HostVars = v.InferOutput<typeof HostVarsSchema>;

/**
 * A whole-number knob as Ansible sends it: a number, or a string of digits
 * (`-e incus_instances_parallel=8` arrives as "8"). Anything else is an
 * error naming the knob: a typo is never read as the default.
 */
const WHOLE = "expected a whole number";
const IntKnob = opt(
  v.union(
    [v.pipe(v.number(), v.integer(WHOLE)), v.pipe(v.string(), v.regex(/^\s*-?\d+\s*$/, WHOLE))],
    WHOLE,
  ),
);

/** The role's knobs (documented in roles/incus_reconcile/meta/argument_specs.yml), as Ansible sends them. */
export const KnobsSchema = v.looseObject({
  incus_projects_features: opt(v.record(v.string(), Scalar)),
  incus_networks_ipv4_nat: opt(Scalar),
  incus_profiles_pool: opt(v.string()),
  incus_profiles_nic_filtering: opt(Scalar),
  incus_images_default_image: opt(v.string()),
  incus_images_source_project: opt(v.string()),
  incus_images_download_timeout: IntKnob,
  incus_instances_default_pool: opt(v.string()),
  incus_instances_restart_on_device_change: opt(Scalar),
  incus_instances_write_context: opt(Scalar),
  incus_instances_parallel: IntKnob,
  incus_instances_vm_agent_retries: IntKnob,
  incus_instances_vm_agent_delay: IntKnob,
  incus_instances_vm_retries_with_download: IntKnob,
  incus_instances_vm_delay: IntKnob,
  incus_firewall_vm_profile: opt(v.string()),
  anklume_os_image_override: opt(v.string()),
});
export type Knobs = v.InferOutput<typeof KnobsSchema>;

/** What the role sends: every host's slice, the play's hosts, and the knobs. */
export const VarsInputSchema = v.looseObject({
  /** `groups['all']`: inventory name → its generated variables. */
  hosts: v.record(v.string(), HostVarsSchema),
  /** The hosts of this play (`--limit` honoured); every host when absent. */
  play_hosts: opt(v.array(v.string())),
  /** True when the play runs with `--limit`: removed domains are not looked for then. */
  limited: opt(v.boolean()),
  knobs: v.optional(KnobsSchema, {}),
});
export type VarsInput = v.InferOutput<typeof VarsInputSchema>;

/**
 * v1's retry budgets that no step reads (Incus waits for its own operations):
 * accepted, with a deprecation warning when set. v1's
 * `vm_retries_with_download x vm_delay` is still the time one incus call may take.
 */
export const DEPRECATED_KNOBS = [
  "incus_instances_lxc_retries",
  "incus_instances_lxc_delay",
  "incus_instances_vm_retries",
  "incus_instances_lxc_retries_with_download",
] as const;

/** Ansible's truthiness of a knob sent as a bool, a string ("false", "no") or a number. */
export function truthy(x: unknown, fallback: boolean): boolean {
  if (x === null || x === undefined || x === "") return fallback;
  if (typeof x === "boolean") return x;
  if (typeof x === "number") return x !== 0;
  return ["true", "yes", "on", "1", "y"].includes(String(x).trim().toLowerCase());
}

/** An integer knob (Ansible may send "4"); the fallback when absent or not a number. */
export function int(x: unknown, fallback: number): number {
  if (x === null || x === undefined || x === "") return fallback;
  const n = typeof x === "number" ? x : Number(String(x).trim());
  return Number.isInteger(n) ? n : fallback;
}

/**
 * The nesting prefix of the generated names (`001-`, or "" without
 * nesting_prefix): the part of `incus_project` before `domain_name`
 * (generator-contract: incus_project = prefix + domain name).
 */
export function nestingPrefixOf(h: HostVars): string {
  const project = h.incus_project ?? "";
  const domain = h.domain_name ?? "";
  if (domain === "" || !project.endsWith(domain)) return "";
  return project.slice(0, project.length - domain.length);
}

/**
 * The id that marks the projects, bridges and profiles this infra creates
 * (`user.anklume.infra`): nesting prefix + project_name, so two infras (or
 * two nesting levels) on one daemon never take each other's objects for orphans.
 */
export function infraId(hosts: HostVars[]): string {
  const h = hosts.find((x) => x.incus_project);
  const name = hosts.find((x) => x.project_name)?.project_name ?? "anklume";
  return `${h ? nestingPrefixOf(h) : ""}${name}`;
}

/** The image one machine is created from: OS_IMAGE override, machine, infra default, built-in default. */
export function imageOf(h: HostVars, knobs: Knobs): string {
  return (
    knobs.anklume_os_image_override ||
    h.instance_os_image ||
    h.default_os_image ||
    knobs.incus_images_default_image ||
    DEFAULT_IMAGE
  );
}

const isMachine = (h: HostVars): h is HostVars & { instance_name: string; incus_project: string } =>
  Boolean(h.instance_name && h.incus_project);

const unique = <T>(xs: T[]): T[] => [...new Set(xs)];

/**
 * The firewall's bridges, in NIC order: its own domain's bridge first (eth0,
 * the admin side), then every other bridge of the inventory, sorted
 * (operations-contract §4, firewall_router). One list gives both the
 * multi-NIC profile's devices and `firewall_router_interfaces`.
 */
export function firewallBridges(fw: HostVars, all: HostVars[]): string[] {
  const admin = fw.incus_network?.name;
  if (!admin) return [];
  const others = unique(all.flatMap((h) => (h.incus_network ? [h.incus_network.name] : [])))
    .filter((b) => b !== admin)
    .sort();
  return [admin, ...others];
}

/** `firewall_router_interfaces`: eth0 on the admin bridge, then eth1… in `firewallBridges` order. */
export function firewallInterfaces(bridges: string[]): { name: string; bridge: string }[] {
  return bridges.map((bridge, i) => ({ name: `eth${i}`, bridge }));
}

/** The firewall host among `hosts`: the first (by name) whose roles include firewall_router. */
export function firewallHost(hosts: [string, HostVars][]): [string, HostVars] | undefined {
  return [...hosts]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .find(([, h]) => (h.instance_roles ?? []).includes(FIREWALL_ROLE));
}

export interface DesiredState {
  infra: string;
  projects: unknown;
  networks: unknown;
  profiles: unknown;
  images: unknown;
  /** null: no selected machine is a firewall. */
  firewall: unknown;
  instances: unknown;
  /** Knobs of the executor (parallelism, timeouts, VM agent polling). */
  exec: { parallel: number; timeout: number; vm_agent_retries: number; vm_agent_delay: number };
  warnings: string[];
}

/** What `desiredFromVars` reads (a parsed `VarsInput`, knobs optional). */
export interface DesiredInput {
  hosts: Record<string, HostVars>;
  play_hosts?: string[] | null;
  limited?: boolean | null;
  knobs?: Knobs;
}

/** Build the desired state of every kind from the generated variables. */
export function desiredFromVars(input: DesiredInput): DesiredState {
  const knobs = input.knobs ?? {};
  const allEntries = Object.entries(input.hosts);
  const selected = new Set(input.play_hosts ?? allEntries.map(([n]) => n));
  // Play order is by inventory name (what the roles' `| sort` gave): stable output.
  const play = allEntries
    .filter(([n]) => selected.has(n))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const playVars = play.map(([, h]) => h);
  const allVars = allEntries.map(([, h]) => h);
  const infra = infraId(allVars);
  const autoCleanup = truthy(allVars.find((h) => h.auto_cleanup != null)?.auto_cleanup, false);
  const fwProfile = knobs.incus_firewall_vm_profile || FIREWALL_PROFILE;
  const sent = knobs as Record<string, unknown>;
  const warnings = DEPRECATED_KNOBS.filter((k) => sent[k] !== null && sent[k] !== undefined).map(
    (k) =>
      `${k} is deprecated and ignored (Incus waits for its own operations); the time one incus call may take is incus_instances_vm_retries_with_download x incus_instances_vm_delay`,
  );

  // One entry per project / bridge, first host wins (hosts of one domain share them).
  const byProject = new Map<string, HostVars>();
  for (const h of playVars)
    if (h.incus_project && !byProject.has(h.incus_project)) byProject.set(h.incus_project, h);
  const bridges = new Map<string, string>();
  for (const h of playVars)
    if (h.incus_network && !bridges.has(h.incus_network.name))
      bridges.set(h.incus_network.name, h.incus_network.gateway ?? "");

  const machines = playVars.filter(isMachine);
  const fw = firewallHost(play);

  return {
    infra,
    projects: {
      infra,
      features: knobs.incus_projects_features ?? DEFAULT_FEATURES,
      projects: [...byProject].map(([name, h]) => ({
        name,
        description: h.domain_description ?? "",
      })),
    },
    networks: {
      infra,
      nat: truthy(knobs.incus_networks_ipv4_nat, true),
      networks: [...bridges].map(([name, gateway]) => ({ name, gateway })),
    },
    profiles: {
      infra,
      pool: knobs.incus_profiles_pool || "default",
      nic_filtering: truthy(knobs.incus_profiles_nic_filtering, true),
      auto_cleanup: autoCleanup,
      // Built by the firewall kind: never an orphan of the profiles kind.
      keep: [fwProfile],
      domains: [...byProject]
        .filter(([, h]) => h.incus_network)
        .map(([project, h]) => ({
          project,
          bridge: h.incus_network?.name,
          profiles: h.incus_profiles ?? {},
        })),
    },
    images: {
      source_project: knobs.incus_images_source_project || "default",
      timeout: int(knobs.incus_images_download_timeout, 600),
      images: uniqueBy(
        machines.map((h) => ({ project: h.incus_project, ref: imageOf(h, knobs) })),
        (x) => `${x.project}\n${x.ref}`,
      ),
    },
    firewall: fw
      ? {
          infra,
          project: fw[1].incus_project,
          profile: fwProfile,
          bridges: firewallBridges(fw[1], allVars),
        }
      : null,
    instances: {
      auto_cleanup: autoCleanup,
      default_pool: knobs.incus_instances_default_pool || "default",
      restart_on_device_change: truthy(knobs.incus_instances_restart_on_device_change, true),
      context: truthy(knobs.incus_instances_write_context, true),
      instances: machines.map((h) => ({
        name: h.instance_name,
        project: h.incus_project,
        type: h.instance_type || "lxc",
        image: imageOf(h, knobs),
        profiles: [
          ...(h.instance_profiles?.length ? h.instance_profiles : ["default"]),
          ...((h.instance_roles ?? []).includes(FIREWALL_ROLE) ? [fwProfile] : []),
        ],
        config: h.instance_config ?? {},
        devices: h.instance_devices ?? {},
        storage_volumes: h.instance_storage_volumes ?? {},
        ephemeral: truthy(h.instance_ephemeral, false),
        ip: h.instance_ip ?? null,
        bridge: h.incus_network?.name,
        boot_autostart: h.instance_boot_autostart ?? null,
        // Only when set: the desired state of a machine outside a cluster is unchanged.
        ...(h.instance_target ? { target: h.instance_target } : {}),
        boot_priority: h.instance_boot_priority ?? null,
        snapshots_schedule: h.instance_snapshots_schedule ?? null,
        snapshots_expiry: h.instance_snapshots_expiry ?? null,
      })),
      projects: [...byProject.keys()],
      declared: allVars.filter(isMachine).map((h) => ({
        name: h.instance_name,
        project: h.incus_project,
      })),
      // Projects and bridges of removed domains: looked for only without
      // --limit (with it, the rest of the inventory's domains are not in play).
      orphan_domains: input.limited
        ? null
        : {
            infra,
            auto_cleanup: autoCleanup,
            projects: unique(allVars.flatMap((h) => (h.incus_project ? [h.incus_project] : []))),
            networks: unique(
              allVars.flatMap((h) => (h.incus_network ? [h.incus_network.name] : [])),
            ),
          },
    },
    exec: {
      parallel: Math.max(1, int(knobs.incus_instances_parallel, DEFAULT_PARALLEL)),
      timeout:
        int(knobs.incus_instances_vm_retries_with_download, 150) *
        int(knobs.incus_instances_vm_delay, 2),
      vm_agent_retries: int(knobs.incus_instances_vm_agent_retries, 30),
      vm_agent_delay: int(knobs.incus_instances_vm_agent_delay, 2),
    },
    warnings,
  };
}

function uniqueBy<T>(xs: T[], key: (x: T) => string): T[] {
  const seen = new Set<string>();
  return xs.filter((x) => {
    const k = key(x);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Parse what the role sent; the error names the path and says to re-sync. */
export function parseVarsInput(raw: unknown): VarsInput {
  // A knob Ansible rendered from an unset variable may arrive as "": unset.
  const knobs = (raw as { knobs?: unknown } | null)?.knobs;
  if (knobs && typeof knobs === "object" && !Array.isArray(knobs)) {
    const clean = Object.fromEntries(
      Object.entries(knobs).map(([k, x]) => [k, x === "" ? null : x] as const),
    );
    raw = { ...(raw as object), knobs: clean };
  }
  const r = v.safeParse(VarsInputSchema, raw);
  if (r.success) return r.output;
  const issue = r.issues[0];
  const path = issue.path?.map((p) => String(p.key)) ?? [];
  if (path[0] === "knobs" && path.length === 2) {
    // A knob is the user's own (-e, group_vars/all.yml), not a generated variable.
    throw new Error(
      `Cannot reconcile: the knob ${path[1]} is ${JSON.stringify(issue.input)}: ${issue.message}; fix it where it is set (make ... ARGS="-e ${path[1]}=..." or group_vars/all.yml)`,
    );
  }
  const where = path.length > 0 ? path.join(".") : "(root)";
  throw new Error(
    `Cannot reconcile: the generated variables are invalid at ${where}: ${issue.message}; check your own variables below the managed blocks, then run make sync`,
  );
}
