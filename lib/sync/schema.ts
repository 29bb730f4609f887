/**
 * The shape of infra.yml as a valibot schema. Every mapping a user writes is
 * strict (a typo is an error naming the closest known key); cross-entity rules
 * (unique subnets, IPs in their subnet, known profiles…) live in validate.ts.
 * Optional fields accept null as "absent", as v1 did.
 *
 * Two valibot behaviours are corrected here, so that every key a user writes is
 * checked whatever its name, and a mapping is a mapping: valibot's `record`
 * skips the keys `__proto__`, `constructor` and `prototype` (a domain named
 * `prototype` would not be checked at all), and both `record` and `strictObject`
 * accept a list (or a date) where a mapping is required. `mapping` and `strict`
 * wrap them; the compiled check (_fast/schema-check.ts) answers the same.
 */
import * as v from "valibot";
import {
  closest,
  dateText,
  type Issue,
  isMapping,
  q,
  typeName,
  type YamlPath,
} from "../core/issues.ts";

interface Dataset {
  typed: boolean;
  value: unknown;
  issues?: v.BaseIssue<unknown>[];
}
type Run = (dataset: Dataset, config: v.Config<v.BaseIssue<unknown>>) => Dataset;
interface Runnable {
  "~run": Run;
}

/** The keys valibot's record skips (src/utils/_isValidObjectKey). */
const SKIPPED_KEYS = ["__proto__", "constructor", "prototype"] as const;

/** A strict object that refuses a list, a date or binary data (valibot takes them as objects). */
function strict<const E extends v.ObjectEntries>(entries: E) {
  const base = v.strictObject(entries);
  const run = base["~run"] as unknown as Run;
  return {
    ...base,
    "~run"(dataset: Dataset, config: v.Config<v.BaseIssue<unknown>>) {
      if (isMapping(dataset.value)) return run.call(this, dataset, config);
      v._addIssue(this as never, "type", dataset as never, config);
      return dataset;
    },
  } as unknown as typeof base;
}

/**
 * A map keyed by name (domains, machines, config…): valibot's record, but a list
 * is refused and the keys valibot skips are checked like any other.
 */
function mapping<const V extends v.GenericSchema>(value: V) {
  const base = v.record(v.string(), value);
  const run = base["~run"] as unknown as Run;
  return {
    ...base,
    "~run"(dataset: Dataset, config: v.Config<v.BaseIssue<unknown>>) {
      const input = dataset.value;
      if (!isMapping(input)) {
        v._addIssue(this as never, "type", dataset as never, config);
        return dataset;
      }
      const out = run.call(this, dataset, config);
      for (const key of SKIPPED_KEYS) {
        if (!Object.hasOwn(input, key)) continue;
        const entry = input[key];
        const r = (value as unknown as Runnable)["~run"]({ value: entry } as Dataset, config);
        if (r.issues) {
          const item = { type: "object", origin: "value", input, key, value: entry } as const;
          for (const issue of r.issues) {
            (issue as { path?: unknown[] }).path = [item, ...(issue.path ?? [])];
            if (out.issues) out.issues.push(issue);
            else out.issues = [issue];
          }
          out.typed = false;
        }
        if (isMapping(out.value)) {
          Object.defineProperty(out.value, key, {
            value: r.value,
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
      }
      return out;
    },
  } as unknown as typeof base;
}

// Shared nodes and nullish (one wrapper, not optional(nullable())): valibot
// builds message strings for every schema node at import (~6 ms for this file
// with one node per use). A no-op sync never loads this module.
const opt = <S extends v.GenericSchema>(s: S) => v.nullish(s);
const optString = v.nullish(v.string());
const optBool = v.nullish(v.boolean());
const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max));
const scalar = v.union([v.string(), v.number(), v.boolean()]);
const configMap = mapping(scalar);
const deviceMap = mapping(mapping(scalar));

export const TRUST_LEVELS = [
  "admin",
  "trusted",
  "semi-trusted",
  "untrusted",
  "disposable",
] as const;
export const SERVICE_TOOLS = [
  "clipboard_get",
  "clipboard_set",
  "file_accept",
  "file_provide",
  "gpg_sign",
] as const;

const reserveValue = v.union([v.string(), v.number()]);

export const ResourcePolicySchema = strict({
  host_reserve: opt(strict({ cpu: opt(reserveValue), memory: opt(reserveValue) })),
  mode: opt(v.picklist(["proportional", "equal"])),
  cpu_mode: opt(v.picklist(["allowance", "count"])),
  memory_enforce: opt(v.picklist(["soft", "hard"])),
  overcommit: optBool,
});

export const GlobalSchema = strict({
  // base_subnet is checked in validate.ts, to explain an unquoted 10.100.
  base_subnet: v.optional(v.unknown()),
  default_os_image: optString,
  default_connection: optString,
  default_user: optString,
  nesting_prefix: optBool,
  firewall_mode: opt(v.picklist(["host", "vm"])),
  gpu_policy: opt(v.picklist(["exclusive", "shared"])),
  ai_access_policy: opt(v.picklist(["exclusive", "open"])),
  ai_access_default: optString,
  ai_vram_flush: optBool,
  auto_cleanup: optBool,
  // auto, true, false or a proxy URL: checked in validate.ts (checkPackageCache).
  package_cache: v.optional(v.unknown()),
  // true, or a mapping checked against ResourcePolicySchema in shapeIssues.
  resource_policy: v.optional(v.unknown()),
  // The Incus remote every Incus call goes to (incus remote add): checked in validate.ts.
  incus_remote: v.optional(v.unknown()),
  // v1's zone-based addressing (lib/sync/addressing.ts): replaces base_subnet and subnet_id.
  addressing: opt(
    strict({
      base_octet: opt(int(0, 255)),
      zone_base: opt(int(0, 255)),
      zone_step: opt(int(1, 255)),
    }),
  ),
});

export const ServiceSchema = strict({
  name: v.string(),
  tool: v.picklist(SERVICE_TOOLS),
  consumers: opt(v.array(v.string())),
});

export const MachineSchema = strict({
  description: optString,
  type: opt(v.picklist(["lxc", "vm"])),
  // ip is checked in validate.ts (parsed, inside the domain's subnet).
  ip: v.optional(v.unknown()),
  os_image: optString,
  ephemeral: optBool,
  gpu: optBool,
  profiles: opt(v.array(v.string())),
  weight: opt(int(1)),
  boot_autostart: optBool,
  // The cluster member the machine runs on (docs/remote.md); checked in validate.ts.
  target: optString,
  boot_priority: opt(int(0, 100)),
  snapshots_schedule: optString,
  snapshots_expiry: optString,
  config: opt(configMap),
  devices: opt(deviceMap),
  storage_volumes: opt(mapping(strict({ pool: optString, size: optString, path: optString }))),
  services: opt(v.array(ServiceSchema)),
  roles: opt(v.array(v.string())),
  // Read by another v1 tool, not by anklume: accepted, noted once (foreign.ts).
  export_apps: v.optional(v.unknown()),
});

export const ProfileSchema = strict({
  description: optString,
  config: opt(configMap),
  devices: opt(deviceMap),
});

export const DomainSchema = strict({
  description: optString,
  // Required unless global.addressing chooses it (validate.ts).
  subnet_id: v.optional(int(0, 254)),
  ephemeral: optBool,
  trust_level: opt(v.picklist(TRUST_LEVELS)),
  // The cluster member of the domain's machines that name none (docs/remote.md).
  target: optString,
  profiles: opt(mapping(v.nullable(ProfileSchema))),
  machines: opt(mapping(MachineSchema)),
  // Read by another v1 tool, not by anklume: accepted, noted once (foreign.ts).
  file_portal: v.optional(v.unknown()),
});

export const PolicySchema = strict({
  description: optString,
  from: v.union([v.string()]),
  to: v.union([v.string()]),
  ports: opt(v.union([v.literal("all"), v.array(int(1, 65535))])),
  protocol: opt(v.picklist(["tcp", "udp"])),
  bidirectional: optBool,
});

export const InfraSchema = strict({
  project_name: v.nullable(v.string()),
  global: v.nullable(GlobalSchema),
  domains: v.nullable(mapping(DomainSchema)),
  network_policies: opt(v.array(PolicySchema)),
});

export type Infra = v.InferOutput<typeof InfraSchema>;
export type Global = v.InferOutput<typeof GlobalSchema>;
export type Domain = v.InferOutput<typeof DomainSchema>;
export type Machine = v.InferOutput<typeof MachineSchema>;
export type Policy = v.InferOutput<typeof PolicySchema>;
export type ResourcePolicy = v.InferOutput<typeof ResourcePolicySchema>;

/** What a field expects, in words, for messages (`field:type` first, for a name used twice). */
const EXPECT: Record<string, string> = {
  project_name: "the project's name, a string such as my-lab",
  global: "a mapping of global settings (base_subnet…)",
  subnet_id: "an integer from 0 to 254 (not quoted, not a boolean)",
  boot_priority: "an integer from 0 to 100",
  weight: "a positive integer (1, 2, 3…)",
  ports: "the word all or a list of port numbers from 1 to 65535, e.g. [22, 443]",
  "profiles:record": "a mapping of profile names to their settings",
  profiles: "a list of profile names, e.g. [default]",
  roles: "a list of role names, e.g. [base_system]",
  config: "a mapping of Incus config keys to values",
  devices: "a mapping of device names to their Incus settings",
  machines: "a mapping of machine names to their settings",
  domains: "a mapping of domain names to their settings",
  storage_volumes: "a mapping of volume names to their settings (pool, size, path)",
  host_reserve: "a mapping with cpu and memory",
  resource_policy: "true or a mapping (host_reserve, mode…)",
  services: "a list of service mappings with name and tool",
  consumers: "a list of machine names",
  from: "a domain name, a machine name or host",
  to: "a domain name, a machine name or host",
};

/** What the value of a named entry expects (`domains.<name>`…), and how to fix it. */
const VALUE_OF: Record<string, { want: string; fix: string }> = {
  domains: {
    want: "the domain's settings, a mapping (subnet_id, machines…)",
    fix: "write each domain as its name with its settings indented below, e.g. pro: {subnet_id: 1}; in a domains/*.yml file every top-level key is a domain name",
  },
  machines: {
    want: "the machine's settings, a mapping (ip, type…)",
    fix: 'write each machine as its name with its settings indented below, e.g. pro-dev: {ip: "10.100.1.10"}, or {} for the defaults',
  },
  profiles: {
    want: "the profile's settings, a mapping (config, devices)",
    fix: "write each profile as its name with its settings below, e.g. nesting: {config: {security.nesting: true}}",
  },
  devices: {
    want: "the device's Incus settings, a mapping (type…)",
    fix: "write each device as its name with its settings below, e.g. gpu: {type: gpu}",
  },
  "devices.*": {
    want: "a string, a number or true or false",
    fix: "give the device setting a single value",
  },
  config: {
    want: "a string, a number or true or false",
    fix: "give the config key a single value, e.g. limits.cpu: 2",
  },
  storage_volumes: {
    want: "the volume's settings, a mapping (pool, size, path)",
    fix: "write each volume as its name with its settings below, e.g. data: {pool: default, size: 10GiB}",
  },
};

/** What an item of a named list expects. */
const ITEM_OF: Record<string, string> = {
  ports: "a port number from 1 to 65535 (ports is the word all or a list of them, e.g. [22, 443])",
  profiles: "a profile name (a string)",
  roles: "a role name (a string)",
  consumers: "a machine name (a string)",
  services: "a mapping with name and tool",
  network_policies: "a mapping with from, to and ports",
};

interface SchemaNode {
  type: string;
  expects?: string;
  entries?: Record<string, SchemaNode>;
  wrapped?: SchemaNode;
  item?: SchemaNode;
  value?: SchemaNode;
  options?: unknown[];
  pipe?: { type: string }[];
}

const unwrap = (n: SchemaNode | undefined): SchemaNode | undefined => {
  let x = n;
  while (x && (x.type === "nullable" || x.type === "nullish" || x.type === "optional")) {
    x = x.wrapped;
  }
  return x;
};

/** Where a path leads in the schema: the node, and what it is (an entry of a strict mapping, a value of a named map, a list item). */
interface At {
  node: SchemaNode | undefined;
  role: "root" | "entry" | "value" | "item";
  /** The entry's name; for a value or an item, the name of the map or list (`devices.*` for a value of a value). */
  field: string;
}

function nodeAt(path: YamlPath): At {
  let at: At = { node: InfraSchema as unknown as SchemaNode, role: "root", field: "" };
  for (let i = 0; i < path.length; i++) {
    let n = unwrap(at.node);
    if (i === 2 && path[0] === "global" && path[1] === "resource_policy") {
      n = ResourcePolicySchema as unknown as SchemaNode;
    }
    if (n?.type === "union") {
      const want = typeof path[i] === "number" ? "array" : "strict_object";
      n = (n.options as SchemaNode[]).map(unwrap).find((o) => o?.type === want);
    }
    const seg = path[i] as string | number;
    if (n?.entries) {
      const key = String(seg);
      at = {
        node: Object.hasOwn(n.entries, key) ? n.entries[key] : undefined,
        role: "entry",
        field: key,
      };
    } else if (n?.type === "record") {
      at = {
        node: n.value,
        role: "value",
        field: at.role === "value" ? `${at.field}.*` : at.field,
      };
    } else if (n?.type === "array") {
      at = { node: n.item, role: "item", field: at.field };
    } else {
      return { node: undefined, role: at.role, field: at.field };
    }
  }
  return at;
}

/** A schema node in words ("a string", "true or false", "a mapping"…), or undefined. */
function nodeWords(node: SchemaNode | undefined): string | undefined {
  const n = unwrap(node);
  if (!n) return undefined;
  switch (n.type) {
    case "string":
      return "a string";
    case "number":
      return n.pipe?.some((p) => p.type === "integer") ? "an integer" : "a number";
    case "boolean":
      return "true or false";
    case "picklist":
      return (n.options as unknown[]).map((o) => JSON.stringify(o)).join(" or ");
    case "strict_object":
    case "record":
      return "a mapping";
    case "array":
      return "a list";
    case "union": {
      const parts = (n.options as SchemaNode[]).map(nodeWords);
      return parts.every(Boolean) ? [...new Set(parts)].join(" or ") : undefined;
    }
    default:
      return undefined;
  }
}

/** What is expected at `at`, in words. */
function wanted(at: At, expected: string | null | undefined): string {
  if (at.role === "entry") {
    const type = unwrap(at.node)?.type;
    return EXPECT[`${at.field}:${type}`] ?? EXPECT[at.field] ?? expectedWords(expected);
  }
  if (at.role === "value") return VALUE_OF[at.field]?.want ?? expectedWords(expected);
  if (at.role === "item") return ITEM_OF[at.field] ?? expectedWords(expected);
  return expectedWords(expected);
}

function expectedWords(expected: string | null | undefined): string {
  if (!expected) return "something else";
  return expected
    .replace(/^\((.*)\)$/, "$1")
    .replaceAll(" | ", " or ")
    .replace(/^Object$/, "a mapping")
    .replace(/^Array$/, "a list")
    .replace(/^string$/, "a string")
    .replace(/^number$/, "a number")
    .replace(/^boolean$/, "true or false")
    .replace(/^true$/, "true or a mapping");
}

/** The whole file is not a mapping (an empty file is null). */
const NOT_A_MAPPING_FIX = "start from infra.example.yml: project_name, global and domains";

/**
 * The shape issues of the merged infra, as valibot finds them: one Issue per
 * offending path. The generator calls it through `checkShape` (shape-check.ts)
 * only when the compiled check said no.
 */
export function shapeIssues(data: unknown): Issue[] {
  const out: Issue[] = [];
  const result = v.safeParse(InfraSchema, data, { abortEarly: false });
  const issues = result.success ? [] : [...result.issues];
  const global = isMapping(data) ? data.global : undefined;
  const rp = isMapping(global) ? global.resource_policy : undefined;
  const rpPath = ["global", "resource_policy"];
  if (rp !== undefined && rp !== null && rp !== true) {
    if (!isMapping(rp)) {
      out.push({
        severity: "error",
        path: rpPath,
        message: `expected true or a mapping, got ${typeName(rp)}`,
        fix: "set resource_policy: true for the defaults, or a mapping (host_reserve, mode…); remove it to turn allocation off",
      });
    } else {
      const r = v.safeParse(ResourcePolicySchema, rp, { abortEarly: false });
      if (!r.success) issues.push(...r.issues.map((i) => ({ ...i, prefix: rpPath })));
    }
  }
  if (issues.length === 0) return out;
  const seen = new Set<string>();
  for (const issue of issues) {
    const prefix = (issue as { prefix?: string[] }).prefix ?? [];
    const path: (string | number)[] = [
      ...prefix,
      ...(issue.path ?? []).map((p) => p.key as string | number),
    ];
    const key = JSON.stringify(path);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(describe(issue, path));
  }
  return out;
}

function describe(issue: v.BaseIssue<unknown>, path: (string | number)[]): Issue {
  const field = String(path.at(-1) ?? "");
  if (path.length === 0) {
    return {
      severity: "error",
      path,
      message: `the file must be a mapping with project_name, global and domains, got ${issue.input === null || issue.input === undefined ? "nothing (an empty file is null)" : typeName(issue.input)}`,
      fix: NOT_A_MAPPING_FIX,
    };
  }
  if (issue.type === "strict_object" && issue.expected === "never") {
    const owner = unwrap(nodeAt(path.slice(0, -1)).node);
    const known = owner?.entries ? Object.keys(owner.entries) : [];
    const guess = closest(field, known);
    return {
      severity: "error",
      path,
      atKey: true,
      message: `unknown key ${q(field)}`,
      fix: guess
        ? `did you mean ${JSON.stringify(guess)}?`
        : `remove it; the keys allowed here are: ${known.join(", ")}`,
    };
  }
  const at = nodeAt(path);
  if (issue.input === undefined && issue.kind === "schema") {
    const want = EXPECT[field] ?? nodeWords(at.node) ?? "a value";
    return {
      severity: "error",
      path,
      atKey: true,
      message: `missing required key ${JSON.stringify(field)}`,
      fix: `add ${field}: <${want}>`,
    };
  }
  const want = wanted(at, issue.expected);
  const value = at.role === "value" ? VALUE_OF[at.field] : undefined;
  const name =
    at.role === "value" ? q(field) : at.role === "item" ? `${at.field}[${field}]` : field;
  if (issue.kind === "validation") {
    return {
      severity: "error",
      path,
      message: `${typeName(issue.input)} is out of range: ${name} must be ${want}`,
      fix: `set ${name} to ${want}`,
    };
  }
  const got = typeName(issue.input);
  const hint =
    typeof issue.input === "string" && /^-?\d+$/.test(issue.input) && /integer|number/.test(want)
      ? ` (remove the quotes: ${field}: ${issue.input})`
      : issue.input instanceof Date && /string/.test(want)
        ? ` (quote it: ${field}: "${dateText(issue.input)}")`
        : issue.input instanceof Uint8Array && /string/.test(want)
          ? " (write the text itself, without !!binary)"
          : "";
  return {
    severity: "error",
    path,
    message: `expected ${want}, got ${got}`,
    fix: value ? `${value.fix}${hint}` : `set ${name} to ${want}${hint}`,
  };
}
