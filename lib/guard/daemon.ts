/**
 * Starting Incus for `incus-guard start`: the one place in TypeScript that
 * starts the daemon. A given shell command runs as it is; otherwise systemd
 * starts it when systemd runs, else `incusd` is started in the background
 * (unless Incus already answers). bootstrap.sh's `step_daemon` does the same
 * in bash, before Bun exists.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { $ } from "zx";
import { incusAvailable, incusRaw } from "../incus/client.ts";
import type { GuardLog } from "./log.ts";

/** Where incusd logs when the guard starts it without systemd. */
export const INCUSD_LOG = "/var/log/incus/incusd.log";

/** True when systemd runs this machine (PID 1). */
export function hasSystemd(): boolean {
  return existsSync("/run/systemd/system");
}

/** The group incusd gives its socket: `incus-admin` when `/etc/group` has it, else `root`. */
export function incusdGroup(groupFile: string): "incus-admin" | "root" {
  return /^incus-admin:/m.test(groupFile) ? "incus-admin" : "root";
}

/**
 * Start Incus: `startCmd` through `sh -c` when given, else the default way
 * (systemd, or incusd in the background). True when Incus was started or
 * already ran; every failure is logged as an error.
 */
export async function startIncus(log: GuardLog, startCmd?: string): Promise<boolean> {
  const q = $({ quiet: true, nothrow: true });
  if (startCmd) {
    log.line(`starting Incus with: ${startCmd}`);
    const r = await q`sh -c ${startCmd}`;
    if (r.exitCode !== 0)
      log.line(`the start command failed (exit ${r.exitCode}): ${r.stderr.trim()}`, "error");
    return r.exitCode === 0;
  }
  if (hasSystemd()) {
    if ((await q`systemctl is-active --quiet incus`).exitCode === 0) {
      log.line("Incus is already active: checking only");
      return true;
    }
    const r = await q`systemctl start incus.socket incus`.timeout("300s");
    if (r.exitCode !== 0) log.line(`systemctl start incus failed: ${r.stderr.trim()}`, "error");
    return r.exitCode === 0;
  }
  if (await incusAvailable()) {
    log.line("Incus is already running: checking only");
    return true;
  }
  const group = incusdGroup(readFileSync("/etc/group", "utf8"));
  mkdirSync(dirname(INCUSD_LOG), { recursive: true });
  log.line(`systemd is not running: starting /usr/libexec/incus/incusd --group ${group}`);
  await $({
    quiet: true,
    nothrow: true,
    stdio: "ignore",
  })`setsid -f /usr/libexec/incus/incusd --group ${group} --logfile ${INCUSD_LOG}`;
  const r = await incusRaw(["admin", "waitready", "--timeout", "60"], { timeout: "70s" });
  if (r.exitCode !== 0) log.line(`Incus did not become ready: ${r.stderr.trim()}`, "error");
  return r.exitCode === 0;
}
