import { describe, expect, test } from "bun:test";
import {
  addressingIssues,
  addressingOf,
  applyAddressing,
  domainBase,
  zoned,
  zoneOctet,
} from "./addressing.ts";
import type { Infra } from "./schema.ts";

const infra = (
  domains: Record<string, unknown>,
  addressing: unknown = { base_octet: 10, zone_base: 100 },
) => ({ project_name: "p", global: { addressing }, domains }) as Infra;

describe("zone-based addressing (v1's global.addressing)", () => {
  test("zones follow trust_level in zone steps; no trust_level is semi-trusted", () => {
    expect(
      ["admin", "trusted", "semi-trusted", "untrusted", "disposable", undefined].map((t) =>
        zoneOctet(t, 100, 10),
      ),
    ).toEqual([100, 110, 120, 140, 150, 120]);
    expect(zoneOctet("untrusted", 50, 5)).toBe(70);
    expect(addressingOf(infra({}, {}))).toEqual({ baseOctet: 10, zoneBase: 100, zoneStep: 10 });
    expect(addressingOf({ project_name: "p", global: {}, domains: {} } as Infra)).toBeNull();
  });

  test("domains of a zone are numbered alphabetically around explicit subnet_ids; machines get .1, .2 around static IPs", () => {
    const i = infra({
      pro: { trust_level: "trusted", machines: { a: {}, b: { ip: "10.110.2.1" }, c: {} } },
      perso: { trust_level: "trusted", machines: {} },
      mid: { trust_level: "trusted", subnet_id: 0 },
      admin: { trust_level: "admin", machines: { x: { ip: "" } } },
      lab: { machines: { y: {} } },
    });
    const info = applyAddressing(i);
    const d = i.domains ?? {};
    expect([
      d.mid?.subnet_id,
      d.perso?.subnet_id,
      d.pro?.subnet_id,
      d.admin?.subnet_id,
      d.lab?.subnet_id,
    ]).toEqual([0, 1, 2, 0, 0]);
    expect(d.pro?.machines?.a?.ip).toBe("10.110.2.2");
    expect(d.pro?.machines?.b?.ip).toBe("10.110.2.1");
    expect(d.pro?.machines?.c?.ip).toBe("10.110.2.3");
    expect(d.admin?.machines?.x?.ip).toBe("10.100.0.1");
    expect(domainBase(i.global, d.pro)).toBe("10.110");
    expect(domainBase(i.global, d.lab)).toBe("10.120");
    expect(zoned(d.pro)).toBe(true);
    expect(info).toEqual([
      'global.addressing: domain "pro" (trusted) uses 10.110.2.0/24; IPs assigned: a .2, c .3',
      'global.addressing: domain "perso" (trusted) uses 10.110.1.0/24',
      'global.addressing: domain "mid" (trusted) uses 10.110.0.0/24',
      'global.addressing: domain "admin" (admin) uses 10.100.0.0/24; IPs assigned: x .1',
      'global.addressing: domain "lab" (semi-trusted (no trust_level)) uses 10.120.0.0/24; IPs assigned: y .1',
    ]);
    expect(addressingIssues(i)).toEqual({ errors: [], warnings: [] });
  });

  test("without addressing nothing changes and base_subnet decides", () => {
    const i = {
      project_name: "p",
      global: { base_subnet: "192.168" },
      domains: { a: { subnet_id: 3 } },
    } as Infra;
    expect(applyAddressing(i)).toEqual([]);
    expect(zoned(i.domains?.a)).toBe(false);
    expect(domainBase(i.global, i.domains?.a)).toBe("192.168");
    expect(domainBase(null, {})).toBe("10.100");
    expect(addressingIssues(i)).toEqual({ errors: [], warnings: [] });
  });

  test("errors: a base_octet other than 10, a zone over 255, a full zone, more than 99 machines; base_subnet beside it is a warning", () => {
    const machines = Object.fromEntries(Array.from({ length: 100 }, (_, n) => [`m${n}`, {}]));
    const i = infra({ big: { trust_level: "admin", machines } }, { base_octet: 192 });
    (i.global as Record<string, unknown>).base_subnet = "10.1";
    applyAddressing(i);
    const r = addressingIssues(i);
    expect(r.errors.map((e) => e[0].join("."))).toEqual([
      "global.addressing.base_octet",
      "domains.big.machines.m99",
    ]);
    expect(r.errors[0]?.[1]).toBe(
      "base_octet 192 is not a private /8: zone-based addressing needs 10 (RFC 1918)",
    );
    expect(r.errors[1]?.[1]).toBe(
      'no address left in .1-.99 for "m99" (addressing assigns static IPs from .1 to .99)',
    );
    expect(r.warnings.map((w) => w[1])).toEqual([
      "base_subnet is ignored: global.addressing chooses every domain's network",
    ]);
    const high = infra({ d: { trust_level: "disposable" } }, { zone_base: 250 });
    applyAddressing(high);
    expect(addressingIssues(high).errors[0]?.[1]).toBe(
      'domain "d" (disposable) falls in zone 300: zone_base 250 + 5 x zone_step 10 is over 255',
    );
    const full = infra(
      Object.fromEntries(
        Array.from({ length: 256 }, (_, n) => [`d${n}`, { trust_level: "trusted" }]),
      ),
    );
    applyAddressing(full);
    expect(addressingIssues(full).errors.map((e) => e[1])).toEqual([
      'zone 110 has no free /24 left for domain "d99"',
    ]);
  });

  test("addressingIssues reads anything without throwing, and skips what enrichment did not see", () => {
    for (const data of [
      null,
      5,
      { global: { addressing: 3 } },
      { global: { addressing: {} }, domains: [] },
    ]) {
      expect(addressingIssues(data)).toEqual({ errors: [], warnings: [] });
    }
    // Not through applyAddressing: a machine without ip is not an error here.
    expect(addressingIssues(infra({ a: { machines: { m: {} } } })).errors).toEqual([]);
  });
});
