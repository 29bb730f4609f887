import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { desiredFromVars, type Kind } from "./desired.ts";
import { desiredByKind, kindsForTags, varsInputFromTree } from "./from-vars.ts";

describe("kindsForTags", () => {
  test("an untagged run, --tags all and --tags infra select every kind, in apply order", () => {
    const every: Kind[] = ["projects", "networks", "profiles", "images", "firewall", "instances"];
    expect(kindsForTags([], [])).toEqual(every);
    expect(kindsForTags(["all"], [])).toEqual(every);
    expect(kindsForTags(["infra"], [])).toEqual(every);
  });

  test("a kind's tag selects that kind only, in apply order whatever the tag order", () => {
    expect(kindsForTags(["networks"], [])).toEqual(["networks"]);
    expect(kindsForTags(["instances", "projects"], [])).toEqual(["projects", "instances"]);
    expect(kindsForTags(["provision"], [])).toEqual([]);
  });

  test("skipped tags remove kinds; skipping infra removes them all", () => {
    expect(kindsForTags(["all"], ["images"])).toEqual([
      "projects",
      "networks",
      "profiles",
      "firewall",
      "instances",
    ]);
    expect(kindsForTags(["all"], ["infra"])).toEqual([]);
  });
});

test("desiredByKind hands the executor's knobs to the instances kind only", () => {
  const d = desiredFromVars({ hosts: {}, knobs: { incus_instances_parallel: 7 } });
  const docs = desiredByKind(d);
  expect(docs.instances).toMatchObject({ parallel: 7, timeout: 300 });
  expect(docs.networks).not.toHaveProperty("parallel");
  expect(docs.firewall).toBeNull();
});

describe("varsInputFromTree reads the generated tree as the role once passed it through", () => {
  const made: string[] = [];
  afterAll(() => {
    for (const d of made) rmSync(d, { recursive: true, force: true });
  });
  const tree = (files: Record<string, string>) => {
    const dir = mkdtempSync(join(tmpdir(), "from-vars-"));
    made.push(dir);
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(join(dir, path, ".."), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
    return dir;
  };
  const generated = {
    "inventory/pro.yml":
      "all:\n  children:\n    pro:\n      hosts:\n        pro-a:\n        pro-b:\n",
    "group_vars/all.yml": "project_name: lab\ndefault_os_image: anklume-busybox\nmy_own: 1\n",
    "group_vars/pro.yml":
      "domain_name: pro\nincus_project: 001-pro\nincus_network:\n  name: 001-net-pro\n  gateway: 10.1.2.254\n",
    "host_vars/pro-a.yml": "instance_name: 001-pro-a\ninstance_ephemeral: true\n",
    "host_vars/pro-b.yml": "instance_name: 001-pro-b\ninstance_ip: 10.1.2.11\n",
  };

  test("every host's generated keys, merged all < group < host; other keys left out", () => {
    const input = varsInputFromTree(tree(generated));
    expect(Object.keys(input.hosts).sort()).toEqual(["pro-a", "pro-b"]);
    expect(input.hosts["pro-a"]).toEqual({
      project_name: "lab",
      default_os_image: "anklume-busybox",
      domain_name: "pro",
      incus_project: "001-pro",
      incus_network: { name: "001-net-pro", gateway: "10.1.2.254" },
      instance_name: "001-pro-a",
      instance_ephemeral: true,
    });
    expect(input.hosts["pro-b"]).not.toHaveProperty("my_own");
    expect(input.play_hosts).toBeNull();
    expect(input.limited).toBe(false);
  });

  test("the play's hosts, --limit and the knobs (an empty knob is unset) reach the mapping", () => {
    const input = varsInputFromTree(tree(generated), {
      playHosts: ["pro-b"],
      limited: true,
      knobs: { incus_networks_ipv4_nat: false, incus_profiles_pool: "" },
    });
    expect(input.play_hosts).toEqual(["pro-b"]);
    expect(input.limited).toBe(true);
    expect(input.knobs).toEqual({ incus_networks_ipv4_nat: false, incus_profiles_pool: null });
    const d = desiredFromVars(input);
    expect((d.instances as { instances: { name: string }[] }).instances.map((i) => i.name)).toEqual(
      ["001-pro-b"],
    );
  });

  test("no inventory, a Jinja template in a key the mapping reads, a wrong type: clear errors", () => {
    expect(() => varsInputFromTree(tree({ "group_vars/all.yml": "a: 1\n" }))).toThrow(
      /no generated inventory under .*run make sync/,
    );
    const templated = tree({
      ...generated,
      "host_vars/pro-a.yml": 'instance_name: 001-pro-a\ninstance_ip: "{{ my_ip }}"\n',
    });
    expect(() => varsInputFromTree(templated)).toThrow(
      /host "pro-a": its variable instance_ip holds a Jinja template/,
    );
    const wrong = tree({ ...generated, "host_vars/pro-a.yml": "instance_name: [1]\n" });
    expect(() => varsInputFromTree(wrong)).toThrow(/invalid at hosts\.pro-a\.instance_name/);
  });
});
