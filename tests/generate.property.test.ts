/**
 * Generator invariants over thousands of generated inputs (fast-check; the
 * seed is printed on failure and can be replayed with FC_SEED=<seed>).
 */
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import fc from "fast-check";
import { parse, stringify as stringify12 } from "yaml";
import { cleanup, runInProcess, tree, workspace } from "./gen-helpers.ts";

afterAll(cleanup);

/** Write YAML as a v1 user's file would be read (YAML 1.1: "no" must be quoted). */
const stringify = (value: unknown) => stringify12(value, { version: "1.1" });
const LONG = 300_000;

// A fixed seed (a red suite cannot land on a case a new run happened to find);
// FC_SEED=<n> explores or replays another.
const seed = process.env.FC_SEED ? Number(process.env.FC_SEED) : 20261129;
const opts = (numRuns: number) => ({ numRuns, seed, endOnFailure: true });

// ---------------------------------------------------------------------------
// Valid infras.

const label = fc.stringMatching(/^[a-z][a-z0-9]{0,5}(-[a-z0-9]{1,4})?$/);
const text = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.constantFrom(
    "true",
    "no",
    "10.100",
    "a: b",
    "#x",
    "- y",
    " lead",
    "trail ",
    "multi\nline",
    "é✓",
    "",
  ),
);
const configValue = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.boolean(),
  fc.integer({ min: 0, max: 9999 }),
);
const configKey = fc.constantFrom(
  "security.nesting",
  "limits.cpu",
  "user.note",
  "boot.host_shutdown_timeout",
);

interface Gen {
  infra: Record<string, unknown>;
  domains: string[];
  machines: Map<string, string>;
}

const infraArb: fc.Arbitrary<Gen> = fc
  .record({
    names: fc.uniqueArray(label, { minLength: 2, maxLength: 12 }),
    nDomains: fc.integer({ min: 1, max: 4 }),
    sids: fc.shuffledSubarray(
      Array.from({ length: 255 }, (_, i) => i),
      { minLength: 4, maxLength: 4 },
    ),
    base: fc.constantFrom("10.100", "10.200", "172.20"),
    prefix: fc.boolean(),
  })
  .chain(({ names, nDomains, sids, base, prefix }) => {
    const domainNames = names.slice(0, Math.min(nDomains, names.length - 1));
    const machineNames = names.slice(domainNames.length);
    const machineArb = fc.record(
      {
        description: text,
        type: fc.constantFrom("lxc", "vm"),
        ephemeral: fc.boolean(),
        profiles: fc.constant(["default"]),
        useProfile: fc.boolean(),
        config: fc.dictionary(configKey, configValue, { maxKeys: 3 }),
        roles: fc.array(fc.constantFrom("base_system", "ollama_server"), { maxLength: 2 }),
        boot_autostart: fc.boolean(),
        boot_priority: fc.integer({ min: 0, max: 100 }),
        snapshots_schedule: fc.constantFrom("0 2 * * *", "*/5 * * * 1"),
        snapshots_expiry: fc.constantFrom("30d", "12h", "5m"),
        os_image: fc.constantFrom("images:debian/13", "anklume-busybox"),
        gpu: fc.constant(false),
      },
      { requiredKeys: [] },
    );
    return fc
      .record({
        machines: fc.array(machineArb, {
          minLength: machineNames.length,
          maxLength: machineNames.length,
        }),
        owners: fc.array(fc.integer({ min: 0, max: domainNames.length - 1 }), {
          minLength: machineNames.length,
          maxLength: machineNames.length,
        }),
        withIp: fc.array(fc.boolean(), {
          minLength: machineNames.length,
          maxLength: machineNames.length,
        }),
        // Host parts outside the DHCP range (.100-.249), its edges included.
        hostParts: fc.shuffledSubarray(
          [
            1,
            2,
            10,
            20,
            98,
            99,
            250,
            251,
            252,
            253,
            ...Array.from({ length: 40 }, (_, i) => 30 + i),
          ],
          { minLength: machineNames.length, maxLength: machineNames.length },
        ),
        // One machine may have the GPU (gpu_policy exclusive allows one).
        gpuAt: fc.integer({ min: -1, max: machineNames.length - 1 }),
        domainExtras: fc.array(
          fc.record(
            {
              description: text,
              ephemeral: fc.boolean(),
              trust_level: fc.constantFrom("admin", "trusted", "untrusted"),
              profiles: fc.constant({ extra: { config: { "limits.memory": "1GiB" } } }),
            },
            { requiredKeys: [] },
          ),
          { minLength: domainNames.length, maxLength: domainNames.length },
        ),
        policies: fc.array(
          fc.record({
            from: fc.constantFrom("host", ...domainNames, ...machineNames),
            to: fc.constantFrom(...domainNames, ...machineNames),
            ports: fc.oneof(
              fc.constant("all"),
              fc.uniqueArray(fc.integer({ min: 1, max: 65535 }), { minLength: 1, maxLength: 3 }),
            ),
            protocol: fc.constantFrom("tcp", "udp"),
            bidirectional: fc.boolean(),
          }),
          { maxLength: 3 },
        ),
      })
      .map(({ machines, owners, withIp, hostParts, gpuAt, domainExtras, policies }) => {
        const domains: Record<string, Record<string, unknown>> = {};
        domainNames.forEach((d, i) => {
          domains[d] = { ...domainExtras[i], subnet_id: sids[i], machines: {} };
        });
        const owner = new Map<string, string>();
        machineNames.forEach((m, i) => {
          const d = domainNames[owners[i] as number] as string;
          const { useProfile, ...mach }: Record<string, unknown> = { ...machines[i] };
          if (withIp[i]) mach.ip = `${base}.${domains[d]?.subnet_id}.${hostParts[i]}`;
          if (useProfile && domains[d]?.profiles) mach.profiles = ["default", "extra"];
          if (i === gpuAt) mach.gpu = true;
          (domains[d]?.machines as Record<string, unknown>)[m] = mach;
          owner.set(m, d);
        });
        return {
          infra: {
            project_name: "prop",
            global: {
              base_subnet: base,
              default_os_image: "images:debian/13",
              nesting_prefix: prefix,
            },
            domains,
            network_policies: policies,
          },
          domains: domainNames,
          machines: owner,
        };
      });
  });

/** A fresh empty directory for one run (reused across runs of a property). */
function freshDir(dir: string): string {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

// tmpfs when there is one: thousands of small trees are written and removed.
const root = existsSync("/dev/shm") ? mkdtempSync("/dev/shm/anklume-prop-") : workspace();
afterAll(() => rmSync(root, { recursive: true, force: true }));

test(
  "any valid infra gives files that parse as YAML and hold the contract's keys and values (property)",
  async () => {
    const dir = join(root, "p1");
    await fc.assert(
      fc.asyncProperty(infraArb, async (g) => {
        freshDir(dir);
        writeFileSync(join(dir, "infra.yml"), stringify(g.infra));
        const r = await runInProcess([join(dir, "infra.yml"), "--base-dir", dir]);
        expect(r.stderr).toBe("");
        expect(r.code).toBe(0);
        const files = tree(dir);
        const prefix = (g.infra.global as { nesting_prefix: boolean }).nesting_prefix ? "001-" : "";
        const all = parse(files["group_vars/all.yml"] as string, { version: "1.1" });
        expect(all.base_subnet).toBe((g.infra.global as { base_subnet: string }).base_subnet);
        const policies = g.infra.network_policies as unknown[];
        if (policies.length > 0) expect(all.network_policies).toEqual(policies);
        else expect(all).not.toHaveProperty("network_policies");
        const domains = g.infra.domains as Record<string, Record<string, unknown>>;
        const bridges: string[] = [];
        const ips: string[] = [];
        for (const d of g.domains) {
          const gv = parse(files[`group_vars/${d}.yml`] as string, { version: "1.1" });
          const dom = domains[d] as Record<string, unknown>;
          expect(gv.domain_name).toBe(d);
          expect(gv.incus_project).toBe(`${prefix}${d}`);
          expect(gv.subnet_id).toBe(dom.subnet_id);
          expect(gv.domain_description).toBe(dom.description ?? "");
          expect(gv.incus_network.gateway).toBe(`${all.base_subnet}.${dom.subnet_id}.254`);
          expect(gv.incus_network.name.length).toBeLessThanOrEqual(15);
          bridges.push(gv.incus_network.name);
          const inv = parse(files[`inventory/${d}.yml`] as string, { version: "1.1" });
          expect(Object.keys(inv.all.children)).toEqual([d]);
          const hosts = inv.all.children[d].hosts ?? {};
          const dm = (dom.machines ?? {}) as Record<string, Record<string, unknown>>;
          expect(Object.keys(hosts).sort()).toEqual(Object.keys(dm).sort());
          for (const [m, mach] of Object.entries(dm)) {
            if (mach.ip) expect(hosts[m]).toEqual({ ansible_host: mach.ip });
            else expect(hosts[m]).toBeNull();
          }
        }
        // Bridges are distinct across domains, even when names are shortened.
        expect(new Set(bridges).size).toBe(bridges.length);
        for (const [m, d] of g.machines) {
          const hv = parse(files[`host_vars/${m}.yml`] as string, { version: "1.1" });
          const mach = (
            (domains[d] as Record<string, unknown>).machines as Record<
              string,
              Record<string, unknown>
            >
          )[m] as Record<string, unknown>;
          expect(hv.instance_name).toBe(`${prefix}${m}`);
          expect(hv.instance_domain).toBe(d);
          expect(hv.instance_type).toBe(mach.type ?? "lxc");
          expect(hv.instance_description).toBe(mach.description ?? "");
          expect(hv.instance_ephemeral).toBe(mach.ephemeral ?? domains[d]?.ephemeral ?? false);
          if (mach.config !== undefined) expect(hv.instance_config).toEqual(mach.config);
          else expect(hv).not.toHaveProperty("instance_config");
          if (mach.ip) {
            expect(hv.instance_ip).toBe(mach.ip);
            const sid = (domains[d] as { subnet_id: number }).subnet_id;
            expect(hv.instance_ip.startsWith(`${all.base_subnet}.${sid}.`)).toBe(true);
            ips.push(hv.instance_ip);
          } else expect(hv).not.toHaveProperty("instance_ip");
          if (mach.gpu !== undefined) expect(hv.instance_gpu).toBe(mach.gpu);
          else expect(hv).not.toHaveProperty("instance_gpu");
          expect(hv.instance_profiles).toEqual(mach.profiles);
          expect(hv.ansible_connection).toBeUndefined();
        }
        expect(new Set(ips).size).toBe(ips.length);
        expect(Object.keys(files)).toHaveLength(1 + 2 * g.domains.length + g.machines.size);
      }),
      opts(1000),
    );
  },
  LONG,
);

// Matrix: GO-002
test(
  "sync is idempotent: a second run writes nothing and changes no byte (property)",
  async () => {
    const dir = join(root, "p2");
    await fc.assert(
      fc.asyncProperty(infraArb, async (g) => {
        freshDir(dir);
        writeFileSync(join(dir, "infra.yml"), stringify(g.infra));
        const first = await runInProcess([join(dir, "infra.yml"), "--base-dir", dir]);
        expect(first.code).toBe(0);
        const before = tree(dir);
        expect(Object.keys(before).length).toBeGreaterThan(0);
        // The full pipeline (stamp off) and the stamp's fast path both write nothing.
        for (const noCache of ["1", undefined]) {
          const r = await runInProcess([join(dir, "infra.yml"), "--base-dir", dir, "--json"], {
            ANKLUME_NO_CACHE: noCache,
          });
          expect(JSON.parse(r.stdout).written).toEqual([]);
          expect(tree(dir)).toEqual(before);
        }
      }),
      opts(1000),
    );
  },
  LONG,
);

const userText = fc
  .array(
    fc.oneof(
      fc.string({ maxLength: 20 }),
      fc.constantFrom("my_var: 1", "# note", "---", "list:\n  - a", ""),
    ),
    { maxLength: 4 },
  )
  .map((lines) =>
    lines.join("\n").replaceAll("=== MANAGED", "=== MAN").replaceAll("=== END", "=== EN"),
  );

test(
  "user content outside the managed block survives any number of syncs byte for byte (property)",
  async () => {
    const dir = join(root, "p3");
    await fc.assert(
      fc.asyncProperty(
        infraArb,
        fc.array(infraArb, { minLength: 1, maxLength: 3 }),
        userText,
        async (g, later, user) => {
          freshDir(dir);
          writeFileSync(join(dir, "infra.yml"), stringify(g.infra));
          await runInProcess([join(dir, "infra.yml"), "--base-dir", dir]);
          const suffix = `\n${user}\n`;
          for (const rel of Object.keys(tree(dir))) {
            writeFileSync(join(dir, rel), readFileSync(join(dir, rel), "utf8") + suffix);
          }
          const kept = Object.keys(tree(dir));
          for (const next of later) {
            // Same names, other content: every file stays current, so none is an orphan.
            const infra = structuredClone(g.infra) as {
              domains: Record<string, Record<string, unknown>>;
            };
            for (const [i, d] of g.domains.entries()) {
              const nd = Object.values(
                next.infra.domains as Record<string, Record<string, unknown>>,
              )[i];
              (infra.domains[d] as Record<string, unknown>).description = nd?.description ?? "x";
            }
            writeFileSync(join(dir, "infra.yml"), stringify(infra));
            const r = await runInProcess([join(dir, "infra.yml"), "--base-dir", dir]);
            expect(r.code).toBe(0);
          }
          for (const rel of kept)
            expect(readFileSync(join(dir, rel), "utf8").endsWith(suffix)).toBe(true);
        },
      ),
      opts(1000),
    );
  },
  LONG,
);

// Matrix: GO-2-005
test(
  "directory mode and single-file mode give identical trees (property)",
  async () => {
    const one = join(root, "p4a");
    const two = join(root, "p4b");
    await fc.assert(
      fc.asyncProperty(infraArb, fc.integer({ min: 1, max: 3 }), async (g, nFiles) => {
        freshDir(one);
        freshDir(two);
        writeFileSync(join(one, "infra.yml"), stringify(g.infra));
        const { domains, network_policies, ...base } = g.infra as Record<string, unknown>;
        mkdirSync(join(two, "infra/domains"), { recursive: true });
        writeFileSync(join(two, "infra/base.yml"), stringify(base));
        const entries = Object.entries(domains as Record<string, unknown>);
        for (let f = 0; f < nFiles; f++) {
          const part = Object.fromEntries(entries.filter((_, i) => i % nFiles === f));
          writeFileSync(
            join(two, `infra/domains/${String(f).padStart(2, "0")}.yml`),
            stringify(part),
          );
        }
        writeFileSync(join(two, "infra/policies.yml"), stringify({ network_policies }));
        const a = await runInProcess([join(one, "infra.yml"), "--base-dir", one]);
        const b = await runInProcess([join(two, "infra"), "--base-dir", two]);
        expect([a.code, b.code]).toEqual([0, 0]);
        expect(tree(two)).toEqual(tree(one));
      }),
      opts(1000),
    );
  },
  LONG,
);

function neverCrashes(r: { code: number; stderr: string }) {
  expect([0, 1]).toContain(r.code);
  expect(r.stderr).not.toMatch(/\n\s+at .*\(.*:\d+:\d+\)/);
  expect(r.stderr).not.toContain("TypeError");
}

// Matrix: GV-3-001
test(
  "random bytes never crash the generator: exit 1 with a message, never a stack trace (property)",
  async () => {
    const dir = join(root, "p5");
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (bytes) => {
        freshDir(dir);
        writeFileSync(join(dir, "infra.yml"), bytes);
        const r = await runInProcess([join(dir, "infra.yml"), "--base-dir", dir]);
        neverCrashes(r);
        if (r.code === 1) expect(r.stderr.length).toBeGreaterThan(0);
        // Exit 0 only for a file that is a valid infra: then the tree was written.
        else expect(Object.keys(tree(dir)).length).toBeGreaterThan(0);
      }),
      opts(2000),
    );
  },
  LONG,
);

const yamlish = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    fc.constantFrom(
      null,
      true,
      false,
      0,
      1,
      254,
      -3,
      1.5,
      "",
      "10.100",
      "lxc",
      "vm",
      "default",
      "all",
      "tcp",
      "host",
    ),
    fc.string({ maxLength: 8 }),
    fc.array(tie("value"), { maxLength: 3 }),
    fc.dictionary(
      fc.constantFrom(
        "project_name",
        "global",
        "domains",
        "machines",
        "subnet_id",
        "ip",
        "profiles",
        "config",
        "pro",
        "m1",
        "network_policies",
        "from",
        "to",
        "ports",
        "type",
        "x",
      ),
      tie("value"),
      { maxKeys: 4 },
    ),
  ),
}));
const infraish = fc.record(
  {
    project_name: yamlish.value,
    global: yamlish.value,
    domains: yamlish.value,
    network_policies: yamlish.value,
  },
  { requiredKeys: [] },
);

// Matrix: GV-3-001
test(
  "random YAML never crashes the generator (property)",
  async () => {
    const dir = join(root, "p6");
    await fc.assert(
      fc.asyncProperty(fc.oneof(yamlish.value, infraish), async (value) => {
        freshDir(dir);
        writeFileSync(join(dir, "infra.yml"), stringify(value));
        neverCrashes(await runInProcess([join(dir, "infra.yml"), "--base-dir", dir]));
      }),
      opts(2000),
    );
  },
  LONG,
);
