#!/usr/bin/env bun
// incus-guard — keep Incus from taking the host off its network.
// Usage: incus-guard <start|post-start|watch|check|install> [options]
// The full help text is USAGE below: a constant rather than this comment,
// because the compiled binary (make guard-build) has no source file to read.
import { join } from "node:path";
import process from "node:process";
import { paint, parseCli, runMain, say, UsageError } from "../lib/core/cli.ts";
import {
  type CheckReport,
  check,
  install,
  postStart,
  start,
  watch,
} from "../lib/guard/commands.ts";
import { defaultBinary } from "../lib/guard/install.ts";
import { FileLog } from "../lib/guard/log.ts";
import type { GuardContext } from "../lib/guard/uplink.ts";

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

/** check's report for people, on stderr; the exit code follows `report.ok`. */
function printCheck(report: CheckReport, noIncus: boolean): void {
  const up = report.uplink;
  if (!up)
    say(`${paint("red", "✗")} no default route and no saved uplink: the host has no way out`);
  else {
    const mark = report.defaultRoute ? paint("green", "✓") : paint("red", "✗");
    say(
      `${mark} uplink ${up.dev} ${report.hostNetworks.join(", ") || "(no IPv4 address)"}, gateway ${up.gateway ?? "none"}${report.defaultRoute ? "" : " (saved: the default route is gone)"}`,
    );
  }
  for (const b of report.bridges)
    say(`${paint("red", "✗")} bridge ${b.ifname} ${b.network} overlaps the host network ${b.host}`);
  for (const n of report.incus ?? []) {
    say(
      `${paint("red", "✗")} Incus network ${n.name} (project ${n.project}) ${n.network} overlaps the host network ${n.host}`,
    );
  }
  if (report.incus === null && !noIncus)
    say(`${paint("yellow", "!")} Incus networks not checked (Incus does not answer)`);
  if (report.ok) say(`${paint("green", "✓")} no bridge overlaps the host network`);
  else if (up)
    say("Fix: run `incus-guard post-start` (deletes the conflicting bridges, restores the route).");
}

/** Resolves on the first SIGINT or SIGTERM. */
function signalled(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
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
  const ctx: GuardContext = {
    // install --root DIR logs inside DIR, never to the live host's log.
    log: new FileLog(
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
      return start(ctx, {
        startCmd: values["start-cmd"] ?? env.ANKLUME_GUARD_START_CMD,
        settleSeconds: settle,
      });
    case "watch":
      return watch(ctx, signalled());
    case "check": {
      const report = await check(ctx);
      if (values.json === true) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else printCheck(report, ctx.noIncus);
      return report.ok ? 0 : 1;
    }
    case "install":
      return install(ctx.log, {
        root: values.root ?? env.ANKLUME_GUARD_ROOT ?? "/",
        binary: values.binary ?? defaultBinary(),
        dryRun: values["dry-run"] === true,
      });
  }
}

if (import.meta.main) await runMain(main, USAGE);
