#!/usr/bin/env bun
// incus-guard — keep Incus from taking the host off its network.
// Usage: incus-guard <start|post-start|watch|check|install> [options]
// The full help text is USAGE below: a constant rather than this comment,
// because the compiled binary (make guard-build) has no source file to read.
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { $ } from "zx";
import { type Cidr, formatCidr } from "../lib/core/cidr.ts";
import { paint, parseCli, runMain, say, UsageError } from "../lib/core/cli.ts";
import {
  type BridgeConflict,
  findBridgeConflicts,
  type IncusConflict,
  ipv4Networks,
  logLine,
  type Uplink,
} from "../lib/guard/guard.ts";
import { deleteIncusNetwork, incusConflicts } from "../lib/guard/incus.ts";
import { applyStep, defaultBinary, describeStep, installPlan } from "../lib/guard/install.ts";
import {
  BridgeWatcher,
  deleteLink,
  gatewayAnswers,
  readDefaultRoute,
  readLinks,
  restoreDefaultRoute,
} from "../lib/guard/kernel.ts";
import { incusAvailable } from "../lib/incus/client.ts";

const USAGE = `Usage: incus-guard <start|post-start|watch|check|install> [options]

incus-guard keeps Incus from taking the host off its network.

Commands:
  start        Start Incus while watching bridges: any bridge whose IPv4 network
               overlaps the host's uplink network is deleted as it appears; then
               remove such networks from Incus, restore the default route and
               check that the gateway answers. Exit 1 when the host network is
               not healthy at the end.
  post-start   For systemd's ExecStartPost: the same checks on every bridge,
               with local kernel calls; falls back to the saved uplink device
               when the default route is gone. Logs what it did; always exits 0.
  watch        Keep watching (until SIGINT/SIGTERM) and delete conflicting
               bridges as they appear.
  check        Report conflicts and the default route, change nothing.
               Exit 0 when there is nothing to fix, 1 otherwise.
  install      Install the compiled binary as /opt/anklume/incus-guard and the
               drop-in /etc/systemd/system/incus.service.d/network-guard.conf.

Options:
  --log FILE        log file (env ANKLUME_GUARD_LOG; default /var/log/incus-network-guard.log)
  --run-dir DIR     where the uplink is saved (env ANKLUME_GUARD_RUN_DIR; default /run):
                    DIR/incus-guard-host-dev and DIR/incus-guard-host-gw
  --no-incus        do not read or change Incus's networks (env ANKLUME_GUARD_NO_INCUS=1)
  --start-cmd CMD   start: the shell command that starts Incus (env ANKLUME_GUARD_START_CMD;
                    default: systemctl start incus.socket incus, or incusd without systemd)
  --settle SECONDS  start: keep watching this long after the start command (default 3)
  --json            check: print the report as JSON on stdout
  --root DIR        install: install under DIR instead of / (env ANKLUME_GUARD_ROOT)
  --binary FILE     install: the binary to install (default: this binary when
                    compiled, else dist/incus-guard; build it with make guard-build)
  --dry-run         install: show what would be written, write nothing
  -h, --help        show this help

Conflicts are real CIDR overlaps of any prefix length (a /24 inside the host's
/16, a /16 around the host's /24), on every bridge except the uplink itself.`;

const OPTIONS = {
  log: { type: "string" },
  "run-dir": { type: "string" },
  "no-incus": { type: "boolean" },
  "start-cmd": { type: "string" },
  settle: { type: "string" },
  json: { type: "boolean" },
  root: { type: "string" },
  binary: { type: "string" },
  "dry-run": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** Flags that mean something to some commands only. */
const ONLY_FOR: Record<string, string[]> = {
  "start-cmd": ["start"],
  settle: ["start"],
  json: ["check"],
  root: ["install"],
  binary: ["install"],
  "dry-run": ["install"],
};

const LOG_PATH = "/var/log/incus-network-guard.log";

const COMMANDS = ["start", "post-start", "watch", "check", "install"] as const;
type Command = (typeof COMMANDS)[number];

/** Everything a command needs, from flags and environment. */
interface Ctx {
  command: Command;
  log: Logger;
  runDir: string;
  noIncus: boolean;
}

/** Writes timestamped lines to the log file and plain lines to stderr. */
class Logger {
  private broken = false;
  constructor(
    private readonly command: string,
    private readonly file: string,
  ) {}

  line(message: string, level: "info" | "warn" | "error" = "info"): void {
    const tag =
      level === "info" ? "" : `${paint(level === "warn" ? "yellow" : "red", `${level}:`)} `;
    say(`incus-guard ${this.command}: ${tag}${message}`);
    if (this.broken) return;
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      const prefix = level === "info" ? "" : `${level.toUpperCase()}: `;
      appendFileSync(this.file, logLine(this.command, `${prefix}${message}`));
    } catch (e) {
      this.broken = true;
      say(
        `incus-guard: cannot write the log ${this.file} (${(e as Error).message}); set --log or ANKLUME_GUARD_LOG`,
      );
    }
  }
}

const stateFiles = (runDir: string) => ({
  dev: join(runDir, "incus-guard-host-dev"),
  gw: join(runDir, "incus-guard-host-gw"),
});

function readSaved(runDir: string): Uplink | null {
  const f = stateFiles(runDir);
  try {
    const dev = readFileSync(f.dev, "utf8").trim();
    if (!dev) return null;
    const gw = existsSync(f.gw) ? readFileSync(f.gw, "utf8").trim() : "";
    return { dev, gateway: gw || null };
  } catch {
    return null;
  }
}

function save(ctx: Ctx, up: Uplink): void {
  const f = stateFiles(ctx.runDir);
  try {
    mkdirSync(ctx.runDir, { recursive: true });
    writeFileSync(f.dev, `${up.dev}\n`);
    if (up.gateway) writeFileSync(f.gw, `${up.gateway}\n`);
  } catch (e) {
    ctx.log.line(`cannot save the uplink to ${f.dev}: ${(e as Error).message}`, "warn");
  }
}

/** The uplink: from the default route, else from the saved files; null when neither exists. */
async function detectUplink(ctx: Ctx): Promise<{ up: Uplink; routed: boolean } | null> {
  const route = await readDefaultRoute();
  if (route) return { up: route, routed: true };
  const saved = readSaved(ctx.runDir);
  return saved ? { up: saved, routed: false } : null;
}

async function removeBridge(ctx: Ctx, c: BridgeConflict): Promise<boolean> {
  const err = await deleteLink(c.ifname);
  if (err) {
    ctx.log.line(
      `cannot delete bridge ${c.ifname} (${c.network} overlaps host ${c.host}): ${err}`,
      "error",
    );
    return false;
  }
  ctx.log.line(`deleted bridge ${c.ifname}: ${c.network} overlaps the host network ${c.host}`);
  return true;
}

async function cleanIncus(ctx: Ctx, hostNets: Cidr[]): Promise<void> {
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
async function restoreAndVerify(ctx: Ctx, up: Uplink): Promise<boolean> {
  let route = await readDefaultRoute();
  if (!route) {
    if (!up.gateway) {
      ctx.log.line(
        `the default route is gone and no gateway is known for ${up.dev}; bring the network up again`,
        "error",
      );
      return false;
    }
    const err = await restoreDefaultRoute({ dev: up.dev, gateway: up.gateway });
    if (err) {
      ctx.log.line(
        `cannot restore the default route via ${up.gateway} dev ${up.dev}: ${err}`,
        "error",
      );
      return false;
    }
    ctx.log.line(`restored the default route via ${up.gateway} dev ${up.dev}`);
    route = { dev: up.dev, gateway: up.gateway };
  }
  if (!route.gateway) {
    ctx.log.line(`the default route uses ${route.dev} without a gateway: nothing to ask`);
    return true;
  }
  const answer = await gatewayAnswers({ dev: route.dev, gateway: route.gateway });
  if (answer === "failed") {
    ctx.log.line(`the gateway ${route.gateway} on ${route.dev} does not answer`, "error");
    return false;
  }
  ctx.log.line(
    answer === "answered"
      ? `OK: gateway ${route.gateway} answers on ${route.dev}`
      : `OK: default route via ${route.gateway} on ${route.dev} (link without ARP: not probed)`,
  );
  return true;
}

async function hostNetworksOf(dev: string) {
  const links = await readLinks();
  const link = links.find((l) => l.ifname === dev);
  return { links, hostNets: link ? ipv4Networks(link) : [] };
}

/** post-start: one pass over every bridge; never fails. */
async function postStart(ctx: Ctx): Promise<number> {
  try {
    const found = await detectUplink(ctx);
    if (!found) {
      ctx.log.line(
        `no default route and no saved uplink in ${stateFiles(ctx.runDir).dev}: nothing checked`,
        "error",
      );
      return 0;
    }
    const { up, routed } = found;
    if (routed) save(ctx, up);
    else ctx.log.line(`no default route: using the saved uplink ${up.dev}`, "warn");
    const { links, hostNets } = await hostNetworksOf(up.dev);
    if (hostNets.length === 0) {
      ctx.log.line(
        `the uplink ${up.dev} has no IPv4 address: no bridge can be compared with it`,
        "error",
      );
    } else {
      for (const c of findBridgeConflicts(links, up.dev, hostNets)) await removeBridge(ctx, c);
      await cleanIncus(ctx, hostNets);
    }
    await restoreAndVerify(ctx, up);
  } catch (e) {
    ctx.log.line(`failed: ${(e as Error).message}`, "error");
  }
  return 0;
}

function hasSystemd(): boolean {
  return existsSync("/run/systemd/system");
}

/** Start Incus the default way: systemd when it runs, else incusd in the background. */
async function startIncusDefault(ctx: Ctx): Promise<boolean> {
  const q = $({ quiet: true, nothrow: true });
  if (hasSystemd()) {
    if ((await q`systemctl is-active --quiet incus`).exitCode === 0) {
      ctx.log.line("Incus is already active: checking only");
      return true;
    }
    const r = await q`systemctl start incus.socket incus`.timeout("300s");
    if (r.exitCode !== 0) ctx.log.line(`systemctl start incus failed: ${r.stderr.trim()}`, "error");
    return r.exitCode === 0;
  }
  if (await incusAvailable()) {
    ctx.log.line("Incus is already running: checking only");
    return true;
  }
  const group = /^incus-admin:/m.test(readFileSync("/etc/group", "utf8")) ? "incus-admin" : "root";
  const logfile = "/var/log/incus/incusd.log";
  mkdirSync(dirname(logfile), { recursive: true });
  ctx.log.line(`systemd is not running: starting /usr/libexec/incus/incusd --group ${group}`);
  await $({
    quiet: true,
    nothrow: true,
    stdio: "ignore",
  })`setsid -f /usr/libexec/incus/incusd --group ${group} --logfile ${logfile}`;
  const r = await q`incus admin waitready --timeout 60`.timeout("70s");
  if (r.exitCode !== 0) ctx.log.line(`Incus did not become ready: ${r.stderr.trim()}`, "error");
  return r.exitCode === 0;
}

/** A watcher that deletes every conflicting bridge and logs it. */
function deletingWatcher(ctx: Ctx, uplinkDev: string, hostNets: Cidr[]): BridgeWatcher {
  return new BridgeWatcher({
    uplinkDev,
    hostNets,
    onConflict: async (c) => {
      await removeBridge(ctx, c);
    },
    onError: (m) => ctx.log.line(m, "warn"),
  });
}

async function start(
  ctx: Ctx,
  startCmd: string | undefined,
  settleSeconds: number,
): Promise<number> {
  const found = await detectUplink(ctx);
  if (!found) {
    ctx.log.line(
      `cannot start Incus safely: no default route and no saved uplink in ${stateFiles(ctx.runDir).dev}; bring the host network up first`,
      "error",
    );
    return 1;
  }
  const { up, routed } = found;
  if (routed) save(ctx, up);
  const { hostNets } = await hostNetworksOf(up.dev);
  if (hostNets.length === 0) {
    ctx.log.line(`cannot protect the host: the uplink ${up.dev} has no IPv4 address`, "error");
    return 1;
  }
  ctx.log.line(
    `uplink ${up.dev} (${hostNets.map(formatCidr).join(", ")}), gateway ${up.gateway ?? "none"}`,
  );
  const watcher = deletingWatcher(ctx, up.dev, hostNets);
  await watcher.start();
  let started: boolean;
  try {
    if (startCmd) {
      ctx.log.line(`starting Incus with: ${startCmd}`);
      const r = await $({ quiet: true, nothrow: true })`sh -c ${startCmd}`;
      started = r.exitCode === 0;
      if (!started)
        ctx.log.line(`the start command failed (exit ${r.exitCode}): ${r.stderr.trim()}`, "error");
    } else {
      started = await startIncusDefault(ctx);
    }
    await new Promise((r) => setTimeout(r, settleSeconds * 1000));
    await watcher.scan();
    await watcher.settled();
    await cleanIncus(ctx, hostNets);
  } finally {
    await watcher.stop();
  }
  const healthy = await restoreAndVerify(ctx, up);
  return started && healthy ? 0 : 1;
}

async function watch(ctx: Ctx): Promise<number> {
  const found = await detectUplink(ctx);
  if (!found) {
    ctx.log.line("cannot watch: no default route and no saved uplink", "error");
    return 1;
  }
  if (found.routed) save(ctx, found.up);
  const { hostNets } = await hostNetworksOf(found.up.dev);
  if (hostNets.length === 0) {
    ctx.log.line(`cannot watch: the uplink ${found.up.dev} has no IPv4 address`, "error");
    return 1;
  }
  const watcher = deletingWatcher(ctx, found.up.dev, hostNets);
  await watcher.start();
  ctx.log.line(
    `watching bridges against ${hostNets.map(formatCidr).join(", ")} on ${found.up.dev}`,
  );
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await watcher.stop();
  ctx.log.line("stopped");
  return 0;
}

/** check: read-only report. */
async function check(ctx: Ctx, json: boolean): Promise<number> {
  const found = await detectUplink(ctx);
  const report = {
    uplink: found
      ? { dev: found.up.dev, gateway: found.up.gateway, from: found.routed ? "route" : "saved" }
      : null,
    defaultRoute: found?.routed ?? false,
    hostNetworks: [] as string[],
    bridges: [] as BridgeConflict[],
    incus: null as IncusConflict[] | null,
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
  if (json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return report.ok ? 0 : 1;
  }
  if (!found)
    say(`${paint("red", "✗")} no default route and no saved uplink: the host has no way out`);
  else {
    const mark = report.defaultRoute ? paint("green", "✓") : paint("red", "✗");
    say(
      `${mark} uplink ${found.up.dev} ${report.hostNetworks.join(", ") || "(no IPv4 address)"}, gateway ${found.up.gateway ?? "none"}${report.defaultRoute ? "" : " (saved: the default route is gone)"}`,
    );
  }
  for (const b of report.bridges)
    say(`${paint("red", "✗")} bridge ${b.ifname} ${b.network} overlaps the host network ${b.host}`);
  for (const n of report.incus ?? []) {
    say(
      `${paint("red", "✗")} Incus network ${n.name} (project ${n.project}) ${n.network} overlaps the host network ${n.host}`,
    );
  }
  if (report.incus === null && !ctx.noIncus)
    say(`${paint("yellow", "!")} Incus networks not checked (Incus does not answer)`);
  if (report.ok) say(`${paint("green", "✓")} no bridge overlaps the host network`);
  else if (found)
    say("Fix: run `incus-guard post-start` (deletes the conflicting bridges, restores the route).");
  return report.ok ? 0 : 1;
}

async function install(ctx: Ctx, root: string, binary: string, dryRun: boolean): Promise<number> {
  if (!dryRun && !existsSync(binary)) {
    say(
      `${paint("red", "error:")} cannot install: no compiled binary at "${binary}"; build it with make guard-build or pass --binary`,
    );
    return 1;
  }
  const plan = installPlan(root, binary);
  if (dryRun) {
    for (const s of plan) say(`would ${describeStep(s)}`);
    return 0;
  }
  for (const s of plan) {
    let changed: boolean;
    try {
      changed = await applyStep(s);
    } catch (e) {
      ctx.log.line(
        `cannot write ${s.path}: ${(e as Error).message}; run as root (sudo make guard-install) or pass --root DIR`,
        "error",
      );
      return 1;
    }
    ctx.log.line(
      `${changed ? "" : "unchanged: "}${describeStep(s).split("\n")[0]?.replace(/:$/, "")}`,
    );
  }
  if (root !== "/") {
    say(`Installed under ${root}: systemd was not reloaded (not the live root).`);
  } else if (hasSystemd()) {
    const r = await $({ quiet: true, nothrow: true })`systemctl daemon-reload`;
    if (r.exitCode !== 0) {
      ctx.log.line(`systemctl daemon-reload failed: ${r.stderr.trim()}; run it by hand`, "error");
      return 1;
    }
    ctx.log.line("systemd reloaded: the guard runs after every start of incus.service");
  } else {
    say(
      "systemd is not running here: the drop-in takes effect once it does (then run systemctl daemon-reload).",
    );
    say("Without systemd, start Incus through the guard: incus-guard start");
  }
  return 0;
}

/** Entry point: returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(argv, OPTIONS);
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const [cmd, ...rest] = positionals;
  if (cmd === undefined)
    throw new UsageError("missing command: start, post-start, watch, check or install");
  if (!COMMANDS.includes(cmd as Command)) {
    throw new UsageError(
      `unknown command "${cmd}": use start, post-start, watch, check or install`,
    );
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  const command = cmd as Command;
  for (const [flag, only] of Object.entries(ONLY_FOR)) {
    if (values[flag as keyof typeof values] !== undefined && !only.includes(command)) {
      throw new UsageError(`--${flag} is for ${only.join(" or ")}, not ${command}`);
    }
  }
  const env = process.env;
  const settleText = values.settle ?? "3";
  const settle = Number(settleText);
  if (!/^\d+(\.\d+)?$/.test(settleText) || !Number.isFinite(settle)) {
    throw new UsageError(`--settle "${settleText}" is not a number of seconds`);
  }
  const ctx: Ctx = {
    command,
    // install --root DIR logs inside DIR, never to the live host's log.
    log: new Logger(
      command,
      values.log ??
        env.ANKLUME_GUARD_LOG ??
        join(
          command === "install" ? (values.root ?? env.ANKLUME_GUARD_ROOT ?? "/") : "/",
          LOG_PATH,
        ),
    ),
    runDir: values["run-dir"] ?? env.ANKLUME_GUARD_RUN_DIR ?? "/run",
    noIncus: values["no-incus"] === true || env.ANKLUME_GUARD_NO_INCUS === "1",
  };
  switch (command) {
    case "post-start":
      return postStart(ctx);
    case "start":
      return start(ctx, values["start-cmd"] ?? env.ANKLUME_GUARD_START_CMD, settle);
    case "watch":
      return watch(ctx);
    case "check":
      return check(ctx, values.json === true);
    case "install":
      return install(
        ctx,
        values.root ?? env.ANKLUME_GUARD_ROOT ?? "/",
        values.binary ?? defaultBinary(),
        values["dry-run"] === true,
      );
  }
}

if (import.meta.main) await runMain(main, USAGE);
