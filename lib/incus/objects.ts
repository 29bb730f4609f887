/**
 * The model of Incus state: one schema and one list function per object
 * kind, read from the REST API (`/1.0/...?recursion=1`, the JSON that
 * `incus <kind> list --format json` prints) through `client.ts`'s `incusGet`. Types come from the schemas (`v.InferOutput`), never
 * from hand-written twins. Maps that Incus may print as `null` (an object
 * being created or deleted) are read as empty.
 */
import * as v from "valibot";
import { incusGet } from "./client.ts";

/**
 * A value Incus may print as null or omit (a restricted client, such as an
 * instance that sees the host's socket, gets fewer fields): read as `empty`.
 */
const orEmpty = <S extends v.GenericSchema>(s: S, empty: v.InferInput<S>) =>
  v.optional(
    v.pipe(
      v.unknown(),
      v.transform((x) => x ?? empty),
      s,
    ),
    empty,
  );
const StringMap = v.record(v.string(), v.string());
const Str = v.optional(v.string(), "");
const Project = v.optional(v.string(), "default");
const UsedBy = orEmpty(v.array(v.string()), []);

export const IncusProjectSchema = v.looseObject({
  name: v.string(),
  description: Str,
  config: orEmpty(StringMap, {}),
});
export type IncusProject = v.InferOutput<typeof IncusProjectSchema>;

export const IncusNetworkSchema = v.looseObject({
  name: v.string(),
  type: Str,
  managed: v.optional(v.boolean(), false),
  project: Project,
  config: orEmpty(StringMap, {}),
  used_by: UsedBy,
});
export type IncusNetwork = v.InferOutput<typeof IncusNetworkSchema>;

export const IncusProfileSchema = v.looseObject({
  name: v.string(),
  project: Project,
  description: Str,
  config: orEmpty(StringMap, {}),
  devices: orEmpty(v.record(v.string(), StringMap), {}),
  used_by: UsedBy,
});
export type IncusProfile = v.InferOutput<typeof IncusProfileSchema>;

export const IncusImageSchema = v.looseObject({
  fingerprint: v.string(),
  project: Project,
  aliases: orEmpty(v.array(v.looseObject({ name: v.string() })), []),
});
export type IncusImage = v.InferOutput<typeof IncusImageSchema>;

export const IncusAliasSchema = v.looseObject({ name: v.string(), target: v.string() });
export type IncusAlias = v.InferOutput<typeof IncusAliasSchema>;

export const IncusVolumeSchema = v.looseObject({
  name: v.string(),
  type: Str,
  project: Project,
  config: orEmpty(StringMap, {}),
});
export type IncusVolume = v.InferOutput<typeof IncusVolumeSchema>;

export const IncusPoolSchema = v.looseObject({ name: v.string(), driver: v.string() });
export type IncusPool = v.InferOutput<typeof IncusPoolSchema>;

export const IncusSnapshotSchema = v.looseObject({
  name: v.string(),
  created_at: Str,
});

export const IncusInstanceSchema = v.looseObject({
  name: v.string(),
  project: Project,
  status: v.string(),
  type: v.string(),
  config: orEmpty(StringMap, {}),
  devices: orEmpty(v.record(v.string(), StringMap), {}),
  expanded_config: orEmpty(StringMap, {}),
  expanded_devices: orEmpty(v.record(v.string(), StringMap), {}),
  profiles: orEmpty(v.array(v.string()), []),
  snapshots: v.optional(v.nullable(v.array(IncusSnapshotSchema)), null),
  /** The cluster member it runs on ("none" outside a cluster). */
  location: v.optional(v.string()),
});
export type IncusInstance = v.InferOutput<typeof IncusInstanceSchema>;

const ServerSchema = v.looseObject({
  environment: v.looseObject({ driver: v.optional(v.string(), "") }),
});

/** A list the daemon answers with `null` when it is empty (seen for storage pools): read as []. */
const listOf = <S extends v.GenericSchema>(item: S) => orEmpty(v.array(item), []);

/** `?recursion=1`, scoped to one project or to every project. */
const scope = (project?: string) =>
  project ? `recursion=1&project=${encodeURIComponent(project)}` : "recursion=1&all-projects=true";

/** Projects (`incus project list`). */
export function listProjects(): Promise<IncusProject[]> {
  return incusGet("/1.0/projects?recursion=1", listOf(IncusProjectSchema));
}

/** Networks of one project, or of every project when none is given. */
export function listNetworks(project?: string): Promise<IncusNetwork[]> {
  return incusGet(`/1.0/networks?${scope(project)}`, listOf(IncusNetworkSchema));
}

/** Profiles of one project, or of every project when none is given. */
export function listProfiles(project?: string): Promise<IncusProfile[]> {
  return incusGet(`/1.0/profiles?${scope(project)}`, listOf(IncusProfileSchema));
}

/** Images of one project, or of every project when none is given. */
export function listImages(project?: string): Promise<IncusImage[]> {
  return incusGet(`/1.0/images?${scope(project)}`, listOf(IncusImageSchema));
}

/** Image aliases of one project. */
export function listAliases(project = "default"): Promise<IncusAlias[]> {
  return incusGet(`/1.0/images/aliases?${scope(project)}`, listOf(IncusAliasSchema));
}

/** Storage pools. */
export function listPools(): Promise<IncusPool[]> {
  return incusGet("/1.0/storage-pools?recursion=1", listOf(IncusPoolSchema));
}

/** Storage volumes of one pool, in every project. */
export function listVolumes(pool: string): Promise<IncusVolume[]> {
  return incusGet(
    `/1.0/storage-pools/${encodeURIComponent(pool)}/volumes?${scope()}`,
    listOf(IncusVolumeSchema),
  );
}

/**
 * Every instance of every project. Without snapshots, recursion=1: config,
 * devices, profiles and status, in milliseconds; with snapshots, recursion=2
 * (what `incus list` reads), which adds the runtime state and takes half a
 * second on a busy daemon.
 */
export function listInstances(opts: { snapshots?: boolean } = {}): Promise<IncusInstance[]> {
  const depth = opts.snapshots ? 2 : 1;
  return incusGet(
    `/1.0/instances?recursion=${depth}&all-projects=true`,
    listOf(IncusInstanceSchema),
  );
}

/** The daemon's instance drivers, e.g. "lxc | qemu" ("lxc" alone: no VMs). */
export async function serverDriver(): Promise<string> {
  const parsed = v.safeParse(ServerSchema, await incusGet("/1.0", v.unknown()));
  return parsed.success ? parsed.output.environment.driver : "";
}

const ClusterSchema = v.looseObject({ enabled: v.optional(v.boolean(), false) });
const MemberSchema = v.looseObject({ server_name: v.string(), status: v.optional(v.string(), "") });
export type ClusterMember = v.InferOutput<typeof MemberSchema>;

/** The members of the cluster the daemon belongs to, with their status; [] outside a cluster. */
export async function listClusterMembers(): Promise<ClusterMember[]> {
  const cluster = await incusGet("/1.0/cluster", ClusterSchema);
  if (!cluster.enabled) return [];
  return incusGet("/1.0/cluster/members?recursion=1", listOf(MemberSchema));
}

/** True when the driver list (`serverDriver()`) can run virtual machines. */
export function driverRunsVms(driver: string): boolean {
  return driver.split("|").some((x) => x.trim() === "qemu");
}
