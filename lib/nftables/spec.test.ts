import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import fc from "fast-check";
import { buildRuleset, NftSpecError } from "./ruleset.ts";
import { domainOfBridge, specFromJson, specFromVars } from "./spec.ts";
import { readGeneratedVars } from "./tree.ts";

const FIXTURES = join(import.meta.dir, "..", "..", "tests", "fixtures");
const worked = () => readGeneratedVars(join(FIXTURES, "worked-example"));

/** The problems a call throws as NftSpecError (fails the test when it does not throw one). */
function problems(f: () => unknown): string[] {
  try {
    f();
  } catch (e) {
    if (e instanceof NftSpecError) return e.problems;
    throw e;
  }
  throw new Error("expected an NftSpecError");
}

const pro = { domain_name: "pro", incus_network: { name: "001-net-pro" } };
const lab = { domain_name: "lab", incus_network: { name: "001-net-lab" } };

describe("specFromVars() on the worked example (tests/fixtures/worked-example)", () => {
  test("gives the spec the role's Jinja gave for the same tree (captured before it was removed)", () => {
    // `incus_nftables_spec | to_json` of the former roles/incus_nftables/tasks/main.yml,
    // through the former specFromJson (nulls dropped, instance_name -> instanceName).
    const { spec, warnings } = specFromVars(worked(), { aiOverride: {} });
    expect(spec).toEqual({
      domains: [
        { name: "anklume", bridge: "001-net-anklume" },
        { name: "lab", bridge: "001-net-lab" },
      ],
      machines: [
        {
          name: "anklume-instance",
          domain: "anklume",
          instanceName: "001-anklume-instance",
          ip: "10.100.0.10",
        },
        { name: "lab-dhcp", domain: "lab", instanceName: "001-lab-dhcp" },
        { name: "lab-vm", domain: "lab", instanceName: "001-lab-vm", ip: "10.100.3.10" },
      ],
      policies: [
        {
          description: "Admin reaches the lab",
          from: "anklume",
          to: "lab",
          ports: [22],
          protocol: "tcp",
        },
      ],
      // No global.package_cache in the worked example: auto opens the host caches' ports.
      hostPorts: [3142, 3141, 4873],
      aiOverride: {},
    });
    expect(warnings).toEqual([]);
  });

  test("renders the worked example's bridges, policy and drop set", () => {
    const r = buildRuleset(specFromVars(worked()).spec);
    expect(r.bridges).toEqual(["001-net-anklume", "001-net-lab"]);
    expect(r.text).toContain(
      'iifname "001-net-anklume" oifname "001-net-lab" tcp dport { 22 } accept',
    );
    expect(r.text).toContain(
      'iifname { "001-net-anklume", "001-net-lab" } oifname { "001-net-anklume", "001-net-lab" } drop',
    );
    expect(r.warnings).toEqual([]);
  });

  test("the spec does not depend on the order the hosts come in", () => {
    const vars = worked();
    const want = specFromVars(vars).spec;
    const names = Object.keys(vars.hosts);
    fc.assert(
      fc.property(fc.shuffledSubarray(names, { minLength: names.length }), (order) => {
        const hosts = Object.fromEntries(order.map((h) => [h, vars.hosts[h] ?? {}]));
        expect(specFromVars({ all: vars.all, hosts }).spec).toEqual(want);
      }),
      { seed: process.env.FC_SEED ? Number(process.env.FC_SEED) : undefined, numRuns: 20 },
    );
  });
});

describe("specFromVars(): the domain name of a bridge", () => {
  // Fallback rule (written in spec.ts): domain_name, else instance_domain, else
  // the bridge name without its NNN-net- prefix (operations-contract §2, §3.7).
  test("is domain_name when the host has it", () => {
    const { spec } = specFromVars({
      all: {},
      hosts: { a: { ...pro, instance_domain: "other" } },
    });
    expect(spec.domains).toEqual([{ name: "pro", bridge: "001-net-pro" }]);
  });

  test("is instance_domain when domain_name is missing (a hand-edited tree)", () => {
    const { spec } = specFromVars({
      all: {},
      hosts: { a: { incus_network: { name: "001-net-pro" }, instance_domain: "pro" } },
    });
    expect(spec.domains).toEqual([{ name: "pro", bridge: "001-net-pro" }]);
    expect(spec.machines).toEqual([{ name: "a", domain: "pro" }]);
  });

  test("comes from the bridge, as v1 derived it, when both are missing; the bridge is still isolated", () => {
    const { spec } = specFromVars({
      all: {},
      hosts: { a: { incus_network: { name: "001-net-lab" } }, b: { ...pro, domain_name: null } },
    });
    expect(spec.domains).toEqual([
      { name: "lab", bridge: "001-net-lab" },
      { name: "pro", bridge: "001-net-pro" },
    ]);
    expect(buildRuleset(spec).bridges).toEqual(["001-net-lab", "001-net-pro"]);
    expect(domainOfBridge("net-x")).toBe("x");
    expect(domainOfBridge("br0")).toBe("br0");
  });

  test("one domain per distinct bridge: the hosts of a domain share it", () => {
    const { spec } = specFromVars({
      all: {},
      hosts: { a: { ...pro }, b: { ...pro }, c: { ...lab } },
    });
    expect(spec.domains).toEqual([
      { name: "pro", bridge: "001-net-pro" },
      { name: "lab", bridge: "001-net-lab" },
    ]);
  });
});

describe("specFromVars(): network_policies", () => {
  // Fallback rule (written in spec.ts): group_vars/all only (operations-contract
  // §2 and §3.7); absent means no policy; per-host values are ignored with a warning.
  const policy = [{ from: "pro", to: "lab", ports: [22] }];

  test("come from group_vars/all", () => {
    const hosts = {
      a: { ...pro, network_policies: policy },
      b: { ...lab, network_policies: policy },
    };
    const r = specFromVars({ all: { network_policies: policy }, hosts });
    expect(r.spec.policies).toEqual(policy);
    expect(r.warnings).toEqual([]);
  });

  test("are none when group_vars/all has none, even if a host has some (with a warning)", () => {
    const r = specFromVars({ all: {}, hosts: { a: { ...pro, network_policies: policy }, b: lab } });
    expect(r.spec.policies).toEqual([]);
    expect(r.warnings).toEqual([
      'network_policies set for "a" (in group_vars/<domain> or host_vars) is ignored: policies are global; write them in infra.yml and run make sync',
    ]);
    expect(buildRuleset(r.spec).policies).toEqual([]);
  });

  test("a domain's own value is ignored, with a warning naming its hosts", () => {
    const r = specFromVars({
      all: { network_policies: policy },
      hosts: { a: { ...pro, network_policies: [] }, b: { ...lab, network_policies: policy } },
    });
    expect(r.spec.policies).toEqual(policy);
    expect(r.warnings[0]).toStartWith('network_policies set for "a" ');
  });
});

describe("specFromVars(): machines, knobs and refusals", () => {
  test("a null instance_ip or instance_name is absent (Ansible's unset variable)", () => {
    const { spec } = specFromVars({
      all: {},
      hosts: { m: { ...pro, instance_domain: "pro", instance_ip: null, instance_name: null } },
    });
    expect(spec.machines).toEqual([{ name: "m", domain: "pro" }]);
  });

  test("the AI override knob goes into the spec as given; absent, the spec has none", () => {
    const o = { from: "pro", to: "lab" };
    expect(specFromVars({ all: {}, hosts: { a: pro } }, { aiOverride: o }).spec.aiOverride).toBe(o);
    expect("aiOverride" in specFromVars({ all: {}, hosts: { a: pro } }).spec).toBe(false);
  });

  test("refuses an inventory where no host has a bridge (an empty ruleset lifts the isolation)", () => {
    expect(problems(() => specFromVars({ all: {}, hosts: {} }))).toEqual([
      expect.stringContaining("no inventory host has incus_network"),
    ]);
    expect(
      problems(() => specFromVars({ all: {}, hosts: { a: { instance_domain: "x" } } })),
    ).toEqual([expect.stringContaining("run make sync first")]);
  });

  test("lists every variable of the wrong type at once", () => {
    const got = problems(() =>
      specFromVars({
        all: {},
        hosts: {
          a: { incus_network: "001-net-a" },
          b: { incus_network: { subnet: "10.0.0.0/24" } },
          c: { ...pro, instance_domain: "pro", instance_ip: 10 },
          d: { ...pro, instance_domain: ["pro"] },
        },
      }),
    );
    expect(got).toEqual([
      'Cannot use incus_network "001-net-a" of host "a": it needs a name (the bridge); run make sync',
      'Cannot use incus_network {"subnet":"10.0.0.0/24"} of host "b": it needs a name (the bridge); run make sync',
      'Cannot use instance_ip 10 of host "c": not a string; fix its host_vars or group_vars, or run make sync',
      'Cannot use instance_domain ["pro"] of host "d": not a string; fix its host_vars or group_vars, or run make sync',
    ]);
  });
});

describe("specFromJson()", () => {
  test("takes a JSON spec, nulls included", () => {
    const spec = specFromJson(
      JSON.stringify({
        domains: [{ name: "a", bridge: "net-a" }],
        machines: [{ name: "m", domain: "a", instance_name: null, ip: null }],
        policies: [],
        ai_override: {},
      }),
      "stdin",
    );
    expect(spec.machines).toEqual([{ name: "m", domain: "a" }]);
  });

  test("names the bad field", () => {
    expect(() => specFromJson('{"domains": [{"name": 1}], "machines": []}', "stdin")).toThrow(
      /Cannot use the spec from stdin: at domains.0.name/,
    );
  });
});
