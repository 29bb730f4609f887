/**
 * The one module that talks to Incus. Writes run the `incus` CLI
 * (`incusRun`), except a few small ones that take the socket when reads do
 * (`incusSend`); reads are JSON parsed through a valibot schema, either from
 * the CLI (`incusJson`) or from the REST API (`incusGet`, through the local
 * daemon's unix socket or `incus query`: `readVia()` is the one switch).
 * Every call can be counted (ANKLUME_INCUS_LOG, used by benchmarks) and the
 * binary overridden (ANKLUME_INCUS, default `incus`).
 */
import { Buffer } from "node:buffer";
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { request } from "node:http";
import { homedir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import * as v from "valibot";

/**
 * zx, loaded on the first incus process: importing it costs about 0.11 s of
 * Bun's start, and a converged apply (bench/apply.ts, no-op) starts none.
 */
let zx: Promise<typeof import("zx")> | undefined;
const loadZx = () => {
  zx ??= import("zx");
  return zx;
};

/** The result of one incus call. */
export interface IncusResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** An incus call that failed; its message holds the command and incus's stderr. */
export class IncusError extends Error {
  constructor(
    readonly args: string[],
    readonly result: IncusResult,
  ) {
    super(`incus ${args.join(" ")} failed (exit ${result.exitCode}): ${result.stderr.trim()}`);
  }
}

function logCall(args: unknown[]): void {
  const log = process.env.ANKLUME_INCUS_LOG;
  if (log) appendFileSync(log, `${JSON.stringify(args)}\n`);
}

/** Run incus with arguments; never throws for a non-zero exit (check `exitCode`). */
export async function incusRaw(
  args: string[],
  opts: { input?: string; timeout?: string } = {},
): Promise<IncusResult> {
  const bin = process.env.ANKLUME_INCUS ?? "incus";
  // Without input, stdin is /dev/null: `incus ... create` reads YAML from a
  // non-terminal stdin and would wait forever on an inherited open pipe.
  const stdio: ["pipe" | "ignore", "pipe", "pipe"] = [
    opts.input === undefined ? "ignore" : "pipe",
    "pipe",
    "pipe",
  ];
  for (let attempt = 1; ; attempt++) {
    logCall(args);
    const { $ } = await loadZx();
    let p = $({ quiet: true, nothrow: true, input: opts.input, stdio })`${bin} ${args}`;
    // The input is written after the spawn; a command that exits without
    // reading it (a quick failure) breaks the pipe, and Node streams throw an
    // EPIPE that no one listens to as an uncaught error (bun test counted one
    // "between tests" in CI). The exit code says what happened.
    p.stdin?.on("error", () => undefined);
    if (opts.timeout) p = p.timeout(opts.timeout as `${number}s`);
    const out = await p;
    const r = { exitCode: out.exitCode ?? 1, stdout: out.stdout, stderr: out.stderr };
    if (r.exitCode === 0 || attempt >= LINK_RACE_TRIES || !isLinkRace(r.stderr)) return r;
    await new Promise((res) => setTimeout(res, 200 * attempt));
  }
}

/**
 * Incus's own race: to change or delete a bridge it reads every link of the
 * host to find the bridge's ports, and fails when a link of some other
 * instance or test disappears in between ("Failed to delete bridge children
 * interfaces: ... link show vethXXXX ... does not exist"; any interface
 * name, not only veth). Nothing was changed; the same call succeeds once the
 * other link is gone, so it is tried again, a bounded number of times.
 */
export function isLinkRace(stderr: string): boolean {
  return /Failed to run: ip -d -j link show \S+: exit status 1/.test(stderr);
}
const LINK_RACE_TRIES = 4;

/** Run incus; throw an IncusError when it fails. */
export async function incusRun(args: string[], opts: { input?: string; timeout?: string } = {}) {
  const r = await incusRaw(args, opts);
  if (r.exitCode !== 0) throw new IncusError(args, r);
  return r;
}

/** Run a read-only incus command with `--format json` and parse it through a schema. */
export async function incusJson<S extends v.GenericSchema>(
  args: string[],
  schema: S,
): Promise<v.InferOutput<S>> {
  const full = [...args, "--format", "json"];
  const r = await incusRun(full);
  return parseAnswer(`incus ${full.join(" ")}`, r.stdout, schema);
}

/** Parse an answer of Incus through a schema; the error names the call and the path. */
function parseAnswer<S extends v.GenericSchema>(
  what: string,
  text: string,
  schema: S,
): v.InferOutput<S> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new Error(`${what} did not print JSON: ${text.slice(0, 200)}`);
  }
  return parseData(what, data, schema);
}

/** Parse decoded JSON of Incus through a schema; the error names the call and the path. */
function parseData<S extends v.GenericSchema>(
  what: string,
  data: unknown,
  schema: S,
): v.InferOutput<S> {
  const parsed = v.safeParse(schema, data);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const where = issue.path?.map((p) => String(p.key)).join(".") ?? "(root)";
    throw new Error(`${what}: unexpected JSON at ${where}: ${issue.message}`);
  }
  return parsed.output;
}

/** How reads reach Incus: the local daemon's unix socket, or the incus CLI. */
export type ReadVia = { socket: string } | { cli: true };

let via: ReadVia | undefined;

/**
 * The one switch between the two ways of reading Incus. Through the socket,
 * a read is one HTTP GET and no process: the no-op apply's seven reads went
 * from seven `incus` processes (0.3 s of bench/apply.ts's no-op) to a few
 * milliseconds of the daemon's own work. Through the CLI (`incus query`), a
 * read goes wherever `incus` goes. The socket is used only where the CLI
 * would use it: ANKLUME_INCUS unset (tests set it to a fake binary), the
 * CLI's default remote `local` and INCUS_REMOTE unset or `local` (a remote
 * Incus, `incus remote switch` or `make ... INCUS_REMOTE=`, is read through
 * the CLI), the socket present; ANKLUME_INCUS_READS=cli forces
 * the CLI. A socket that refuses the connection falls back to the CLI.
 */
export function readVia(): ReadVia {
  via ??= chooseReadVia(process.env);
  return via;
}

/** `readVia()`'s decision, from an environment (exported for its unit test). */
export function chooseReadVia(env: Record<string, string | undefined>): ReadVia {
  if (env.ANKLUME_INCUS || env.ANKLUME_INCUS_READS === "cli") return { cli: true };
  // INCUS_REMOTE (the CLI's own variable; make sets it from incus_remote).
  if (env.INCUS_REMOTE && env.INCUS_REMOTE !== "local") return { cli: true };
  const conf = env.INCUS_CONF || join(env.HOME || homedir(), ".config", "incus");
  if (defaultRemote(join(conf, "config.yml")) !== "local") return { cli: true };
  const socket = env.INCUS_SOCKET || join(env.INCUS_DIR || "/var/lib/incus", "unix.socket");
  return existsSync(socket) ? { socket } : { cli: true };
}

/**
 * The remote the incus CLI works on: INCUS_REMOTE (make sets it from
 * incus_remote, docs/remote.md), else the CLI's default remote. Commands
 * that name two servers (`incus image copy <src> <remote>:`) name it.
 */
export function currentRemote(env: Record<string, string | undefined> = process.env): string {
  if (env.INCUS_REMOTE) return env.INCUS_REMOTE;
  const conf = env.INCUS_CONF || join(env.HOME || homedir(), ".config", "incus");
  return defaultRemote(join(conf, "config.yml"));
}

/** The CLI's default remote, from its config.yml (`local` when there is none). */
function defaultRemote(configYml: string): string {
  let text: string;
  try {
    text = readFileSync(configYml, "utf8");
  } catch {
    return "local";
  }
  const m = /^default-remote:[ \t]*["']?([^"'\s#]*)/m.exec(text);
  return m?.[1] || "local";
}

const NO_ANSWER = Symbol("no answer");

/** The daemon's answer: its type (`sync`, `async` for an operation) and metadata. */
interface Answer {
  type?: string;
  metadata: unknown;
}

/** One request on the daemon's unix socket: the answer's type and metadata. */
function socketRequest(
  socket: string,
  method: string,
  path: string,
  send?: { body: string; headers: Record<string, string> },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers = send ? { ...send.headers, "Content-Length": Buffer.byteLength(send.body) } : {};
    const req = request({ socketPath: socket, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        let body: { type?: string; error?: string; metadata?: unknown };
        try {
          body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        } catch {
          body = { type: "error", error: `HTTP ${res.statusCode}: not JSON` };
        }
        if (body.type === "error" || (res.statusCode ?? 500) >= 400) {
          const stderr = `Error: ${body.error ?? `HTTP ${res.statusCode}`}`;
          // Named as the CLI call that does the same: `incus query -X PATCH /1.0/...`.
          const as = method === "GET" ? ["query", path] : ["query", "-X", method, path];
          reject(new IncusError(as, { exitCode: 1, stdout: "", stderr }));
        } else resolve({ type: body.type, metadata: body.metadata ?? null });
      });
    });
    req.on("error", reject);
    req.end(send?.body);
  });
}

/**
 * Wait for the operation an `async` answer started (`GET
 * /1.0/operations/<id>/wait`): resolves when it succeeded; its failure, or
 * its still running after `seconds`, is an IncusError named as the request.
 */
async function waitOperation(
  socket: string,
  method: string,
  path: string,
  answer: Answer,
  seconds: number,
): Promise<void> {
  const id = (answer.metadata as { id?: string } | null)?.id;
  const as = ["query", "-X", method, path];
  const fail = (why: string) =>
    new IncusError(as, { exitCode: 1, stdout: "", stderr: `Error: ${why}` });
  if (!id) throw fail("the daemon started an operation without an id");
  // A failed operation may come back as an error answer of the wait itself.
  const answered = await socketRequest(
    socket,
    "GET",
    `/1.0/operations/${id}/wait?timeout=${seconds}`,
  ).catch((e: unknown) => {
    if (e instanceof IncusError) throw fail(e.result.stderr.replace(/^Error: /, ""));
    throw e;
  });
  const op = answered.metadata as { status?: string; err?: string } | null;
  if (op?.status === "Success") return;
  throw fail(
    op?.status === "Running" ? `not done after ${seconds} s` : op?.err || `operation ${op?.status}`,
  );
}

/**
 * One write through the daemon's unix socket, when reads take it
 * (`readVia()`): resolves true once the daemon did it (an `async` answer,
 * an operation such as an instance's creation, is waited for, `wait`
 * seconds at most), false when the socket is not the way to Incus or
 * refused the connection (the caller then runs the CLI); the daemon's own
 * error, or the operation's, is thrown. `how` chooses for one call, in
 * tests. Each write that goes this way saves an `incus` process
 * (docs/apply.md, the first apply: instance creation and nesting context).
 * @example await incusSend("PATCH", "/1.0/instances/a?project=p", JSON.stringify({ config }))
 */
export async function incusSend(
  method: "POST" | "PATCH" | "PUT",
  path: string,
  body: string,
  headers: Record<string, string> = { "Content-Type": "application/json" },
  how: ReadVia = readVia(),
  wait = 600,
): Promise<boolean> {
  if (!("socket" in how)) return false;
  logCall([method, path]);
  let answer: Answer;
  try {
    answer = await socketRequest(how.socket, method, path, { body, headers });
  } catch (e) {
    if (e instanceof IncusError) throw e;
    via = { cli: true };
    return false;
  }
  // Accepted: from here on a lost connection is an error, not a reason to
  // do it again through the CLI.
  if (answer.type === "async") await waitOperation(how.socket, method, path, answer, wait);
  return true;
}

/**
 * Read one REST path (`/1.0/...`, what `incus query` takes) and parse its
 * metadata through a schema, by the socket or the CLI (`readVia()`; `how`
 * chooses for one call, in tests).
 * @example await incusGet("/1.0/projects?recursion=1", v.array(IncusProjectSchema))
 */
export async function incusGet<S extends v.GenericSchema>(
  path: string,
  schema: S,
  how: ReadVia = readVia(),
): Promise<v.InferOutput<S>> {
  if ("socket" in how) {
    logCall(["GET", path]);
    const data = await socketRequest(how.socket, "GET", path).then(
      (a) => a.metadata,
      (e: unknown) => {
        // The daemon's own error is final; a connection that failed (no
        // daemon, no permission on the socket) is left to the CLI.
        if (e instanceof IncusError) throw e;
        via = { cli: true };
        return NO_ANSWER;
      },
    );
    if (data !== NO_ANSWER) return parseData(`GET ${path}`, data, schema);
  }
  const r = await incusRun(["query", path]);
  return parseAnswer(`incus query ${path}`, r.stdout, schema);
}

/** True when the incus daemon answers. */
export async function incusAvailable(): Promise<boolean> {
  try {
    const r = await incusRaw(["query", "/1.0"], { timeout: "10s" });
    return r.exitCode === 0;
  } catch {
    return false;
  }
}
