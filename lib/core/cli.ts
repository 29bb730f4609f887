/**
 * The small pieces every script shares: argument parsing with usage errors
 * (exit 2), colour decided in one place, and running `main()` as an entry point.
 */

import { Buffer } from "node:buffer";
import { readFileSync, writeSync } from "node:fs";
import process from "node:process";
import { type ParseArgsConfig, parseArgs } from "node:util";

/** A usage error: the script prints it with a hint to `--help` and exits 2. */
export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** A negative number (`-1`, `-0.5`), which parseArgs would take for an option. */
const NEGATIVE = /^-(\d+(\.\d*)?|\.\d+)$/;

/**
 * Parse argv strictly; unknown flags and missing values become a UsageError.
 * A negative number after an option that takes a value is that value
 * (`--keep -1` reads as `--keep=-1`), so the script's own range check
 * explains it instead of parseArgs' "argument is ambiguous".
 */
export function parseCli<O extends Options>(argv: string[], options: O, allowPositionals = true) {
  const takesValue = (arg: string): string | undefined => {
    if (arg.startsWith("--")) {
      const name = arg.slice(2);
      return options[name]?.type === "string" ? name : undefined;
    }
    if (/^-[^-]$/.test(arg)) {
      const short = arg.slice(1);
      return Object.entries(options).find(([, o]) => o.short === short && o.type === "string")?.[0];
    }
    return undefined;
  };
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--") {
      args.push(...argv.slice(i));
      break;
    }
    const name = takesValue(arg);
    const next = argv[i + 1];
    if (name !== undefined && next !== undefined && NEGATIVE.test(next)) {
      args.push(`--${name}=${next}`);
      i++;
    } else {
      args.push(arg);
    }
  }
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (e) {
    // Node's advice ("place it at the end of the command after '--'") is not true under
    // Bun, which drops a "--" that comes right after the script: give one that always is.
    const message = (e as Error).message.replace(
      /\.? ?To specify a positional argument starting with a '-'.*$/s,
      "; to pass a path that starts with '-', write it as './-name'",
    );
    throw new UsageError(message);
  }
}

/** True when colour may be used on a stream: a TTY, no NO_COLOR, not TERM=dumb. */
export function useColour(stream: NodeJS.WriteStream = process.stderr): boolean {
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== "") return false;
  if (process.env.TERM === "dumb") return false;
  return Boolean(stream.isTTY);
}

const CODES = { red: 31, green: 32, yellow: 33, blue: 34, bold: 1, dim: 2 } as const;

/** Wrap text in an ANSI colour when colour is on for stderr. */
export function paint(colour: keyof typeof CODES, text: string): string {
  return useColour() ? `\u001b[${CODES[colour]}m${text}\u001b[0m` : text;
}

/**
 * Write text straight to a file descriptor (1 or 2). Touching process.stdout
 * or process.stderr builds a stream (~15 ms at start-up) and leaves a shared
 * pipe non-blocking; a full non-blocking pipe is retried.
 */
export function writeFd(fd: number, text: string): void {
  let buf = Buffer.from(text);
  while (buf.length > 0) {
    try {
      buf = buf.subarray(writeSync(fd, buf));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
    }
  }
}

/** Print a line to stderr. */
export function say(line: string): void {
  writeFd(2, `${line}\n`);
}

/**
 * Ask on stderr and read one line from stdin, a terminal or a pipe; null at
 * end of input. A piped answer is not echoed, so the prompt's line is ended here.
 */
export async function askLine(prompt: string): Promise<string | null> {
  writeFd(2, prompt);
  // Loaded here: every script imports this module, few ever ask.
  const { createInterface } = await import("node:readline");
  const rl = createInterface({ input: process.stdin, terminal: false });
  try {
    for await (const line of rl) {
      if (!process.stdin.isTTY) writeFd(2, "\n");
      return line;
    }
    if (!process.stdin.isTTY) writeFd(2, "\n");
    return null;
  } finally {
    rl.close();
  }
}

/**
 * Run `main(argv)` and exit with its code; usage errors exit 2, anything
 * unexpected prints one line (no stack trace unless ANKLUME_DEBUG=1) and exits 1.
 */
export async function runMain(
  main: (argv: string[]) => Promise<number>,
  usage: string,
): Promise<never> {
  let code: number;
  try {
    code = await main(process.argv.slice(2));
  } catch (e) {
    if (e instanceof UsageError) {
      say(`${paint("red", "error:")} ${e.message}`);
      say(usage.split("\n")[0] ?? "");
      say("Run with --help for the full usage.");
      code = 2;
    } else {
      const err = e as Error;
      say(`${paint("red", "error:")} ${err?.message ?? String(e)}`);
      if (process.env.ANKLUME_DEBUG === "1" && err?.stack) say(err.stack);
      code = 1;
    }
  }
  process.exit(code);
}

/**
 * A script's help text: its top comment, after the shebang (`//` lines, or one
 * slash-star block), so the comment a reader sees first is what `--help`
 * prints. Not for compiled binaries, which carry no source.
 */
export function topComment(url: string): string {
  const lines = readFileSync(new URL(url), "utf8").split("\n").slice(1);
  if (lines[0]?.startsWith("/*")) {
    const end = lines.findIndex((l) => l.trimEnd().endsWith("*/"));
    return lines
      .slice(1, end)
      .map((l) => l.replace(/^ ?\* ?/, ""))
      .join("\n")
      .trim();
  }
  const end = lines.findIndex((l) => !l.startsWith("//"));
  return lines
    .slice(0, end)
    .map((l) => l.replace(/^\/\/ ?/, ""))
    .join("\n");
}
