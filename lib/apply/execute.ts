/**
 * Run a Plan: `before` in order (its first failure stops everything), then
 * each instance's step list in order, at most `parallel` instances side by
 * side (a failure stops its own instance only), then `after` in order. The
 * step runner is a parameter, so the scheduling is unit-tested without Incus;
 * `incusRunner` is the real one (incus calls through lib/incus/client.ts).
 */
import { incusRaw, incusRun, incusSend, type ReadVia, readVia } from "../incus/client.ts";
import { DEFAULT_PARALLEL } from "./desired.ts";
import {
  CONTEXT_KEY,
  contextMarker,
  type NestingContext,
  type Plan,
  type Step,
} from "./reconcile.ts";

/** Runs one step: rejects when it failed; may resolve with a warning (a tolerated failure). */
export type StepRunner = (step: Step) => Promise<string | undefined>;

/** A step that failed, and the machine (`<project>/<name>`) it belonged to, if any. */
export interface Failure {
  machine?: string;
  step: string;
  error: string;
}

/** What running a plan did: every failure, and the warnings of tolerated failures. */
export interface Outcome {
  failures: Failure[];
  warnings: string[];
}

/** One line naming the machine, the step and why: `lab/a: create container from x failed (...): ...`. */
export function describeFailure(f: Failure): string {
  if (!f.machine) return `Step "${f.step}" failed: ${f.error}`;
  const step = f.step.startsWith(`${f.machine}: `) ? f.step.slice(f.machine.length + 2) : f.step;
  return `${f.machine}: ${step} failed (its later steps were skipped): ${f.error}`;
}

/** The closing line of a failed apply: every machine not converged, or null when none failed. */
export function notConverged(failures: Failure[], what: string): string | null {
  const machines = [...new Set(failures.flatMap((f) => (f.machine ? [f.machine] : [])))];
  if (machines.length === 0) return null;
  return `${what}: ${machines.length} machine(s) not converged: ${machines.join(", ")}; the others were converged`;
}

/** Runs `fn` when one of its slots is free: a bound shared by several plans. */
export type Limit = <T>(fn: () => Promise<T>) => Promise<T>;

/**
 * A bound of `n` tasks at a time, shared by whoever holds it (the instances
 * of several domains draw from one pool of `incus_instances_parallel`).
 * @example const limit = limiter(4); await Promise.all(jobs.map((j) => limit(j)))
 */
export function limiter(n: number): Limit {
  let free = Math.max(1, n);
  const waiting: (() => void)[] = [];
  return async (fn) => {
    if (free > 0) free--;
    else await new Promise<void>((res) => waiting.push(res));
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else free++;
    }
  };
}

/**
 * Run `plan` with `run`. Returns every failure (none: the plan converged).
 * `limit`, when given, bounds the instances together with other plans that
 * hold the same one.
 * @example await execute(plan, incusRunner({ timeout: 600 }), { parallel: 4 })
 */
export async function execute(
  plan: Plan,
  run: StepRunner,
  opts: { parallel?: number; limit?: Limit } = {},
): Promise<Outcome> {
  const out: Outcome = { failures: [], warnings: [] };
  /** Run steps in order; false at the first failure. */
  const serial = async (steps: Step[], machine?: string): Promise<boolean> => {
    for (const s of steps) {
      try {
        const warning = await run(s);
        if (warning) out.warnings.push(warning);
      } catch (e) {
        const error = e instanceof Error ? e.message : String(e);
        out.failures.push({ ...(machine ? { machine } : {}), step: s.desc, error });
        return false;
      }
    }
    return true;
  };
  if (!(await serial(plan.before))) return out;
  const queue = [...plan.perInstance];
  const limit = opts.limit ?? ((fn) => fn());
  const worker = async () => {
    for (let i = queue.shift(); i; i = queue.shift()) {
      const one = i;
      await limit(() => serial(one.steps, one.key));
    }
  };
  const n = Math.max(1, Math.min(opts.parallel ?? DEFAULT_PARALLEL, queue.length));
  await Promise.all(Array.from({ length: n }, worker));
  await serial(plan.after);
  return out;
}

/** The knobs of the real runner (from the instances role's desired state). */
export interface RunnerKnobs {
  /** Seconds one incus call may take (default 600). */
  timeout?: number;
  /** Tries and seconds between them while waiting for a VM agent (default 30 x 2). */
  vm_agent_retries?: number;
  vm_agent_delay?: number;
}

/** Poll `incus exec <vm> -- true` until the VM agent answers. */
export async function waitAgent(
  name: string,
  project: string,
  retries: number,
  delayS: number,
): Promise<void> {
  for (let i = 0; i < retries; i++) {
    const r = await incusRaw(["exec", name, "--project", project, "--", "true"], {
      timeout: "30s",
    });
    if (r.exitCode === 0) return;
    await new Promise((res) => setTimeout(res, delayS * 1000));
  }
  throw new Error(
    `Cannot reach the agent of VM "${project}/${name}" after ${retries} tries; check \`incus info ${name} --project ${project}\``,
  );
}

/** The POSIX sh program (run with `sh -c`) that writes the four context files. */
const CONTEXT_SCRIPT =
  'mkdir -p /etc/anklume && printf "%s\\n" "$1" > /etc/anklume/absolute_level && printf "%s\\n" "$2" > /etc/anklume/relative_level && printf "%s\\n" "$3" > /etc/anklume/vm_nested && printf "%s\\n" "$4" > /etc/anklume/yolo';

/**
 * Write a child's nesting context into /etc/anklume of the instance (four
 * files, operations-contract §3.5 step 13), then record it in
 * `user.anklume.context`: the record comes last, so a write that failed is
 * retried by the next apply. Through the daemon's socket when reads take it:
 * six small requests and no process (a fresh container: median 100 ms,
 * against 142 ms for the CLI's two `incus` processes; docs/apply.md, the
 * nesting context); else `incus exec` of a `sh` script and `incus config set`.
 */
export async function writeContext(
  name: string,
  project: string,
  c: NestingContext,
  timeout = "600s",
  how: ReadVia = readVia(),
): Promise<void> {
  const marker = contextMarker(c);
  const inst = `/1.0/instances/${encodeURIComponent(name)}`;
  const q = `project=${encodeURIComponent(project)}`;
  const file = (path: string, type: "file" | "directory", mode: string, body = "") =>
    incusSend(
      "POST",
      `${inst}/files?path=${encodeURIComponent(path)}&${q}`,
      body,
      {
        "Content-Type": "application/octet-stream",
        "X-Incus-type": type,
        "X-Incus-uid": "0",
        "X-Incus-gid": "0",
        "X-Incus-mode": mode,
        "X-Incus-write": "overwrite",
      },
      how,
    );
  if (await file("/etc/anklume", "directory", "0755")) {
    const values: Record<string, string> = {
      absolute_level: String(c.absolute_level),
      relative_level: String(c.relative_level),
      vm_nested: String(c.vm_nested),
      yolo: String(c.yolo),
    };
    const wrote = await Promise.all(
      Object.entries(values).map(([k, val]) =>
        file(`/etc/anklume/${k}`, "file", "0644", `${val}\n`),
      ),
    );
    const record = JSON.stringify({ config: { [CONTEXT_KEY]: marker } });
    // false: the socket refused a connection midway; the CLI does it all again.
    if (wrote.every(Boolean) && (await incusSend("PATCH", `${inst}?${q}`, record, undefined, how)))
      return;
  }
  const vals = [c.absolute_level, c.relative_level, c.vm_nested, c.yolo].map(String);
  const p = ["--project", project];
  await incusRun(["exec", name, ...p, "--", "sh", "-c", CONTEXT_SCRIPT, "sh", ...vals], {
    timeout,
  });
  await incusRun(["config", "set", name, `${CONTEXT_KEY}=${marker}`, ...p], { timeout });
}

/**
 * Create an instance through the daemon's socket (`POST /1.0/instances`, the
 * operation waited for): false when the socket is not the way to Incus, and
 * the step's `incus` arguments run instead.
 */
export function createInstance(
  c: NonNullable<Step["create"]>,
  timeoutS: number,
  how: ReadVia = readVia(),
): Promise<boolean> {
  const q = `project=${encodeURIComponent(c.project)}${c.target ? `&target=${encodeURIComponent(c.target)}` : ""}`;
  return incusSend("POST", `/1.0/instances?${q}`, JSON.stringify(c.body), undefined, how, timeoutS);
}

/** The step runner that calls incus. */
export function incusRunner(knobs: RunnerKnobs = {}): StepRunner {
  const timeout = knobs.timeout && knobs.timeout > 0 ? knobs.timeout : 600;
  return async (s) => {
    try {
      if (s.waitAgent) {
        await waitAgent(
          s.waitAgent.name,
          s.waitAgent.project,
          knobs.vm_agent_retries ?? 30,
          knobs.vm_agent_delay ?? 2,
        );
      } else if (s.context) {
        await writeContext(s.context.name, s.context.project, s.context.context, `${timeout}s`);
      } else if (s.create && (await createInstance(s.create, timeout))) {
        // Created (and started) through the socket.
      } else if (s.args) {
        await incusRun(s.args, { timeout: `${timeout}s` });
      }
      return undefined;
    } catch (e) {
      const msg = (e as Error).message;
      // Another apply created it meanwhile (v1 tolerated this race too): the next run reconciles it.
      if (s.args?.[1] === "create" && /already exists/.test(msg)) {
        return `${s.desc}: already exists (created concurrently); re-run apply to reconcile it`;
      }
      if (s.args?.[0] === "image" && s.args[1] === "copy" && s.args[2]?.includes(":")) {
        throw new Error(
          `Cannot download image "${s.args[2]}": ${msg}. No image server is reachable? Use a local image: make apply-infra OS_IMAGE=anklume-busybox (or set os_image in infra.yml)`,
        );
      }
      throw e;
    }
  };
}
