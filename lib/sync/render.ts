/**
 * The generated Ansible tree as data: which files, in which order, holding
 * which keys (generator-contract §9). Pure: names are prefixed here, YAML is
 * emitted by emit.ts and merged into files by managed.ts.
 */
import { bridgeName, DEFAULT_BASE_SUBNET, parseBaseSubnet } from "../core/naming.ts";
import { addressingOf, domainBase, zoned } from "./addressing.ts";
import type { Infra } from "./schema.ts";

/** One file to write: its path relative to the output root, and the managed content. */
export interface FileSpec {
  rel: string;
  data: Record<string, unknown>;
}

/** Copy an object without its null/undefined values. */
function compact(obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k in obj) {
    const v = obj[k];
    if (v !== null && v !== undefined) out[k] = v;
  }
  return out;
}

/** Every file of the tree, in v1's order: all.yml, then per domain inventory, group_vars, host_vars. */
export function renderTree(infra: Infra, prefix: string): FileSpec[] {
  const g = infra.global ?? {};
  const zones = addressingOf(infra);
  const base = zones
    ? `${zones.baseOctet}.${zones.zoneBase}`
    : (parseBaseSubnet(g.base_subnet) ?? DEFAULT_BASE_SUBNET);
  const domains = infra.domains ?? {};
  const images = new Set<string>();
  for (const d of Object.values(domains)) {
    for (const m of Object.values(d.machines ?? {})) {
      const img = m.os_image ?? g.default_os_image;
      if (img) images.add(img);
    }
  }
  const policies = infra.network_policies ?? [];
  const files: FileSpec[] = [
    {
      rel: "group_vars/all.yml",
      data: compact({
        project_name: infra.project_name,
        base_subnet: base,
        default_os_image: g.default_os_image,
        psot_default_connection: g.default_connection,
        psot_default_user: g.default_user,
        incus_all_images: images.size > 0 ? [...images].sort() : null,
        network_policies: policies.length > 0 ? policies : null,
        auto_cleanup: g.auto_cleanup,
        package_cache: g.package_cache,
        incus_remote: g.incus_remote,
      }),
    },
  ];
  for (const [d, dom] of Object.entries(domains)) {
    const machines = dom.machines ?? {};
    const hosts: Record<string, unknown> = {};
    for (const [m, mach] of Object.entries(machines)) {
      hosts[m] = mach.ip ? { ansible_host: mach.ip } : null;
    }
    files.push({
      rel: `inventory/${d}.yml`,
      data: { all: { children: { [d]: { hosts: Object.keys(hosts).length > 0 ? hosts : null } } } },
    });
    // Present: validate requires it, or addressing chose it.
    const sid = dom.subnet_id as number;
    const dbase = domainBase(g, dom);
    // Under addressing two zones may share a sequence number: the short bridge
    // name then carries the zone too (10.120.3.0/24: net120003).
    const bridgeId = zoned(dom) ? Number(dbase.split(".")[1]) * 1000 + sid : sid;
    files.push({
      rel: `group_vars/${d}.yml`,
      data: compact({
        domain_name: d,
        domain_description: "description" in dom ? dom.description : "",
        domain_ephemeral: dom.ephemeral ?? false,
        domain_trust_level: dom.trust_level,
        incus_project: `${prefix}${d}`,
        incus_network: {
          name: bridgeName(prefix, d, bridgeId),
          subnet: `${dbase}.${sid}.0/24`,
          gateway: `${dbase}.${sid}.254`,
        },
        subnet_id: sid,
        incus_profiles: dom.profiles && Object.keys(dom.profiles).length > 0 ? dom.profiles : null,
      }),
    });
    for (const [m, mach] of Object.entries(machines)) {
      files.push({
        rel: `host_vars/${m}.yml`,
        data: compact({
          instance_name: `${prefix}${m}`,
          instance_type: mach.type ?? "lxc",
          instance_description: "description" in mach ? mach.description : "",
          instance_domain: d,
          instance_ephemeral: mach.ephemeral ?? dom.ephemeral ?? false,
          instance_os_image: mach.os_image ?? g.default_os_image,
          instance_ip: mach.ip || null,
          instance_gpu: mach.gpu,
          instance_profiles: mach.profiles,
          instance_config: mach.config,
          instance_devices: mach.devices,
          instance_storage_volumes: mach.storage_volumes,
          instance_services: mach.services,
          instance_roles: mach.roles,
          instance_boot_autostart: mach.boot_autostart,
          instance_target: mach.target ?? dom.target,
          instance_boot_priority: mach.boot_priority,
          instance_snapshots_schedule: mach.snapshots_schedule,
          instance_snapshots_expiry: mach.snapshots_expiry,
        }),
      });
    }
  }
  return files;
}
