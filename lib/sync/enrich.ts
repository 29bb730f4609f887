/**
 * Enrichment: what the generator adds to a valid infra before writing it
 * (generator-contract §6): the sys-firewall VM under `firewall_mode: vm`, and
 * the AI access policy under `ai_access_policy: exclusive`, and the host's
 * image export as a read-only disk (and `security.nesting`) on machines that
 * run Incus (`dev_test_runner`). Works on a copy.
 */
import { HOST_IMAGES_DEVICE, hostImagesDevice, runsNestedIncus } from "../provision/images.ts";
import { applyAddressing, domainBase } from "./addressing.ts";
import type { Infra, Machine, Policy } from "./schema.ts";

export interface Enriched {
  infra: Infra;
  /** INFO lines for stderr. */
  info: string[];
  /** True when sys-firewall was created here (it then counts as a current machine). */
  autoFirewall: boolean;
}

/** Add sys-firewall and the AI policy where the policies ask for them. */
export function enrich(input: Infra): Enriched {
  const g0 = input.global ?? {};
  const nested = Object.values(input.domains ?? {}).some((d) =>
    Object.values(d?.machines ?? {}).some((m) => runsNestedIncus(m)),
  );
  const needed =
    Boolean(g0.addressing) ||
    g0.firewall_mode === "vm" ||
    g0.ai_access_policy === "exclusive" ||
    Boolean(g0.resource_policy) ||
    nested;
  // Copy only when something will be added (the copy costs ~4 ms on 1,000 machines).
  const infra = needed ? structuredClone(input) : input;
  // v1's zone-based addressing first: it gives the domains their subnets.
  const info: string[] = applyAddressing(infra);
  let autoFirewall = false;
  const g = infra.global ?? {};
  const domains = infra.domains ?? {};

  const hasFirewall = Object.values(domains).some(
    (d) => d.machines && Object.hasOwn(d.machines, "sys-firewall"),
  );
  // Own keys only: a name is never looked up on Object.prototype.
  const admin = Object.hasOwn(domains, "anklume") ? domains.anklume : undefined;
  if (g.firewall_mode === "vm" && !hasFirewall && admin) {
    const ip = `${domainBase(g, admin)}.${admin.subnet_id}.253`;
    const fw: Machine = {
      description: "Centralized firewall VM (auto-created by generator)",
      type: "vm",
      ip,
      config: { "limits.cpu": "2", "limits.memory": "2GiB" },
      roles: ["base_system", "firewall_router"],
      ephemeral: false,
    };
    admin.machines = { ...(admin.machines ?? {}), "sys-firewall": fw };
    autoFirewall = true;
    info.push(`firewall_mode is 'vm' — auto-created sys-firewall in anklume domain (ip: ${ip})`);
  }

  const def = g.ai_access_default;
  if (g.ai_access_policy === "exclusive" && def && Object.hasOwn(domains, "ai-tools")) {
    const policies = infra.network_policies ?? [];
    if (!policies.some((p) => p.to === "ai-tools")) {
      const policy: Policy = {
        description: `AI access: ${def} -> ai-tools (auto-created)`,
        from: def,
        to: "ai-tools",
        ports: "all",
        bidirectional: true,
      };
      infra.network_policies = [...policies, policy];
      info.push(
        `ai_access_policy is 'exclusive' — auto-created network policy from '${def}' to 'ai-tools'`,
      );
    }
  }
  // Machines that run Incus see the host's `make export-images` directory
  // read-only; a device of the same name the user wrote wins.
  for (const d of Object.values(domains)) {
    for (const m of Object.values(d?.machines ?? {})) {
      if (!m || !runsNestedIncus(m)) continue;
      // Incus inside a container needs nesting; a value the user wrote wins.
      if (!Object.hasOwn(m.config ?? {}, "security.nesting")) {
        m.config = { ...(m.config ?? {}), "security.nesting": "true" };
      }
      if (Object.hasOwn(m.devices ?? {}, HOST_IMAGES_DEVICE)) continue;
      m.devices = { ...(m.devices ?? {}), [HOST_IMAGES_DEVICE]: hostImagesDevice() };
    }
  }
  return { infra, info, autoFirewall };
}
