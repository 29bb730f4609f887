/**
 * The shape of infra.yml as a valibot schema. Every mapping a user writes is
 * strict (a typo is an error naming the closest known key); cross-entity rules
 * (unique subnets, IPs in their subnet, known profiles…) live in validate.ts.
 * Optional fields accept null as "absent", as v1 did.
 */
import * as v from "valibot";
import { closest, type Issue, typeName, type YamlPath } from "../core/issues.ts";

// Shared nodes and nullish (one wrapper, not optional(nullable())): valibot
// builds message strings for every schema node at import (~6 ms for this file
// with one node per use). A no-op sync never loads this module.
const opt = <S extends v.GenericSchema>(s: S) => v.nullish(s);
const optString = v.nullish(v.string());
const optBool = v.nullish(v.boolean());
const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max));
const scalar = v.union([v.string(), v.number(), v.boolean()]);
const configMap = v.record(v.string(), scalar);
const deviceMap = v.record(v.string(), v.record(v.string(), scalar));

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

export const ResourcePolicySchema = v.strictObject({
  host_reserve: opt(v.strictObject({ cpu: opt(reserveValue), memory: opt(reserveValue) })),
  mode: opt(v.picklist(["proportional", "equal"])),
  cpu_mode: opt(v.picklist(["allowance", "count"])),
  memory_enforce: opt(v.picklist(["soft", "hard"])),
  overcommit: optBool,
});

export const GlobalSchema = v.strictObject({
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
  // true, or a mapping checked against ResourcePolicySchema in shapeIssues.
  resource_policy: v.optional(v.unknown()),
});

const ServiceSchema = v.looseObject({
  name: v.string(),
  tool: v.picklist(SERVICE_TOOLS),
  consumers: opt(v.array(v.string())),
});

export const MachineSchema = v.strictObject({
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
  boot_priority: opt(int(0, 100)),
  snapshots_schedule: optString,
  snapshots_expiry: optString,
  config: opt(configMap),
  devices: opt(deviceMap),
  storage_volumes: opt(
    v.record(v.string(), v.strictObject({ pool: optString, size: optString, path: optString })),
  ),
  services: opt(v.array(ServiceSchema)),
  roles: opt(v.array(v.string())),
});

export const ProfileSchema = v.strictObject({
  description: optString,
  config: opt(configMap),
  devices: opt(deviceMap),
});

export const DomainSchema = v.strictObject({
  description: optString,
  subnet_id: int(0, 254),
  ephemeral: optBool,
  trust_level: opt(v.picklist(TRUST_LEVELS)),
  profiles: opt(v.record(v.string(), v.nullable(ProfileSchema))),
  machines: opt(v.record(v.string(), MachineSchema)),
});

export const PolicySchema = v.strictObject({
  description: optString,
  from: v.union([v.string()]),
  to: v.union([v.string()]),
  ports: opt(v.union([v.literal("all"), v.array(int(1, 65535))])),
  protocol: opt(v.picklist(["tcp", "udp"])),
  bidirectional: optBool,
});

export const InfraSchema = v.strictObject({
  project_name: v.nullable(v.string()),
  global: v.nullable(GlobalSchema),
  domains: v.nullable(v.record(v.string(), DomainSchema)),
  network_policies: opt(v.array(PolicySchema)),
});

export type Infra = v.InferOutput<typeof InfraSchema>;
export type Global = v.InferOutput<typeof GlobalSchema>;
export type Domain = v.InferOutput<typeof DomainSchema>;
export type Machine = v.InferOutput<typeof MachineSchema>;
export type Policy = v.InferOutput<typeof PolicySchema>;
export type ResourcePolicy = v.InferOutput<typeof ResourcePolicySchema>;

/** What each field expects, in words, for messages. */
const EXPECT: Record<string, string> = {
  subnet_id: "an integer from 0 to 254 (not quoted, not a boolean)",
  boot_priority: "an integer from 0 to 100",
  weight: "a positive integer (1, 2, 3…)",
  ports: "the word all or a list of port numbers from 1 to 65535, e.g. [22, 443]",
  profiles: "a list of profile names, e.g. [default]",
  roles: "a list of role names, e.g. [base_system]",
  config: "a mapping of Incus config keys to values",
  devices: "a mapping of device names to their Incus settings",
  machines: "a mapping of machine names to their settings",
  domains: "a mapping of domain names to their settings",
  services: "a list of service mappings with name and tool",
  consumers: "a list of machine names",
};

/** Known keys of each strict mapping, to suggest the closest one. */
function knownKeys(schema: v.GenericSchema | undefined): string[] {
  const s = schema as { entries?: Record<string, unknown> } | undefined;
  return s?.entries ? Object.keys(s.entries) : [];
}

/** The strict schema that owns the mapping at `path`, to list its known keys. */
function schemaAt(path: YamlPath): v.GenericSchema | undefined {
  const p = path.map((s) => (typeof s === "number" ? "#" : s));
  if (p.length === 0) return InfraSchema;
  if (p[0] === "global") {
    if (p.length === 1) return GlobalSchema;
    if (p[1] === "resource_policy") {
      return p.length === 2
        ? ResourcePolicySchema
        : (ResourcePolicySchema.entries.host_reserve.wrapped as v.GenericSchema);
    }
  }
  if (p[0] === "network_policies" && p.length === 2) return PolicySchema;
  if (p[0] === "domains") {
    if (p.length === 2) return DomainSchema;
    if (p[2] === "profiles" && p.length === 4) return ProfileSchema;
    if (p[2] === "machines" && p.length === 4) return MachineSchema;
    if (p[4] === "storage_volumes" && p.length === 6) {
      return v.strictObject({ pool: v.string(), size: v.string(), path: v.string() });
    }
  }
  return undefined;
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

/**
 * The shape issues of the merged infra, as valibot finds them: one Issue per
 * offending path. The generator calls it through `checkShape` (shape-check.ts)
 * only when the compiled check said no.
 */
export function shapeIssues(data: unknown): Issue[] {
  const out: Issue[] = [];
  const result = v.safeParse(InfraSchema, data, { abortEarly: false });
  const issues = result.success ? [] : [...result.issues];
  const rp = (data as { global?: { resource_policy?: unknown } } | null)?.global?.resource_policy;
  const rpPath = ["global", "resource_policy"];
  if (rp !== undefined && rp !== null && rp !== true) {
    if (typeof rp !== "object" || Array.isArray(rp)) {
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
  const field = [...path].reverse().find((s) => typeof s === "string") ?? "";
  if (issue.type === "strict_object" && issue.expected === "never") {
    const parent = path.slice(0, -1);
    const known = knownKeys(schemaAt(parent));
    const guess = closest(String(field), known);
    return {
      severity: "error",
      path,
      atKey: true,
      message: `unknown key ${JSON.stringify(field)}`,
      fix: guess
        ? `did you mean ${JSON.stringify(guess)}?`
        : `remove it; the keys allowed here are: ${known.join(", ")}`,
    };
  }
  if (issue.input === undefined && issue.kind === "schema") {
    return {
      severity: "error",
      path,
      atKey: true,
      message: `missing required key ${JSON.stringify(field)}`,
      fix: `add ${field}: <${EXPECT[field] ?? expectedWords(issue.expected)}>`,
    };
  }
  const want = EXPECT[field] ?? expectedWords(issue.expected);
  if (issue.kind === "validation") {
    return {
      severity: "error",
      path,
      message: `${typeName(issue.input)} is out of range: ${field} must be ${want}`,
      fix: `set ${field} to ${want}`,
    };
  }
  const got = typeName(issue.input);
  const hint =
    typeof issue.input === "string" && /^-?\d+$/.test(issue.input) && /integer|number/.test(want)
      ? ` (remove the quotes: ${field}: ${issue.input})`
      : "";
  return {
    severity: "error",
    path,
    message: `expected ${want}, got ${got}`,
    fix: `set ${field} to ${want}${hint}`,
  };
}
