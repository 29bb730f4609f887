/**
 * `bootstrap.sh --prod`, the Incus part (SPEC-operations §12,
 * operations-contract §6.9): the storage backend chosen from the filesystem
 * that holds Incus's storage, the preseed that creates what is missing, and
 * the admin instance `anklume-instance` with the host's Incus socket, the
 * repository and the host's nesting context (the backend and the preseed
 * are in `storage-backend.ts`). Pure: observed state in, a list
 * of incus calls out; `prod-run.ts` reads the state and runs them.
 *
 * Idempotent by construction: only what is missing is created, a device that
 * differs gets the differing keys set, and an existing pool or instance is
 * never recreated or moved.
 */
import { type Backend, renderPreseed } from "./storage-backend.ts";

/** What the plan reads from Incus. */
export interface ProdObserved {
  pools: { name: string; driver: string; config: Record<string, string> }[];
  /** The default profile's devices (project default). */
  profileDevices: Record<string, Record<string, string>>;
  /** The admin instance in project default, if it exists. */
  instance: {
    status: string;
    devices: Record<string, Record<string, string>>;
    expandedDevices: Record<string, Record<string, string>>;
  } | null;
  /** Image aliases of project default. */
  aliases: string[];
}

/** What `--prod` wants. */
export interface ProdWanted {
  pool: string;
  backend: Backend;
  instance: string;
  image: string;
  /** The anklume checkout on the host, mounted read-write in the admin instance. */
  repo: string;
  /** The host's nesting context directory, mounted read-only at /etc/anklume. */
  contextDir: string;
  /** The host's Incus socket. */
  hostSocket: string;
  /**
   * The host's tools anklume runs with, mounted read-only at the same use
   * inside (`hostTools()` in prod-run.ts): name -> host path and path inside.
   */
  tools?: Record<string, { source: string; path: string }>;
}

/** Where the admin instance sees the repository (the admin_bootstrap role's default). */
export const ADMIN_REPO_PATH = "/root/anklume";
/** Where the admin instance sees the host's Incus socket: Incus's own default path, on disk. */
export const ADMIN_SOCKET_DIR = "/var/lib/incus";
export const ADMIN_SOCKET_PATH = `${ADMIN_SOCKET_DIR}/unix.socket`;

/**
 * The admin instance's devices: the host's socket, the checkout, the nesting
 * context, and one read-only disk per host tool (`anklume-tool-<name>`).
 */
export function adminDevices(w: ProdWanted): Record<string, Record<string, string>> {
  const tools: Record<string, Record<string, string>> = {};
  for (const [name, t] of Object.entries(w.tools ?? {}))
    tools[`anklume-tool-${name}`] = {
      type: "disk",
      source: t.source,
      path: t.path,
      readonly: "true",
    };
  return {
    "incus-socket": {
      type: "proxy",
      connect: `unix:${w.hostSocket}`,
      listen: `unix:${ADMIN_SOCKET_PATH}`,
      bind: "container",
      uid: "0",
      gid: "0",
      mode: "0660",
      "security.uid": "0",
      "security.gid": "0",
    },
    "anklume-repo": { type: "disk", source: w.repo, path: ADMIN_REPO_PATH, shift: "true" },
    "anklume-context": {
      type: "disk",
      source: w.contextDir,
      path: "/etc/anklume",
      readonly: "true",
    },
    ...tools,
  };
}

/** One incus call of the plan: its arguments, stdin, and the lines it prints. */
export interface ProdAction {
  args: string[];
  input?: string;
  done: string;
  would: string;
}

/** The plan: what to run, and what is already right (`ok` lines). */
export interface ProdPlan {
  actions: ProdAction[];
  ok: string[];
  /** The preseed to write and apply, when something must be created. */
  preseed: string | null;
  errors: string[];
}

const kv = (d: Record<string, string>) => Object.entries(d).map(([k, v]) => `${k}=${v}`);

/** The name of the device that mounts `/` from a disk, if any. */
function rootDevice(devices: Record<string, Record<string, string>>): string | undefined {
  return Object.entries(devices).find(([, d]) => d.type === "disk" && d.path === "/")?.[0];
}

/** Plan `--prod`'s Incus part from what is there. */
export function planProd(o: ProdObserved, w: ProdWanted): ProdPlan {
  const plan: ProdPlan = { actions: [], ok: [], preseed: null, errors: [] };
  const pool = o.pools.find((p) => p.name === w.pool);
  const root = rootDevice(o.profileDevices);
  const preseed: { pool?: { name: string; backend: Backend }; root?: string } = {};
  if (pool) {
    const src = pool.config.source ? `, source ${pool.config.source}` : "";
    const differs =
      pool.driver !== w.backend.driver
        ? ` (kept; the filesystem would suggest ${w.backend.driver}: an existing pool is never recreated)`
        : "";
    plan.ok.push(`storage pool "${w.pool}" present (driver ${pool.driver}${src})${differs}`);
  } else {
    preseed.pool = { name: w.pool, backend: w.backend };
  }
  if (root) {
    plan.ok.push(`default profile has a root disk (pool=${o.profileDevices[root]?.pool}): kept`);
  } else {
    preseed.root = w.pool;
  }
  if (preseed.pool || preseed.root) {
    plan.preseed = renderPreseed(preseed);
    const what = [
      preseed.pool &&
        `storage pool "${w.pool}" (driver ${w.backend.driver}${w.backend.source ? `, source ${w.backend.source}` : ""}; ${w.backend.reason})`,
      preseed.root && `root disk on pool "${w.pool}" in the default profile`,
    ]
      .filter(Boolean)
      .join(" and ");
    plan.actions.push({
      args: ["admin", "init", "--preseed"],
      input: plan.preseed,
      done: `preseed applied: ${what}`,
      would: `would apply a preseed: ${what}`,
    });
  }

  const name = w.instance;
  const devices = adminDevices(w);
  const inst = o.instance;
  if (!inst) {
    if (!o.aliases.includes(w.image)) {
      plan.errors.push(
        `Cannot create the admin instance "${name}": image "${w.image}" is not in the default project; build it with: bun scripts/build-image.ts debian12 (or set ANKLUME_ADMIN_IMAGE to an image alias you have)`,
      );
      return plan;
    }
    plan.actions.push({
      args: ["init", w.image, name, "--project", "default", "--storage", w.pool],
      input: "\n",
      done: `admin instance "${name}" created from ${w.image} on pool "${w.pool}"`,
      would: `would create the admin instance "${name}" from ${w.image} on pool "${w.pool}"`,
    });
  } else {
    const rootPool = inst.expandedDevices[rootDevice(inst.expandedDevices) ?? ""]?.pool;
    plan.ok.push(`admin instance "${name}" present (pool ${rootPool ?? "?"}, ${inst.status})`);
  }
  const live = inst?.devices ?? {};
  for (const [dev, want] of Object.entries(devices)) {
    const have = live[dev];
    if (!have) {
      if (dev === "incus-socket") {
        // The proxy listens in a directory that must exist before it starts.
        plan.actions.push({
          args: [
            "file",
            "create",
            "-p",
            "--type=directory",
            `${name}${ADMIN_SOCKET_DIR}/`,
            "--project",
            "default",
          ],
          done: `admin instance: ${ADMIN_SOCKET_DIR} created for the socket`,
          would: `would create ${ADMIN_SOCKET_DIR} in the admin instance`,
        });
      }
      const { type, ...keys } = want;
      plan.actions.push({
        args: [
          "config",
          "device",
          "add",
          name,
          dev,
          type as string,
          ...kv(keys),
          "--project",
          "default",
        ],
        done: `admin instance: device ${dev} added (${describeDevice(want)})`,
        would: `would add device ${dev} to the admin instance (${describeDevice(want)})`,
      });
      continue;
    }
    if (have.type !== want.type) {
      plan.errors.push(
        `Cannot set up device "${dev}" of "${name}": it exists as a ${have.type} device, anklume needs a ${want.type} device; remove it (incus config device remove ${name} ${dev}) and rerun`,
      );
      continue;
    }
    const diff = Object.fromEntries(
      Object.entries(want).filter(([k, v]) => k !== "type" && have[k] !== v),
    );
    if (Object.keys(diff).length === 0) {
      plan.ok.push(`admin instance: device ${dev} (${describeDevice(want)})`);
    } else {
      plan.actions.push({
        args: ["config", "device", "set", name, dev, ...kv(diff), "--project", "default"],
        done: `admin instance: device ${dev} updated (${kv(diff).join(" ")})`,
        would: `would set ${kv(diff).join(" ")} on device ${dev} of the admin instance`,
      });
    }
  }
  if (inst?.status === "Running") {
    plan.ok.push(`admin instance "${name}" running`);
  } else {
    plan.actions.push({
      args: ["start", name, "--project", "default"],
      done: `admin instance "${name}" started`,
      would: `would start the admin instance "${name}"`,
    });
  }
  return plan;
}

/** A device in one short phrase. */
function describeDevice(d: Record<string, string>): string {
  if (d.type === "proxy") return `${d.connect} -> ${d.listen}`;
  return `${d.source} -> ${d.path}${d.readonly === "true" ? ", read-only" : ""}`;
}
