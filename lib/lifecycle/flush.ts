/**
 * `make flush`: the plan of what anklume owns and may destroy, as data.
 *
 * Owned Incus objects are found by the marker that apply writes
 * (`user.anklume.infra` = nesting prefix + project_name): the marked
 * projects with everything inside them (instances, images, custom volumes,
 * profiles), marked profiles in other projects, marked bridges. Nothing
 * unmarked outside those projects is ever touched. Pure: the daemon is read
 * and written by `flush-run.ts`.
 */
import type {
  IncusImage,
  IncusInstance,
  IncusNetwork,
  IncusProfile,
  IncusProject,
  IncusVolume,
} from "../incus/objects.ts";

/** The marker apply writes on projects, bridges and custom profiles (lib/apply/reconcile.ts). */
export const INFRA_MARKER = "user.anklume.infra";

/** What the daemon holds, as far as flush needs it. */
export interface FlushState {
  projects: Pick<IncusProject, "name" | "config">[];
  networks: Pick<IncusNetwork, "name" | "project" | "config" | "managed">[];
  profiles: Pick<IncusProfile, "name" | "project" | "config">[];
  instances: Pick<IncusInstance, "name" | "project" | "config">[];
  images: Pick<IncusImage, "fingerprint" | "project" | "aliases">[];
  /** Custom volumes, with the pool that holds them. */
  volumes: (Pick<IncusVolume, "name" | "type" | "project"> & { pool: string })[];
}

/** One deletion, in order; `unprotect` runs first for a protected instance. */
export interface FlushStep {
  kind: "instance" | "image" | "volume" | "profile" | "project" | "network";
  /** Human label: `instance 001-pro-dev (project 001-pro)`. */
  label: string;
  /** The incus arguments that delete it. */
  args: string[];
  /** The incus arguments that lift its protection first, when it has one. */
  unprotect?: string[];
}

/** The whole plan, grouped in the order it runs (each group after the previous one). */
export interface FlushPlan {
  infraId: string;
  instances: FlushStep[];
  /** Images, custom volumes and profiles: what blocks a project's deletion. */
  contents: FlushStep[];
  projects: FlushStep[];
  networks: FlushStep[];
}

const byName = <T extends { name: string }>(a: T, b: T) =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : 0;

/** Every step of a plan, in execution order. */
export function flushSteps(p: FlushPlan): FlushStep[] {
  return [...p.instances, ...p.contents, ...p.projects, ...p.networks];
}

/**
 * What flush destroys for `infraId`: every object of the projects marked
 * with it, marked profiles elsewhere, marked bridges; sorted by name in each
 * kind. The `default` project is never deleted, nor anything of it that is
 * not marked.
 * @example planFlush(state, "001-lab").projects.map((s) => s.label) // ["project 001-pro"]
 */
export function planFlush(state: FlushState, infraId: string): FlushPlan {
  if (infraId === "") throw new Error("Cannot plan a flush without an infra id");
  const marked = (c: Record<string, string>) => c[INFRA_MARKER] === infraId;
  const owned = new Set(
    state.projects.filter((p) => p.name !== "default" && marked(p.config)).map((p) => p.name),
  );
  const instances = state.instances
    .filter((i) => owned.has(i.project))
    .sort(byName)
    .map<FlushStep>((i) => ({
      kind: "instance",
      label: `instance ${i.name} (project ${i.project})`,
      args: ["delete", i.name, "--project", i.project, "--force"],
      ...(i.config["security.protection.delete"] === "true"
        ? {
            unprotect: [
              "config",
              "set",
              i.name,
              "security.protection.delete=false",
              "--project",
              i.project,
            ],
          }
        : {}),
    }));
  const images = state.images
    .filter((i) => owned.has(i.project))
    .sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : 1))
    .map<FlushStep>((i) => {
      const alias = i.aliases[0]?.name;
      return {
        kind: "image",
        label: `image ${alias ?? i.fingerprint.slice(0, 12)} (project ${i.project})`,
        args: ["image", "delete", i.fingerprint, "--project", i.project],
      };
    });
  const volumes = state.volumes
    .filter((x) => x.type === "custom" && owned.has(x.project))
    .sort(byName)
    .map<FlushStep>((x) => ({
      kind: "volume",
      label: `volume ${x.name} (pool ${x.pool}, project ${x.project})`,
      args: ["storage", "volume", "delete", x.pool, x.name, "--project", x.project],
    }));
  const profiles = state.profiles
    .filter((p) => p.name !== "default" && (owned.has(p.project) || marked(p.config)))
    .sort(byName)
    .map<FlushStep>((p) => ({
      kind: "profile",
      label: `profile ${p.name} (project ${p.project})`,
      args: ["profile", "delete", p.name, "--project", p.project],
    }));
  const projects = [...owned].sort().map<FlushStep>((p) => ({
    kind: "project",
    label: `project ${p}`,
    args: ["project", "delete", p],
  }));
  const networks = state.networks
    .filter((n) => n.managed && marked(n.config))
    .sort(byName)
    .map<FlushStep>((n) => ({
      kind: "network",
      label: `network ${n.name}`,
      args: [
        "network",
        "delete",
        n.name,
        ...(n.project !== "default" ? ["--project", n.project] : []),
      ],
    }));
  return { infraId, instances, contents: [...images, ...volumes, ...profiles], projects, networks };
}

/** "3 instances, 1 profile, 2 projects, 2 networks" (kinds with none left out). */
export function countByKind(steps: readonly FlushStep[]): string {
  const order: FlushStep["kind"][] = [
    "instance",
    "image",
    "volume",
    "profile",
    "project",
    "network",
  ];
  const parts: string[] = [];
  for (const k of order) {
    const n = steps.filter((s) => s.kind === k).length;
    if (n > 0) parts.push(`${n} ${k}${n === 1 ? "" : "s"}`);
  }
  return parts.join(", ");
}

/** Why flush refuses on this host, or null: production is level 0 and not yolo. */
export function productionRefusal(
  ctx: { absolute_level: number; yolo: boolean },
  force: boolean,
  contextDir: string,
): string | null {
  if (force || ctx.yolo || ctx.absolute_level !== 0) return null;
  return (
    `Cannot flush: this is a production host (absolute_level 0 in ${contextDir}, yolo not set), ` +
    "and flush destroys every instance of this infra; if you mean it, run make flush FORCE=true"
  );
}
