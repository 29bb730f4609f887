import { afterAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatCidr } from "../core/cidr.ts";
import { hostNetworks, hostResources } from "./host.ts";

const dir = mkdtempSync(join(tmpdir(), "anklume-host-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("hostNetworks reads this namespace's connected routes from the real /proc", () => {
  const nets = hostNetworks();
  expect(nets).not.toBeNull();
  for (const n of nets ?? []) {
    expect(n.ifname).not.toBe("lo");
    expect(n.cidr.prefix).toBeGreaterThan(0);
  }
});

test("hostNetworks decodes little-endian routes and skips gateways and the default route", () => {
  const proc = join(dir, "proc");
  mkdirSync(join(proc, "net"), { recursive: true });
  writeFileSync(
    join(proc, "net", "route"),
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
      "wlan0\t00000000\t0164A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n" +
      "wlan0\t0000640A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n" +
      "wlan0\t0000000A\t0164A8C0\t0003\t0\t0\t0\t000000FF\t0\t0\t0\n",
  );
  const nets = hostNetworks(proc);
  expect(nets?.map((n) => `${n.ifname} ${formatCidr(n.cidr)}`)).toEqual(["wlan0 10.100.0.0/16"]);
});

test("hostResources falls back to /proc when incus cannot answer", async () => {
  process.env.ANKLUME_INCUS = "false";
  try {
    const r = await hostResources();
    expect(r?.cpu).toBeGreaterThan(0);
    expect(r?.memory).toBeGreaterThan(1024 * 1024);
  } finally {
    delete process.env.ANKLUME_INCUS;
  }
});
