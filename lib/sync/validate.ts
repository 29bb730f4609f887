/**
 * Cross-entity validation of infra.yml: the rules a field-by-field schema
 * cannot express (unique names, subnets and IPs, addresses inside their
 * domain, known profiles and policy endpoints, GPU and privileged policies,
 * AI access, resource reserves, host subnet conflicts).
 *
 * It runs on the raw parsed data and checks types defensively, so it can run
 * even when the schema found errors: every problem is reported at once.
 */
import { contains, formatCidr, overlaps, parseCidr, parseIpv4 } from "../core/cidr.ts";
import { closest, err, type Issue, info, q, typeName, warn } from "../core/issues.ts";
import {
  isAnklumeBridge,
  parseBaseSubnet,
  RESERVED_NAMES,
  reservedBaseSubnet,
} from "../core/naming.ts";
import type { GeneratorContext } from "../core/nesting.ts";
import { isPackageCacheSetting } from "../provision/package-cache.ts";
import { addressingIssues, domainBase } from "./addressing.ts";
import type { HostNetwork } from "./host.ts";
import { MANAGED_BEGIN, MANAGED_END } from "./managed.ts";
import { parseSize } from "./resources.ts";

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === "object" && x !== null && !Array.isArray(x);
const entries = (x: unknown): [string, unknown][] => (isObj(x) ? Object.entries(x) : []);

/** Domain and machine names: DNS labels (lowercase, digits, inner hyphens). */
export const NAME_RE = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/** Inputs that do not come from infra.yml. */
export interface ValidationEnv {
  context: GeneratorContext;
  /** Prefix for Incus names ("001-" or ""). */
  prefix: string;
  /** Host networks for the conflict check; null skips it (anklume's own bridges never conflict). */
  hostNetworks: HostNetwork[] | null;
}

/** A machine is a GPU instance if `gpu` is true or one of its profiles (same domain) has a gpu device. */
function isGpuMachine(m: Obj, domainProfiles: Obj): boolean {
  if (m.gpu === true) return true;
  const profiles = Array.isArray(m.profiles) ? m.profiles : [];
  return profiles.some((p) =>
    entries(
      Object.hasOwn(domainProfiles, String(p)) ? (domainProfiles[String(p)] as Obj)?.devices : null,
    ).some(([, dev]) => isObj(dev) && dev.type === "gpu"),
  );
}

/** Why a domain or machine cannot take the name `name` (RESERVED_NAMES), as an issue. */
function reservedName(path: (string | number)[], kind: string, name: string): Issue | undefined {
  const why = RESERVED_NAMES.get(name);
  if (why === undefined) return undefined;
  return err(
    path,
    `${q(name)} cannot be a ${kind} name: it is reserved (${why})`,
    `rename the ${kind}, e.g. ${name}-1 or my-${name}`,
    true,
  );
}

/** Which managed-block marker `text` holds, if any. */
function markerIn(text: string): string | undefined {
  if (!text.includes("# === ")) return undefined;
  if (text.includes(MANAGED_BEGIN)) return MANAGED_BEGIN;
  return text.includes(MANAGED_END) ? MANAGED_END : undefined;
}

/**
 * A managed-block marker inside a key or a string value would end the block
 * early in the generated file and break every later sync: one error per place.
 * JSON keeps both markers as they are, so one native JSON.stringify says
 * whether to look at all (~1 ms on 1,000 machines, where a walk costs ~10 ms
 * in a cold process); it throws on a structure that contains itself (a YAML
 * alias inside its own anchor), and the walk then skips what it is already in.
 */
function checkMarkers(out: Issue[], data: unknown): void {
  try {
    if (!JSON.stringify(data).includes("# === ")) return;
  } catch {
    // A cycle: walk it.
  }
  walkMarkers(out, data, [], new Set());
}

/** `path` is a stack, copied only for an error; `inside` holds the objects being walked. */
function walkMarkers(
  out: Issue[],
  value: unknown,
  path: (string | number)[],
  inside: Set<object>,
): void {
  const found = (marker: string, what: string, fix: string, atKey = false) =>
    out.push(
      err(
        [...path],
        `the ${what} holds ${q(marker)}, the marker of the block that make sync manages in each generated file`,
        fix,
        atKey,
      ),
    );
  if (typeof value === "string") {
    const marker = markerIn(value);
    if (marker) found(marker, "value", "reword it (e.g. without the === or the #)");
    return;
  }
  if (typeof value !== "object" || value === null || inside.has(value)) return;
  inside.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      path.push(i);
      walkMarkers(out, value[i], path, inside);
      path.pop();
    }
  } else {
    const obj = value as Obj;
    for (const k in obj) {
      path.push(k);
      const marker = markerIn(k);
      if (marker) found(marker, "key", "rename the key", true);
      walkMarkers(out, obj[k], path, inside);
      path.pop();
    }
  }
  inside.delete(value);
}

/** Run every cross-entity rule; returns errors and warnings. */
export function validateInfra(data: unknown, env: ValidationEnv): Issue[] {
  const out: Issue[] = [];
  // A file that is not a mapping is reported once, by the shape check.
  if (!isObj(data)) return out;
  checkMarkers(out, data);
  const global = isObj(data.global) ? data.global : {};
  const domains = isObj(data.domains) ? data.domains : {};

  // Base subnet: a quoted "A.B".
  const rawBase = global.base_subnet;
  if (rawBase !== undefined && rawBase !== null) {
    const parsed = parseBaseSubnet(rawBase);
    const reserved = parsed ? reservedBaseSubnet(parsed) : null;
    if (parsed && reserved) {
      out.push(
        err(
          ["global", "base_subnet"],
          `${q(rawBase)} cannot hold anklume's networks: ${reserved}`,
          `use a private range, e.g. base_subnet: "10.100" (or "172.16", "192.168")`,
        ),
      );
    } else if (parsed) {
      // A usable base, read above.
    } else if (typeof rawBase === "number") {
      out.push(
        err(
          ["global", "base_subnet"],
          `YAML read the unquoted value as the number ${rawBase}, not as two octets`,
          `quote it, e.g. base_subnet: "10.100"`,
        ),
      );
    } else {
      out.push(
        err(
          ["global", "base_subnet"],
          `${q(rawBase)} is not the first two octets of an IPv4 network`,
          `write two octets in quotes, e.g. base_subnet: "10.100"`,
        ),
      );
    }
  }

  // v1's zone-based addressing: its own settings (enrich.ts applied it).
  // Present at all (even malformed, which the shape check reports): subnet_id is optional.
  const zoned = global.addressing !== undefined && global.addressing !== null;
  if (zoned) {
    const a = addressingIssues(data);
    for (const [path, message, fix] of a.errors) out.push(err(path, message, fix));
    for (const [path, message, fix] of a.warnings) out.push(warn(path, message, fix));
  }

  // Domains: names, subnet ids, profiles; collect machines. A /24 is one
  // domain's: "<first two octets>.<subnet_id>" (the octets differ by zone
  // under addressing).
  const subnetOwner = new Map<string, string>();
  const machineDomain = new Map<string, string>();
  const ipOwner = new Map<string, string>();
  const gpuMachines: { name: string; path: string[] }[] = [];
  for (const [d, dom] of entries(domains)) {
    const dp = ["domains", d];
    if (!NAME_RE.test(d)) {
      out.push(
        err(
          dp,
          `invalid domain name ${q(d)}`,
          "use lowercase letters, digits and hyphens (not first or last), e.g. pro-2",
          true,
        ),
      );
    } else if (RESERVED_NAMES.has(d)) {
      out.push(reservedName(dp, "domain", d) as Issue);
    } else if (`${env.prefix}${d}`.length > 63) {
      out.push(
        err(
          dp,
          `domain name ${q(d)} is too long for an Incus name`,
          "use at most 59 characters",
          true,
        ),
      );
    }
    if (!isObj(dom)) continue;
    const sid = dom.subnet_id;
    const dbase = domainBase(global, dom);
    if (sid === undefined && !zoned) {
      const missing = err(
        [...dp, "subnet_id"],
        'missing required key "subnet_id"',
        "add subnet_id: <an integer from 0 to 254 (not quoted, not a boolean)>, or let global.addressing choose it",
      );
      missing.locateAt = dp;
      out.push(missing);
    }
    if (typeof sid === "number" && Number.isInteger(sid) && sid >= 0 && sid <= 254) {
      const key = `${dbase}.${sid}`;
      const first = subnetOwner.get(key);
      if (first !== undefined) {
        out.push(
          err(
            [...dp, "subnet_id"],
            `subnet_id ${sid} is already used by domain ${q(first)}`,
            `give each domain its own subnet_id (0-254); ${freeSubnetHint(subnetOwner, dbase)}`,
          ),
        );
      } else subnetOwner.set(key, d);
    }
    const profiles = isObj(dom.profiles) ? dom.profiles : {};
    for (const [p] of entries(profiles)) {
      if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(p)) {
        out.push(
          err(
            [...dp, "profiles", p],
            `invalid profile name ${q(p)}`,
            "use letters, digits, '-', '_' or '.'",
            true,
          ),
        );
      }
    }
    const sidOk = typeof sid === "number" && Number.isInteger(sid) && sid >= 0 && sid <= 254;
    const subnet = sidOk ? parseCidr(`${dbase}.${sid}.0/24`) : null;
    for (const [m, mach] of entries(dom.machines)) {
      const mp = [...dp, "machines", m];
      if (!NAME_RE.test(m)) {
        out.push(
          err(
            mp,
            `invalid machine name ${q(m)}`,
            "use lowercase letters, digits and hyphens (not first or last), e.g. pro-dev",
            true,
          ),
        );
      } else if (RESERVED_NAMES.has(m)) {
        out.push(reservedName(mp, "machine", m) as Issue);
      } else if (`${env.prefix}${m}`.length > 63) {
        out.push(
          err(
            mp,
            `machine name ${q(m)} is too long: Incus names are at most 63 characters with the ${q(env.prefix)} prefix`,
            `shorten it to ${63 - env.prefix.length} characters or less`,
            true,
          ),
        );
      }
      const firstDomain = machineDomain.get(m);
      if (firstDomain !== undefined) {
        out.push(
          err(
            mp,
            `machine ${q(m)} is already defined in domain ${q(firstDomain)}`,
            "machine names must be unique across all domains; rename one",
            true,
          ),
        );
      } else machineDomain.set(m, d);
      if (!isObj(mach)) continue;
      checkMachine(out, mp, m, mach, { d, profiles, subnet, base: dbase, sid, env, ipOwner });
      if (isGpuMachine(mach, profiles)) gpuMachines.push({ name: m, path: mp });
    }
  }
  for (const m of machineDomain.keys()) {
    if (Object.hasOwn(domains, m)) {
      out.push(
        warn(
          ["domains", machineDomain.get(m) as string, "machines", m],
          `machine ${q(m)} has the same name as a domain: network policies naming it mean the domain`,
          "rename the machine",
        ),
      );
    }
  }

  // Services' consumers are known machines.
  for (const [d, dom] of entries(domains)) {
    if (!isObj(dom)) continue;
    for (const [m, mach] of entries(dom.machines)) {
      if (!isObj(mach) || !Array.isArray(mach.services)) continue;
      mach.services.forEach((svc, i) => {
        if (!isObj(svc) || !Array.isArray(svc.consumers)) return;
        svc.consumers.forEach((c, j) => {
          if (typeof c === "string" && !machineDomain.has(c)) {
            const guess = closest(c, machineDomain.keys());
            out.push(
              err(
                ["domains", d, "machines", m, "services", i, "consumers", j],
                `service ${q(svc.name)} consumer ${q(c)} is not a known machine`,
                guess ? `did you mean ${q(guess)}?` : "name a machine defined in domains",
              ),
            );
          }
        });
      });
    }
  }

  // GPU policy.
  const gpuPolicy = global.gpu_policy ?? "exclusive";
  const gpuNames = gpuMachines.map((g) => g.name).join(", ");
  if (gpuMachines.length > 1 && gpuPolicy === "exclusive") {
    out.push(
      err(
        (gpuMachines[1] as { path: string[] }).path,
        `GPU policy is 'exclusive' but ${gpuMachines.length} instances have GPU access: ${gpuNames}`,
        "give the GPU to one machine only, or set global.gpu_policy: shared",
        true,
      ),
    );
  } else if (gpuMachines.length > 1 && gpuPolicy === "shared") {
    out.push(
      warn(
        ["global", "gpu_policy"],
        `GPU policy is 'shared': ${gpuMachines.length} instances share GPU access (${gpuNames}). No VRAM isolation on consumer GPUs.`,
      ),
    );
  }

  // Network policies.
  const known = new Set(["host", ...Object.keys(domains), ...machineDomain.keys()]);
  const policies = Array.isArray(data.network_policies) ? data.network_policies : [];
  // One suggestion per unknown name, however many policies repeat it.
  const guesses = new Map<string, string | undefined>();
  policies.forEach((pol, i) => {
    if (!isObj(pol)) return;
    for (const field of ["from", "to"] as const) {
      const ref = pol[field];
      if (typeof ref === "string" && !known.has(ref)) {
        if (!guesses.has(ref)) guesses.set(ref, closest(ref, known));
        const guess = guesses.get(ref);
        out.push(
          err(
            ["network_policies", i, field],
            `${q(ref)} is not a known domain, machine, or 'host'`,
            guess ? `did you mean ${q(guess)}?` : "name a domain, a machine, or host",
          ),
        );
      }
    }
  });

  // AI access.
  if (global.ai_access_policy === "exclusive") {
    const def = global.ai_access_default;
    const path = ["global", "ai_access_default"];
    if (def === undefined || def === null || def === "") {
      out.push(
        err(
          ["global", "ai_access_policy"],
          "ai_access_default is required when ai_access_policy is 'exclusive'",
          "set it to the domain that may reach ai-tools, e.g. ai_access_default: pro",
        ),
      );
    } else if (def === "ai-tools") {
      out.push(
        err(
          path,
          "ai_access_default cannot be 'ai-tools' (it must be a client domain)",
          "name the domain that uses the AI services",
        ),
      );
    } else if (typeof def === "string" && !Object.hasOwn(domains, def)) {
      const guess = closest(def, Object.keys(domains));
      out.push(
        err(
          path,
          `${q(def)} is not a known domain`,
          guess ? `did you mean ${q(guess)}?` : "name one of the domains",
        ),
      );
    }
    if (!Object.hasOwn(domains, "ai-tools")) {
      out.push(
        err(
          ["global", "ai_access_policy"],
          "ai_access_policy is 'exclusive' but no 'ai-tools' domain exists",
          "add an ai-tools domain, or set ai_access_policy: open",
        ),
      );
    }
    const toAi = policies.filter((p) => isObj(p) && p.to === "ai-tools").length;
    if (toAi > 1) {
      out.push(
        err(
          ["network_policies"],
          `ai_access_policy is 'exclusive' but ${toAi} network_policies target ai-tools (max 1 allowed)`,
          "keep one policy with to: ai-tools",
          true,
        ),
      );
    }
  }

  // Firewall VM needs an anklume domain.
  if (
    global.firewall_mode === "vm" &&
    !Object.hasOwn(domains, "anklume") &&
    !machineDomain.has("sys-firewall")
  ) {
    out.push(
      err(
        ["global", "firewall_mode"],
        "firewall_mode is 'vm' but no 'anklume' domain exists to hold sys-firewall",
        "add an anklume domain, or set firewall_mode: host",
      ),
    );
  }

  checkReserve(out, global.resource_policy);
  checkPackageCache(out, global.package_cache);
  const remote = checkRemote(out, global.incus_remote);

  // Host subnet conflicts: this machine's routes say nothing of a remote
  // Incus host's network, so the check does not run for one (docs/remote.md).
  if (remote) {
    out.push(
      info(
        ["global", "incus_remote"],
        `Incus runs on remote ${q(remote)}: the host subnet check, which reads this machine's routes, is skipped; check the subnets against that host's network`,
      ),
    );
  } else if (env.hostNetworks) {
    for (const [key, d] of [...subnetOwner.entries()]) {
      const net = parseCidr(`${key}.0/24`);
      if (!net) continue;
      for (const h of env.hostNetworks) {
        if (isAnklumeBridge(h.ifname)) continue;
        if (overlaps(net, h.cidr)) {
          const alt = key.startsWith("10.100.") ? "10.200" : "10.100";
          const fix = zoned
            ? "change global.addressing.zone_base, or give this domain another subnet_id or trust_level (ANKLUME_SKIP_HOST_SUBNET_CHECK=1 skips this check)"
            : `change global.base_subnet to "${alt}" or use another subnet_id for this domain (ANKLUME_SKIP_HOST_SUBNET_CHECK=1 skips this check)`;
          out.push(
            err(
              ["domains", d, "subnet_id"],
              `SUBNET CONFLICT: domain ${q(d)} uses ${formatCidr(net)}, which overlaps host interface ${q(h.ifname)} (${formatCidr(h.cidr)}). Incus would create a bridge on the same subnet and cut the host off its network`,
              fix,
            ),
          );
        }
      }
    }
  }
  return out;
}

function freeSubnetHint(used: Map<string, string>, base: string): string {
  for (let i = 0; i <= 254; i++) if (!used.has(`${base}.${i}`)) return `${i} is free`;
  return "all 255 are taken";
}

interface MachineEnv {
  d: string;
  profiles: Obj;
  subnet: ReturnType<typeof parseCidr>;
  base: string;
  sid: unknown;
  env: ValidationEnv;
  ipOwner: Map<string, string>;
}

function checkMachine(out: Issue[], mp: (string | number)[], m: string, mach: Obj, x: MachineEnv) {
  // IP address.
  const ip = mach.ip;
  if (ip !== undefined && ip !== null && ip !== "") {
    const ipPath = [...mp, "ip"];
    const n = typeof ip === "string" ? parseIpv4(ip) : null;
    if (typeof ip !== "string") {
      out.push(
        err(
          ipPath,
          `expected an IPv4 address in quotes, got ${typeName(ip)}`,
          `write it quoted, e.g. ip: "${x.base}.${typeof x.sid === "number" ? x.sid : 1}.10"`,
        ),
      );
    } else if (n === null) {
      out.push(
        err(
          ipPath,
          `${q(ip)} is not a valid IPv4 address`,
          `write four numbers 0-255, e.g. "${x.base}.${typeof x.sid === "number" ? x.sid : 1}.10"`,
        ),
      );
    } else {
      const first = x.ipOwner.get(ip);
      if (first !== undefined) {
        out.push(
          err(
            ipPath,
            `IP ${ip} is already used by machine ${q(first)}`,
            "give each machine its own address, or remove ip to use DHCP",
          ),
        );
      } else x.ipOwner.set(ip, m);
      if (x.subnet) {
        const host = n & 255;
        const range = `${x.base}.${x.sid}.1 to ${x.base}.${x.sid}.253`;
        if (!contains(x.subnet, n)) {
          out.push(
            err(
              ipPath,
              `${q(ip)} is not in domain ${q(x.d)}'s subnet ${formatCidr(x.subnet)}`,
              `use an address from ${range}`,
            ),
          );
        } else if (host === 0 || host >= 254) {
          const what =
            host === 254
              ? "is the domain's gateway"
              : host === 0
                ? "is the network address"
                : "is the broadcast address";
          out.push(err(ipPath, `${q(ip)} ${what}`, `use an address from ${range}`));
        } else if (host >= 100 && host <= 249) {
          out.push(
            warn(
              ipPath,
              `${q(ip)} is inside the bridge's DHCP range (.100-.249): a DHCP client could be given the same address`,
              `prefer an address from .1 to .99 or .250 to .253`,
            ),
          );
        }
      }
    }
  }

  // Profiles exist in this domain.
  if (Array.isArray(mach.profiles)) {
    mach.profiles.forEach((p, i) => {
      if (typeof p === "string" && p !== "default" && !Object.hasOwn(x.profiles, p)) {
        const guess = closest(p, ["default", ...Object.keys(x.profiles)]);
        out.push(
          err(
            [...mp, "profiles", i],
            `profile ${q(p)} is not defined in domain ${q(x.d)}`,
            guess
              ? `did you mean ${q(guess)}?`
              : `define it under domains.${x.d}.profiles, or use default`,
          ),
        );
      }
    });
  }

  // Privileged containers need a VM in the parent chain.
  const cfg = isObj(mach.config) ? mach.config : {};
  const privileged = String(cfg["security.privileged"]).toLowerCase() === "true";
  if (privileged && (mach.type ?? "lxc") === "lxc" && x.env.context.vmNested === false) {
    if (x.env.context.yolo) {
      out.push(
        warn(
          [...mp, "config", "security.privileged"],
          `YOLO: machine ${q(m)} has security.privileged=true on LXC without VM isolation. This is unsafe for production.`,
        ),
      );
    } else {
      out.push(
        err(
          [...mp, "config", "security.privileged"],
          "security.privileged=true on LXC is forbidden when no VM isolates this host (vm_nested=false)",
          "use type: vm, or enable YOLO mode (bootstrap.sh --YOLO) to accept the risk",
        ),
      );
    }
  }

  // Services: unique names.
  if (Array.isArray(mach.services)) {
    const seen = new Set<string>();
    mach.services.forEach((svc, i) => {
      if (isObj(svc) && typeof svc.name === "string") {
        if (seen.has(svc.name))
          out.push(
            err(
              [...mp, "services", i, "name"],
              `duplicate service name ${q(svc.name)}`,
              "give each service of a machine its own name",
            ),
          );
        seen.add(svc.name);
      }
    });
  }

  // Snapshot schedule and expiry.
  const sched = mach.snapshots_schedule;
  if (typeof sched === "string" && sched.trim().split(/\s+/).length !== 5) {
    out.push(
      err(
        [...mp, "snapshots_schedule"],
        `${q(sched)} is not a cron expression of 5 fields`,
        `write minute hour day month weekday, e.g. "0 2 * * *"`,
      ),
    );
  }
  const exp = mach.snapshots_expiry;
  if (typeof exp === "string" && !/^\d+[dhm]$/.test(exp)) {
    out.push(
      err(
        [...mp, "snapshots_expiry"],
        `${q(exp)} is not a duration`,
        `write a number and d, h or m, e.g. "30d", "24h", "60m"`,
      ),
    );
  }
}

/** A remote name as `incus remote add` takes it (and `local`, this machine's daemon). */
export const REMOTE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** global.incus_remote: the remote's name, or undefined for this machine's daemon. */
function checkRemote(out: Issue[], value: unknown): string | undefined {
  if (value === undefined || value === null || value === "local") return undefined;
  if (typeof value === "string" && REMOTE_NAME.test(value)) return value;
  out.push(
    err(
      ["global", "incus_remote"],
      `${q(value)} is not an Incus remote name`,
      'write the name given to incus remote add (letters, digits, ".", "_", "-"), e.g. incus_remote: lab-server; see incus remote list',
    ),
  );
  return undefined;
}

/** global.package_cache: how instances reach a package mirror (lib/provision/package-cache.ts). */
function checkPackageCache(out: Issue[], value: unknown) {
  if (isPackageCacheSetting(value)) return;
  out.push(
    err(
      ["global", "package_cache"],
      `${q(value)} is not a package cache setting`,
      'write auto (the host cache when bootstrap.sh --dev set it up), true, false, or the URL of your own apt proxy, e.g. package_cache: "http://10.0.0.5:3142"',
    ),
  );
}

function checkReserve(out: Issue[], policy: unknown) {
  if (!isObj(policy) || !isObj(policy.host_reserve)) return;
  for (const field of ["cpu", "memory"] as const) {
    const value = policy.host_reserve[field];
    if (value === undefined || value === null) continue;
    const path = ["global", "resource_policy", "host_reserve", field];
    if (typeof value === "string" && value.endsWith("%")) {
      const n = value.slice(0, -1);
      if (!/^\d+$/.test(n))
        out.push(err(path, `${q(value)} is not a whole percentage`, 'write e.g. "20%"'));
      else if (Number(n) < 1 || Number(n) > 99)
        out.push(err(path, `percentage must be 1-99, got ${n}`, 'write e.g. "20%"'));
    } else if (typeof value === "number") {
      if (!(value > 0))
        out.push(
          err(path, `must be positive, got ${value}`, "write a positive number or a percentage"),
        );
    } else if (field === "memory" && typeof value === "string") {
      if (!((parseSize(value) ?? 0) > 0))
        out.push(
          err(path, `${q(value)} is not a memory size`, 'write e.g. "4GiB", "512MiB" or "20%"'),
        );
    } else {
      out.push(
        err(
          path,
          `must be 'N%' or a positive number, got ${q(value)}`,
          field === "cpu"
            ? 'write a core count (2) or a percentage ("20%")'
            : 'write e.g. "4GiB" or "20%"',
        ),
      );
    }
  }
}
