/**
 * incus-guard's subcommands as library functions, one each: `postStart`,
 * `start`, `watch`, `check` and `install`. They log through the context and
 * return the exit code (`check` returns its report); `scripts/incus-guard.ts`
 * keeps argument parsing and what is printed.
 */
import { existsSync } from "node:fs";
import { $ } from "zx";
import { formatCidr } from "../core/cidr.ts";
import { hasSystemd, startIncus } from "./daemon.ts";
import { type BridgeConflict, findBridgeConflicts, type IncusConflict } from "./guard.ts";
import { incusConflicts } from "./incus.ts";
import { applyStep, describeStep, installPlan } from "./install.ts";
import type { GuardLog } from "./log.ts";
import { cleanIncus, deletingWatcher, removeBridge, restoreAndVerify } from "./repair.ts";
import {
  detectUplink,
  type GuardContext,
  hostNetworksOf,
  saveUplink,
  stateFiles,
} from "./uplink.ts";

/**
 * post-start (systemd's ExecStartPost): one pass over every bridge, Incus's
 * networks, the default route and the gateway. Always 0: it must never block Incus.
 */
export async function postStart(ctx: GuardContext): Promise<0> {
  try {
    const found = await detectUplink(ctx.runDir);
    if (!found) {
      ctx.log.line(
        `no default route and no saved uplink in ${stateFiles(ctx.runDir).dev}: nothing checked`,
        "error",
      );
      return 0;
    }
    const { up, routed } = found;
    if (routed) saveUplink(ctx, up);
    else ctx.log.line(`no default route: using the saved uplink ${up.dev}`, "warn");
    const { links, hostNets } = await hostNetworksOf(up.dev);
    if (hostNets.length === 0) {
      ctx.log.line(
        `the uplink ${up.dev} has no IPv4 address: no bridge can be compared with it`,
        "error",
      );
    } else {
      for (const c of findBridgeConflicts(links, up.dev, hostNets)) await removeBridge(ctx.log, c);
      await cleanIncus(ctx, hostNets);
    }
    await restoreAndVerify(ctx.log, up);
  } catch (e) {
    ctx.log.line(`failed: ${(e as Error).message}`, "error");
  }
  return 0;
}

/**
 * start: arm the watcher on the uplink's networks, start Incus (`startCmd`,
 * else the default way), keep watching `settleSeconds`, scan once more, clean
 * Incus's networks, restore the route and ask the gateway. 1 when the start
 * failed or the host network is not healthy at the end.
 */
export async function start(
  ctx: GuardContext,
  opts: { startCmd?: string; settleSeconds: number },
): Promise<number> {
  const found = await detectUplink(ctx.runDir);
  if (!found) {
    ctx.log.line(
      `cannot start Incus safely: no default route and no saved uplink in ${stateFiles(ctx.runDir).dev}; bring the host network up first`,
      "error",
    );
    return 1;
  }
  const { up, routed } = found;
  if (routed) saveUplink(ctx, up);
  const { hostNets } = await hostNetworksOf(up.dev);
  if (hostNets.length === 0) {
    ctx.log.line(`cannot protect the host: the uplink ${up.dev} has no IPv4 address`, "error");
    return 1;
  }
  ctx.log.line(
    `uplink ${up.dev} (${hostNets.map(formatCidr).join(", ")}), gateway ${up.gateway ?? "none"}`,
  );
  const watcher = deletingWatcher(ctx.log, up.dev, hostNets);
  await watcher.start();
  let started: boolean;
  try {
    started = await startIncus(ctx.log, opts.startCmd);
    await new Promise((r) => setTimeout(r, opts.settleSeconds * 1000));
    await watcher.scan();
    await watcher.settled();
    await cleanIncus(ctx, hostNets);
  } finally {
    await watcher.stop();
  }
  const healthy = await restoreAndVerify(ctx.log, up);
  return started && healthy ? 0 : 1;
}

/** watch: delete conflicting bridges as they appear until `stop` resolves. 1 when there is nothing to protect. */
export async function watch(ctx: GuardContext, stop: Promise<unknown>): Promise<number> {
  const found = await detectUplink(ctx.runDir);
  if (!found) {
    ctx.log.line("cannot watch: no default route and no saved uplink", "error");
    return 1;
  }
  if (found.routed) saveUplink(ctx, found.up);
  const { hostNets } = await hostNetworksOf(found.up.dev);
  if (hostNets.length === 0) {
    ctx.log.line(`cannot watch: the uplink ${found.up.dev} has no IPv4 address`, "error");
    return 1;
  }
  const watcher = deletingWatcher(ctx.log, found.up.dev, hostNets);
  await watcher.start();
  ctx.log.line(
    `watching bridges against ${hostNets.map(formatCidr).join(", ")} on ${found.up.dev}`,
  );
  await stop;
  await watcher.stop();
  ctx.log.line("stopped");
  return 0;
}

/** What `check` finds (printed as is by `check --json`). */
export interface CheckReport {
  uplink: { dev: string; gateway: string | null; from: "route" | "saved" } | null;
  defaultRoute: boolean;
  hostNetworks: string[];
  bridges: BridgeConflict[];
  /** null: not checked (`noIncus`, no host network, or Incus does not answer). */
  incus: IncusConflict[] | null;
  /** True when there is a default route, a host network and no conflict. */
  ok: boolean;
}

/** check: read everything, change nothing. */
export async function check(ctx: Pick<GuardContext, "runDir" | "noIncus">): Promise<CheckReport> {
  const found = await detectUplink(ctx.runDir);
  const report: CheckReport = {
    uplink: found
      ? { dev: found.up.dev, gateway: found.up.gateway, from: found.routed ? "route" : "saved" }
      : null,
    defaultRoute: found?.routed ?? false,
    hostNetworks: [],
    bridges: [],
    incus: null,
    ok: false,
  };
  if (found) {
    const { links, hostNets } = await hostNetworksOf(found.up.dev);
    report.hostNetworks = hostNets.map(formatCidr);
    report.bridges = findBridgeConflicts(links, found.up.dev, hostNets);
    if (!ctx.noIncus && hostNets.length > 0)
      report.incus = await incusConflicts(hostNets).catch(() => null);
  }
  report.ok =
    report.defaultRoute &&
    report.hostNetworks.length > 0 &&
    report.bridges.length === 0 &&
    !report.incus?.length;
  return report;
}

/**
 * install: the binary, the v1 symlink and the drop-in under `root`, then
 * `systemctl daemon-reload` when `root` is `/` and systemd runs. Throws when
 * the binary is missing; `dryRun` only says what it would write.
 */
export async function install(
  log: GuardLog,
  opts: { root: string; binary: string; dryRun: boolean },
): Promise<number> {
  const { root, binary, dryRun } = opts;
  if (!dryRun && !existsSync(binary)) {
    throw new Error(
      `cannot install: no compiled binary at "${binary}"; build it with make guard-build or pass --binary`,
    );
  }
  const plan = installPlan(root, binary);
  if (dryRun) {
    for (const s of plan) log.note(`would ${describeStep(s)}`);
    return 0;
  }
  for (const s of plan) {
    let changed: boolean;
    try {
      changed = await applyStep(s);
    } catch (e) {
      log.line(
        `cannot write ${s.path}: ${(e as Error).message}; run as root (sudo make guard-install) or pass --root DIR`,
        "error",
      );
      return 1;
    }
    log.line(`${changed ? "" : "unchanged: "}${describeStep(s).split("\n")[0]?.replace(/:$/, "")}`);
  }
  if (root !== "/") {
    log.note(`Installed under ${root}: systemd was not reloaded (not the live root).`);
  } else if (hasSystemd()) {
    const r = await $({ quiet: true, nothrow: true })`systemctl daemon-reload`;
    if (r.exitCode !== 0) {
      log.line(`systemctl daemon-reload failed: ${r.stderr.trim()}; run it by hand`, "error");
      return 1;
    }
    log.line("systemd reloaded: the guard runs after every start of incus.service");
  } else {
    log.note(
      "systemd is not running here: the drop-in takes effect once it does (then run systemctl daemon-reload).",
    );
    log.note("Without systemd, start Incus through the guard: incus-guard start");
  }
  return 0;
}
