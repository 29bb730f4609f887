import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { contains, formatCidr, formatIpv4, overlaps, parseCidr, parseIpv4 } from "./cidr.ts";

describe("parseIpv4", () => {
  test("parses dotted quads and rejects everything else", () => {
    expect(parseIpv4("10.100.1.10")).toBe(((10 * 256 + 100) * 256 + 1) * 256 + 10);
    expect(parseIpv4("255.255.255.255")).toBe(0xffffffff);
    for (const bad of [
      "10.100.1",
      "10.100.1.256",
      "01.2.3.4",
      "a.b.c.d",
      "1.2.3.4.5",
      "",
      "1..2.3",
    ]) {
      expect(parseIpv4(bad)).toBeNull();
    }
  });
  test("round-trips through formatIpv4", () => {
    fc.assert(fc.property(fc.ipV4(), (ip) => formatIpv4(parseIpv4(ip) as number) === ip));
  });
});

describe("overlaps", () => {
  const c = (s: string) => parseCidr(s) ?? expect.unreachable(s);
  test("detects a /24 inside a /16 and a /16 around a /24", () => {
    expect(overlaps(c("10.100.3.0/24"), c("10.100.0.0/16"))).toBe(true);
    expect(overlaps(c("10.0.0.0/8"), c("10.100.3.0/24"))).toBe(true);
  });
  test("does not flag neighbours", () => {
    expect(overlaps(c("10.100.3.0/24"), c("10.100.4.0/24"))).toBe(false);
    expect(overlaps(c("10.101.0.0/16"), c("10.100.255.0/24"))).toBe(false);
    expect(overlaps(c("192.168.0.0/24"), c("192.168.1.0/24"))).toBe(false);
  });
  test("parseCidr clears host bits", () => {
    expect(formatCidr(c("192.0.2.2/24"))).toBe("192.0.2.0/24");
    expect(contains(c("192.0.2.0/24"), parseIpv4("192.0.2.200") as number)).toBe(true);
    expect(parseCidr("10.0.0.0/33")).toBeNull();
  });
});

describe("parseCidr", () => {
  test("rejects a missing or doubled prefix, a non-numeric prefix and a bad address", () => {
    for (const bad of [
      "10.0.0.0",
      "10.0.0.0/",
      "/8",
      "10.0.0.0/8/1",
      "10.0.0.0/x8",
      "10.0.0.0/8x",
      "10.0.0.0/123",
      "10.0.0.0/-1",
      "10.0.0.256/8",
      "999.0.0.0/8",
      "10.0.0.0/33",
    ]) {
      expect(parseCidr(bad)).toBeNull();
    }
  });
  test("accepts /32 (one address) and /0 (every address)", () => {
    expect(parseCidr("10.1.2.3/32")).toEqual({ base: parseIpv4("10.1.2.3") as number, prefix: 32 });
    expect(parseCidr("10.1.2.3/0")).toEqual({ base: 0, prefix: 0 });
  });
});

describe("contains", () => {
  const c = (s: string) => parseCidr(s) ?? expect.unreachable(s);
  const ip = (s: string) => parseIpv4(s) ?? expect.unreachable(s);
  test("is false outside the network, true at both ends inside", () => {
    expect(contains(c("192.0.2.0/24"), ip("192.0.3.0"))).toBe(false);
    expect(contains(c("192.0.2.0/24"), ip("192.0.1.255"))).toBe(false);
    expect(contains(c("192.0.2.0/24"), ip("192.0.2.0"))).toBe(true);
    expect(contains(c("192.0.2.0/24"), ip("192.0.2.255"))).toBe(true);
  });
  test("/0 contains every address, /32 only its own", () => {
    expect(contains(c("0.0.0.0/0"), ip("203.0.113.7"))).toBe(true);
    expect(contains(c("10.0.0.1/32"), ip("10.0.0.1"))).toBe(true);
    expect(contains(c("10.0.0.1/32"), ip("10.0.0.2"))).toBe(false);
  });
  test("/0 overlaps everything", () => {
    expect(overlaps(c("0.0.0.0/0"), c("10.100.3.0/24"))).toBe(true);
    expect(overlaps(c("10.100.3.0/24"), c("0.0.0.0/0"))).toBe(true);
  });
});
