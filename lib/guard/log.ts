/**
 * incus-guard's log: every line goes to stderr and, timestamped, to the log
 * file. A log file that cannot be written is reported once and never stops
 * the guard (it runs from systemd's ExecStartPost, where failing is worse
 * than not logging).
 */
import { appendFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { paint, say } from "../core/cli.ts";
import { logLine } from "./guard.ts";

export type Level = "info" | "warn" | "error";

/** Where the guard's pipelines report: `line` is logged and shown, `note` only shown. */
export interface GuardLog {
  line(message: string, level?: Level): void;
  note(message: string): void;
}

/** Writes timestamped lines to a log file and plain lines (through `print`, default stderr). */
export class FileLog implements GuardLog {
  private broken = false;
  constructor(
    private readonly command: string,
    private readonly file: string,
    private readonly print: (line: string) => void = say,
  ) {}

  line(message: string, level: Level = "info"): void {
    const tag =
      level === "info" ? "" : `${paint(level === "warn" ? "yellow" : "red", `${level}:`)} `;
    this.print(`incus-guard ${this.command}: ${tag}${message}`);
    if (this.broken) return;
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      const prefix = level === "info" ? "" : `${level.toUpperCase()}: `;
      appendFileSync(this.file, logLine(this.command, `${prefix}${message}`));
    } catch (e) {
      this.broken = true;
      this.print(
        `incus-guard: cannot write the log ${this.file} (${(e as Error).message}); set --log or ANKLUME_GUARD_LOG`,
      );
    }
  }

  note(message: string): void {
    this.print(message);
  }
}
