/**
 * `make import-infra`: the running Incus state as an infra.yml that, after
 * `make sync && make apply`, names the same projects, bridges and instances,
 * so the apply adopts them (markers, keys it now manages) and recreates or
 * deletes nothing. Pure: `importInfra` maps listings to a document and the
 * notes of what was guessed; `renderImport` writes it as YAML with comments.
 *
 * One domain per non-default project holding instances; the domain's bridge is
 * the network of its default profile's eth0 (else of its instances'), whose
 * `ipv4.address` gives `base_subnet` and `subnet_id`. Names round-trip through
 * the generator: with `nesting_prefix: true` when every project and instance
 * carries this host's `NNN-` prefix, else `nesting_prefix: false` (names as
 * they are).
 */
import { Document, isMap, type YAMLMap } from "yaml";
import { bridgeName } from "../core/naming.ts";
import type {
  IncusImage,
  IncusInstance,
  IncusNetwork,
  IncusProfile,
  IncusProject,
} from "../incus/objects.ts";
import { INFRA_MARKER } from "./flush.ts";

/** What import reads. */
export interface ImportState {
  projects: Pick<IncusProject, "name" | "description" | "config">[];
  networks: Pick<IncusNetwork, "name" | "config" | "managed" | "type">[];
  profiles: Pick<IncusProfile, "name" | "project" | "description" | "config" | "devices">[];
  instances: Pick<
    IncusInstance,
    "name" | "project" | "status" | "type" | "config" | "devices" | "expanded_devices" | "profiles"
  >[];
  images: Pick<IncusImage, "fingerprint" | "project" | "aliases">[];
}

/** The infra.yml as data, plus the comments to put above some of its nodes. */
export interface ImportResult {
  infra: Record<string, unknown>;
  /** Comments keyed by YAML path joined with "\u0000" ("" for the document's top). */
  notes: Map<string, string[]>;
  domains: number;
  machines: number;
}

type Config = Record<string, string>;
type Devices = Record<string, Config>;

const DNS = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** Keys the instance's config carries that the generator derives from fields, or Incus owns. */
const OWN_KEY = /^(volatile\.|image\.|user\.anklume\.)/;
const FIELD_KEYS = new Set([
  "boot.autostart",
  "boot.autostart.priority",
  "security.protection.delete",
  "snapshots.schedule",
  "snapshots.expiry",
]);

const key = (...path: (string | number)[]) => path.map(String).join("\u0000");

function sorted<T>(xs: T[], by: (x: T) => string): T[] {
  return [...xs].sort((a, b) => (by(a) < by(b) ? -1 : by(a) > by(b) ? 1 : 0));
}

/** The most frequent value (first in order on a tie), or undefined. */
function mostCommon(xs: string[]): string | undefined {
  const n = new Map<string, number>();
  for (const x of xs) n.set(x, (n.get(x) ?? 0) + 1);
  let best: string | undefined;
  for (const [x, c] of n) if (best === undefined || c > (n.get(best) ?? 0)) best = x;
  return best;
}

/** `10.100.3.254/24` → {base "10.100", id 3, host 254, prefixLen 24}; null when not IPv4 CIDR. */
export function parseBridgeAddress(
  cidr: string | undefined,
): { base: string; id: number; host: number; len: number } | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr ?? "");
  if (!m) return null;
  return { base: `${m[1]}.${m[2]}`, id: Number(m[3]), host: Number(m[4]), len: Number(m[5]) };
}

/** A boolean-like Incus value (`true`, `1`, `yes`, `on`). */
const truthy = (s: string | undefined) => /^(true|1|yes|on)$/i.test(s ?? "");

/**
 * Map the daemon's state to an infra.yml. `prefix` is this host's nesting
 * prefix (`001-`, from the context the generator reads).
 */
export function importInfra(
  state: ImportState,
  prefix: string,
  scope: { projects?: string[]; infraId?: string } = {},
): ImportResult {
  const notes = new Map<string, string[]>();
  const note = (path: string, text: string) => notes.set(path, [...(notes.get(path) ?? []), text]);
  const top = "";

  const byProject = new Map<string, ImportState["instances"]>();
  for (const i of state.instances) {
    byProject.set(i.project, [...(byProject.get(i.project) ?? []), i]);
  }
  const inDefault = byProject.get("default") ?? [];
  if (inDefault.length > 0 && !scope.projects?.length && !scope.infraId) {
    note(
      top,
      `Not imported: ${sorted(inDefault, (i) => i.name)
        .map((i) => i.name)
        .join(", ")} (project default). anklume keeps every domain in a project of its own; ` +
        "move them with incus move <name> --target-project <project> and import again.",
    );
  }
  const inScope = state.projects.filter(
    (p) =>
      p.name !== "default" &&
      (!scope.projects?.length || scope.projects.includes(p.name)) &&
      (!scope.infraId || p.config[INFRA_MARKER] === scope.infraId),
  );
  const projects = sorted(
    inScope.filter((p) => (byProject.get(p.name)?.length ?? 0) > 0),
    (p) => p.name,
  );
  const infras = [
    ...new Set(projects.flatMap((p) => (p.config[INFRA_MARKER] ? [p.config[INFRA_MARKER]] : []))),
  ].sort();
  if (infras.length > 1) {
    note(
      top,
      `The projects here belong to ${infras.length} anklume infras (${infras.join(", ")}); import one at a time with INFRA=<id> (--infra-id) or PROJECTS="<p> ..." (--project).`,
    );
  }
  const empty = inScope
    .filter((p) => !byProject.get(p.name)?.length)
    .map((p) => p.name)
    .sort();
  if (empty.length > 0) note(top, `Not imported (no instances): projects ${empty.join(", ")}.`);

  // Names: the prefix only when every project and instance carries it.
  const usePrefix =
    prefix !== "" &&
    projects.length > 0 &&
    projects.every(
      (p) =>
        p.name.startsWith(prefix) &&
        (byProject.get(p.name) ?? []).every((i) => i.name.startsWith(prefix)),
    );
  const strip = (n: string) => (usePrefix ? n.slice(prefix.length) : n);
  const pfx = usePrefix ? prefix : "";

  const nets = new Map(state.networks.map((n) => [n.name, n]));
  const profilesOf = (p: string) => state.profiles.filter((x) => x.project === p);

  // The bridge of each project, and its address.
  const bridgeOf = (p: string): string | undefined => {
    const def = profilesOf(p).find((x) => x.name === "default");
    const fromProfile = def?.devices.eth0?.network;
    if (fromProfile) return fromProfile;
    return mostCommon(
      (byProject.get(p) ?? []).flatMap((i) => {
        const n = i.expanded_devices.eth0?.network;
        return n ? [n] : [];
      }),
    );
  };
  const addr = new Map(
    projects.map((p) => {
      const b = bridgeOf(p.name);
      return [
        p.name,
        { bridge: b, a: parseBridgeAddress(b ? nets.get(b)?.config["ipv4.address"] : undefined) },
      ];
    }),
  );
  const base = mostCommon([...addr.values()].flatMap((x) => (x.a ? [x.a.base] : []))) ?? "10.100";

  // project_name from the marker apply left, else a name of ours.
  const marker = mostCommon(
    projects.flatMap((p) => (p.config[INFRA_MARKER] ? [p.config[INFRA_MARKER]] : [])),
  );
  let projectName = "imported-infra";
  if (marker) projectName = pfx && marker.startsWith(pfx) ? marker.slice(pfx.length) : marker;
  else note(top, `project_name "imported-infra" is a guess: no project carries ${INFRA_MARKER}.`);

  const images = (p: string, fp: string | undefined): string | undefined => {
    if (!fp) return undefined;
    const pick = (proj: string) =>
      state.images.find((i) => i.project === proj && i.fingerprint === fp && i.aliases.length > 0)
        ?.aliases[0]?.name;
    return pick(p) ?? pick("default");
  };

  const usedIds = new Set<number>();
  const seenMachines = new Set<string>();
  const domains: Record<string, Record<string, unknown>> = {};
  const allImages: string[] = [];
  const machineImage = new Map<Record<string, unknown>, string>();
  let machineCount = 0;
  let anyNoNat = false;

  for (const p of projects) {
    const domain = strip(p.name);
    const dpath = ["domains", domain];
    if (!DNS.test(domain)) {
      note(
        top,
        `Not imported: project ${p.name} ("${domain}" is not a valid domain name: lowercase letters, digits, hyphens).`,
      );
      continue;
    }
    const d: Record<string, unknown> = {};
    if (p.description) d.description = p.description;
    const { bridge, a } = addr.get(p.name) ?? {};
    let id: number;
    if (a && a.base === base && a.len === 24 && !usedIds.has(a.id)) {
      id = a.id;
      if (a.host !== 254) {
        note(
          key(...dpath),
          `bridge ${bridge} has its gateway at .${a.host}; anklume's is .254: the apply moves it.`,
        );
      }
    } else {
      id = 0;
      while (
        usedIds.has(id) ||
        [...addr.values()].some(
          (x) => x.a?.base === base && x.a.id === id && x !== addr.get(p.name),
        )
      )
        id++;
      note(
        key(...dpath),
        bridge
          ? `subnet_id ${id} is a guess: bridge ${bridge} (${nets.get(bridge)?.config["ipv4.address"] ?? "no IPv4"}) is not a free /24 under ${base}.`
          : `subnet_id ${id} is a guess: no bridge found for project ${p.name}; the apply creates one.`,
      );
    }
    usedIds.add(id);
    d.subnet_id = id;
    const expected = bridgeName(pfx, domain, id);
    if (bridge && bridge !== expected) {
      note(
        key(...dpath),
        `bridge ${bridge} is not named as anklume names it (${expected}): the apply creates ${expected} and moves the default profile's eth0 to it.`,
      );
    }
    if (bridge && nets.get(bridge)?.config["ipv4.nat"] === "false") anyNoNat = true;
    const features = ["features.images", "features.profiles", "features.storage.volumes"].filter(
      (f) => p.config[f] !== "true",
    );
    if (features.length > 0) {
      note(
        key(...dpath),
        `project ${p.name} has ${features.join(", ")} off (anklume turns them on for new projects; Incus cannot change them on a project in use: the apply warns and goes on).`,
      );
    }

    // Custom profiles of the project.
    const custom = sorted(
      profilesOf(p.name).filter((x) => x.name !== "default"),
      (x) => x.name,
    );
    if (custom.length > 0) {
      const profs: Record<string, unknown> = {};
      for (const prof of custom) {
        const spec: Record<string, unknown> = {};
        if (prof.description) spec.description = prof.description;
        const cfg = Object.fromEntries(
          Object.entries(prof.config)
            .filter(([k]) => !OWN_KEY.test(k))
            .sort(),
        );
        if (Object.keys(cfg).length > 0) spec.config = cfg;
        if (Object.keys(prof.devices).length > 0) spec.devices = prof.devices;
        profs[prof.name] = spec;
      }
      d.profiles = profs;
    }

    const machines: Record<string, unknown> = {};
    for (const i of sorted(byProject.get(p.name) ?? [], (x) => x.name)) {
      const name = strip(i.name);
      const mpath = [...dpath, "machines", name];
      if (!DNS.test(name)) {
        note(
          key(...dpath),
          `Not imported: instance ${i.name} ("${name}" is not a valid machine name).`,
        );
        continue;
      }
      if (seenMachines.has(name)) {
        note(
          key(...dpath),
          `Not imported: instance ${i.name}: another project already has a machine "${name}" (machine names are unique in an infra).`,
        );
        continue;
      }
      seenMachines.add(name);
      const m: Record<string, unknown> = {};
      const guesses: string[] = [];
      if (i.type === "virtual-machine") m.type = "vm";
      const devices: Devices = {};
      for (const [dn, dev] of Object.entries(i.devices)) devices[dn] = { ...dev };
      const eth0 = devices.eth0;
      const ip = eth0?.["ipv4.address"];
      if (ip && eth0?.type === "nic") {
        const inside = a && ip.startsWith(`${base}.${id}.`);
        if (inside) {
          m.ip = ip;
          delete devices.eth0;
        } else {
          guesses.push(
            `its eth0 has ipv4.address ${ip}, outside ${base}.${id}.0/24: kept as a device, not as ip`,
          );
        }
      }
      const fp = i.config["volatile.base_image"];
      const image = images(p.name, fp);
      if (image) {
        allImages.push(image);
        machineImage.set(m, image);
      } else {
        guesses.push(
          `its image (${fp ? fp.slice(0, 12) : "unknown"}) has no alias here: it uses default_os_image, which only matters if the instance is ever recreated`,
        );
      }
      if (!truthy(i.config["security.protection.delete"])) m.ephemeral = true;
      const profiles = i.profiles;
      if (profiles.join(",") !== "default") m.profiles = profiles;
      if (i.config["boot.autostart"] !== undefined)
        m.boot_autostart = truthy(i.config["boot.autostart"]);
      const prio = i.config["boot.autostart.priority"];
      if (prio !== undefined && /^\d+$/.test(prio)) m.boot_priority = Number(prio);
      if (i.config["snapshots.schedule"]) m.snapshots_schedule = i.config["snapshots.schedule"];
      if (i.config["snapshots.expiry"]) m.snapshots_expiry = i.config["snapshots.expiry"];
      const cfg = Object.fromEntries(
        Object.entries(i.config)
          .filter(([k]) => !OWN_KEY.test(k) && !FIELD_KEYS.has(k))
          .sort(),
      );
      if (Object.keys(cfg).length > 0) m.config = cfg;
      if (Object.keys(devices).length > 0) m.devices = devices;
      if (i.status !== "Running") guesses.push(`it is ${i.status}: the apply starts it`);
      if (guesses.length > 0)
        note(key(...mpath), `Imported instance ${i.name}; guessed: ${guesses.join("; ")}.`);
      machines[name] = m;
      machineCount++;
    }
    // Every machine unprotected: say it once, on the domain.
    const ms = Object.values(machines) as Record<string, unknown>[];
    if (ms.length > 0 && ms.every((m) => m.ephemeral === true)) {
      d.ephemeral = true;
      for (const m of ms) delete m.ephemeral;
    }
    d.machines = machines;
    domains[domain] = d;
  }

  const defaultImage = mostCommon(allImages);
  for (const [m, image] of machineImage) if (image !== defaultImage) m.os_image = image;
  if (anyNoNat) {
    note(
      top,
      "Bridges here have ipv4.nat=false: apply with NAT=false (make apply NAT=false) to keep it so.",
    );
  }
  const global: Record<string, unknown> = { base_subnet: base };
  if (defaultImage) global.default_os_image = defaultImage;
  global.nesting_prefix = usePrefix;
  if (!usePrefix && prefix !== "" && projects.length > 0) {
    note(
      key("global"),
      `nesting_prefix false: the names here do not all carry this host's prefix ${prefix}, so they are kept as they are.`,
    );
  }
  const bases = new Set([...addr.values()].flatMap((x) => (x.a ? [x.a.base] : [])));
  if (bases.size > 1) {
    note(
      key("global"),
      `base_subnet ${base} is the most common of ${[...bases].sort().join(", ")}: the other domains get a new subnet.`,
    );
  }
  return {
    infra: { project_name: projectName, global, domains },
    notes,
    domains: Object.keys(domains).length,
    machines: machineCount,
  };
}

/** The YAML text of an import, with its notes as comments, read back as YAML 1.1 would. */
export function renderImport(r: ImportResult, header: string[]): string {
  const doc = new Document(r.infra, { version: "1.1" });
  const lines = [...header, ...(r.notes.get("") ?? [])];
  doc.commentBefore = lines.map((l) => ` ${l}`).join("\n");
  for (const [path, texts] of r.notes) {
    if (path === "") continue;
    const node = doc.getIn(path.split("\u0000"), true);
    if (isMap(node)) {
      const m = node as YAMLMap;
      const prev = m.commentBefore ? `${m.commentBefore}\n` : "";
      m.commentBefore = prev + texts.map((t) => ` ${t}`).join("\n");
    }
  }
  return doc.toString({ lineWidth: 0 });
}
