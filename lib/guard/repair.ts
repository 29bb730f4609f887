/**
 * What incus-guard does about a conflict, each step logged: delete a
 * kernel bridge, delete Incus's overlapping networks (Incus not answering is
 * a warning), put the default route back and ask the gateway, and a watcher
 * that deletes every conflicting bridge as it appears.
 */
import type { Cidr } from "../core/cidr.ts";
import type { BridgeConflict, IncusConflict, Uplink } from "./guard.ts";
import { deleteIncusNetwork, incusConflicts } from "./incus.ts";
import {
  BridgeWatcher,
  deleteLink,
  gatewayAnswers,
  readDefaultRoute,
  restoreDefaultRoute,
} from "./kernel.ts";
import type { GuardLog } from "./log.ts";
import type { GuardContext } from "./uplink.ts";

/** Delete one conflicting kernel bridge; true when it is gone. */
export async function removeBridge(log: GuardLog, c: BridgeConflict): Promise<boolean> {
  const err = await deleteLink(c.ifname);
  if (err) {
    log.line(
      `cannot delete bridge ${c.ifname} (${c.network} overlaps host ${c.host}): ${err}`,
      "error",
    );
    return false;
  }
  log.line(`deleted bridge ${c.ifname}: ${c.network} overlaps the host network ${c.host}`);
  return true;
}

/** Delete Incus's networks that overlap a host network (nothing with `noIncus`); never throws. */
export async function cleanIncus(ctx: GuardContext, hostNets: Cidr[]): Promise<void> {
  if (ctx.noIncus) return;
  let found: IncusConflict[] | null;
  try {
    found = await incusConflicts(hostNets);
  } catch (e) {
    ctx.log.line(`cannot read Incus's networks: ${(e as Error).message}`, "warn");
    return;
  }
  if (found === null) {
    ctx.log.line("Incus does not answer: its networks were not checked", "warn");
    return;
  }
  for (const c of found) {
    const err = await deleteIncusNetwork(c);
    if (err)
      ctx.log.line(
        `cannot delete Incus network ${c.name} (project ${c.project}, ${c.network}): ${err}`,
        "error",
      );
    else
      ctx.log.line(
        `deleted Incus network ${c.name} (project ${c.project}): ${c.network} overlaps ${c.host}`,
      );
  }
}

/** Restore the default route if lost, then ask the gateway; true when the host network is healthy. */
export async function restoreAndVerify(log: GuardLog, up: Uplink): Promise<boolean> {
  let route = await readDefaultRoute();
  if (!route) {
    if (!up.gateway) {
      log.line(
        `the default route is gone and no gateway is known for ${up.dev}; bring the network up again`,
        "error",
      );
      return false;
    }
    const err = await restoreDefaultRoute({ dev: up.dev, gateway: up.gateway });
    if (err) {
      log.line(`cannot restore the default route via ${up.gateway} dev ${up.dev}: ${err}`, "error");
      return false;
    }
    log.line(`restored the default route via ${up.gateway} dev ${up.dev}`);
    route = { dev: up.dev, gateway: up.gateway };
  }
  if (!route.gateway) {
    log.line(`the default route uses ${route.dev} without a gateway: nothing to ask`);
    return true;
  }
  const answer = await gatewayAnswers({ dev: route.dev, gateway: route.gateway });
  if (answer === "failed") {
    log.line(`the gateway ${route.gateway} on ${route.dev} does not answer`, "error");
    return false;
  }
  log.line(
    answer === "answered"
      ? `OK: gateway ${route.gateway} answers on ${route.dev}`
      : `OK: default route via ${route.gateway} on ${route.dev} (link without ARP: not probed)`,
  );
  return true;
}

/** A watcher that deletes every conflicting bridge and logs it (not started yet). */
export function deletingWatcher(log: GuardLog, uplinkDev: string, hostNets: Cidr[]): BridgeWatcher {
  return new BridgeWatcher({
    uplinkDev,
    hostNets,
    onConflict: async (c) => {
      await removeBridge(log, c);
    },
    onError: (m) => log.line(m, "warn"),
  });
}
