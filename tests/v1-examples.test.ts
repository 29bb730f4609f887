/**
 * v1's own example infra files keep working (issue 11): every
 * examples/<name>/infra.yml and infra.yml.example of v1, copied as data into
 * tests/fixtures/v1-examples/, is synced into a temp directory with
 * `bun scripts/generate.ts`, then synced again (nothing rewritten). The
 * zone-based ones (global.addressing) are checked value by value against v1's
 * addressing convention. live-os is not in v1's infra format at all (v1's own
 * generator refuses it too): it must be refused with clear errors and nothing
 * written. docs/lifecycle.md, "v1 infra files keep working".
 */
import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { cleanup, mtimes, runProcess, tree, workspace } from "./gen-helpers.ts";

afterAll(cleanup);

const FIXTURES = join(import.meta.dir, "fixtures", "v1-examples");
const NOT_V1_FORMAT = new Set(["live-os.yml"]);
const examples = readdirSync(FIXTURES)
  .filter((f) => f.endsWith(".yml") && !NOT_V1_FORMAT.has(f))
  .sort();

/** Sync one fixture in a fresh workspace. */
function sync(file: string) {
  const dir = workspace();
  copyFileSync(join(FIXTURES, file), join(dir, "infra.yml"));
  return { dir, r: runProcess(["infra.yml"], dir) };
}

const vars = (dir: string, rel: string) =>
  parse(readFileSync(join(dir, rel), "utf8")) as Record<string, unknown>;

describe("v1's example infra files sync unchanged", () => {
  test("the fixtures are all there (12 files of v1: 11 examples and infra.yml.example)", () => {
    expect(examples.length + NOT_V1_FORMAT.size).toBe(12);
  });

  // Matrix: GO-012
  test.each(examples)(
    "%s syncs, and a second sync rewrites nothing",
    (file) => {
      const { dir, r } = sync(file);
      expect(r.stderr).not.toContain("ERROR");
      expect(r.stderr).not.toContain("Validation failed");
      expect(r.code).toBe(0);
      const first = tree(dir);
      const times = mtimes(dir);
      const again = runProcess(["infra.yml"], dir);
      expect(again.code).toBe(0);
      expect(tree(dir)).toEqual(first);
      expect(mtimes(dir)).toEqual(times);
    },
    60_000,
  );

  test("infra.yml.example (domains: {}) says there is nothing to generate", () => {
    const { dir, r } = sync("infra.yml.example.yml");
    expect(r.stdout + r.stderr).toContain("No domains defined. Nothing to generate.");
    expect(Object.keys(tree(dir))).toEqual([]);
  });

  // Matrix: GO-013
  test("teacher-lab (global.addressing): zones from trust_level, domains numbered alphabetically, IPs from .1", () => {
    const { dir, r } = sync("teacher-lab.yml");
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      'INFO: global.addressing: domain "student-02" (semi-trusted) uses 10.120.1.0/24; IPs assigned: s02-web .1, s02-client .2',
    );
    expect(vars(dir, "group_vars/anklume.yml")).toMatchObject({
      subnet_id: 0,
      incus_network: { name: "001-net-anklume", subnet: "10.100.0.0/24", gateway: "10.100.0.254" },
    });
    // 001-net-student-01 is longer than 15 characters: the short name carries the zone.
    expect(vars(dir, "group_vars/student-01.yml")).toMatchObject({
      subnet_id: 0,
      incus_network: { name: "001-net120000", subnet: "10.120.0.0/24", gateway: "10.120.0.254" },
    });
    expect(vars(dir, "group_vars/student-03.yml")).toMatchObject({
      incus_network: { name: "001-net120002", subnet: "10.120.2.0/24" },
    });
    expect(vars(dir, "host_vars/s03-client.yml").instance_ip).toBe("10.120.2.2");
    expect(vars(dir, "host_vars/lab-admin.yml").instance_ip).toBe("10.100.0.1");
    expect(readFileSync(join(dir, "inventory/student-01.yml"), "utf8")).toContain(
      "ansible_host: 10.120.0.1",
    );
    expect(vars(dir, "group_vars/all.yml").base_subnet).toBe("10.100");
  }, 60_000);

  test("tor-gateway and shared-services: untrusted is 10.140, and two zones may both hold a domain 0", () => {
    const tor = sync("tor-gateway.yml");
    expect(tor.r.code).toBe(0);
    expect(vars(tor.dir, "group_vars/anonymous.yml")).toMatchObject({
      subnet_id: 0,
      incus_network: { subnet: "10.140.0.0/24" },
    });
    expect(vars(tor.dir, "group_vars/tor-gateway.yml")).toMatchObject({
      subnet_id: 1,
      incus_network: { name: "001-net140001", subnet: "10.140.1.0/24" },
    });
    const shared = sync("shared-services.yml");
    expect(shared.r.code).toBe(0);
    expect(vars(shared.dir, "group_vars/pro.yml")).toMatchObject({
      incus_network: { subnet: "10.110.0.0/24" },
    });
    expect(vars(shared.dir, "group_vars/perso.yml")).toMatchObject({
      incus_network: { subnet: "10.120.0.0/24" },
    });
    expect(vars(shared.dir, "group_vars/shared.yml")).toMatchObject({
      incus_network: { subnet: "10.120.1.0/24" },
    });
  }, 60_000);

  test("addressing in an infra/ directory: a static IP outside the zone's /24 is refused with its file and line", () => {
    const dir = workspace({
      "infra/base.yml": "project_name: t\nglobal:\n  addressing: {zone_base: 100}\n",
      "infra/domains/lab.yml": 'lab:\n  machines:\n    l1: {ip: "10.100.0.5"}\n',
    });
    const r = runProcess(["infra"], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `infra/domains/lab.yml:3:14: domains.lab.machines.l1.ip: "10.100.0.5" is not in domain "lab"'s subnet 10.120.0.0/24`,
    );
    expect(Object.keys(tree(dir))).toEqual([]);
  }, 60_000);

  test("live-os is not v1's infra format (domains as a list, live_os, storage, networks): refused, nothing written", () => {
    const { dir, r } = sync("live-os.yml");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      "domains: expected a mapping of domain names to their settings, got a list",
    );
    expect(r.stderr).toContain('live_os: unknown key "live_os"');
    expect(r.stderr).toContain("nothing was written");
    expect(Object.keys(tree(dir))).toEqual([]);
  }, 60_000);
});
