/**
 * incus-guard's Incus side: find the managed bridges whose `ipv4.address`
 * overlaps the host's network in every project, and delete them from Incus's
 * database so they do not come back at the next start. Incus being
 * unreachable is reported, never fatal.
 */
import type { Cidr } from "../core/cidr.ts";
import { incusAvailable, incusRaw } from "../incus/client.ts";
import { listNetworks } from "../incus/objects.ts";
import { findIncusConflicts, type IncusConflict } from "./guard.ts";

/** The Incus networks that overlap a host network; null when Incus does not answer. */
export async function incusConflicts(hostNets: Cidr[]): Promise<IncusConflict[] | null> {
  if (!(await incusAvailable())) return null;
  const nets = await listNetworks();
  return findIncusConflicts(nets, hostNets);
}

/** Delete one conflicting network from Incus; returns the error text, or null on success. */
export async function deleteIncusNetwork(c: IncusConflict): Promise<string | null> {
  const r = await incusRaw(["network", "delete", c.name, "--project", c.project], {
    timeout: "30s",
  });
  if (r.exitCode === 0) return null;
  return (
    `${r.stderr.trim() || `exit ${r.exitCode}`}; detach it from its profiles and instances, ` +
    `or give it another subnet: incus network set ${c.name} ipv4.address=<free range> --project ${c.project}`
  );
}
