import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  addressLines,
  backupName,
  compareNet,
  formatBackup,
  ignoredDevice,
  newestBackup,
  parseBackup,
  readBackup,
  restoreCommands,
  routeLines,
  unchanged,
  writeBackup,
} from "./netcheck.ts";

const routes4 = [
  { dst: "default", gateway: "192.0.2.1", dev: "eth0", flags: [] },
  { dst: "192.0.2.0/24", dev: "eth0", protocol: "kernel", scope: "link", prefsrc: "192.0.2.2" },
  { dst: "10.100.1.0/24", dev: "001-net-pro", protocol: "kernel", scope: "link" },
  { dst: "10.100.2.0/24", dev: "net-lab", protocol: "kernel", scope: "link" },
  { dst: "broadcast", type: "broadcast", dev: "eth0" },
];
const addrs = [
  { ifname: "lo", addr_info: [{ family: "inet", local: "127.0.0.1", prefixlen: 8 }] },
  {
    ifname: "eth0",
    addr_info: [
      { family: "inet", local: "192.0.2.2", prefixlen: 24 },
      { family: "inet6", local: "fe80::1", prefixlen: 64 },
      { family: "inet6", local: "fd00::2", prefixlen: 64 },
    ],
  },
  { ifname: "vethab12", addr_info: [{ family: "inet", local: "10.9.9.9", prefixlen: 32 }] },
];

test("ignoredDevice: anklume's bridges, veth ends and lo", () => {
  for (const d of ["001-net-pro", "net-lab", "001-net4", "veth1234", "lo"])
    expect(ignoredDevice(d)).toBe(true);
  for (const d of ["eth0", "wlan0", "br0", "mynet"]) expect(ignoredDevice(d)).toBe(false);
});

test("routeLines and addressLines keep the host's entries as ip arguments", () => {
  expect(routeLines(routes4, "inet")).toEqual([
    "192.0.2.0/24 dev eth0 scope link",
    "default via 192.0.2.1 dev eth0",
  ]);
  expect(
    routeLines([{ dst: "default", gateway: "fd00::1", dev: "eth0", metric: 1024 }], "inet6"),
  ).toEqual(["-6 default via fd00::1 dev eth0 metric 1024"]);
  expect(addressLines(addrs)).toEqual(["192.0.2.2/24 dev eth0", "fd00::2/64 dev eth0"]);
  expect(routeLines("x", "inet")).toEqual([]);
});

test("compareNet and restoreCommands: what went, what came, and the commands that undo it", () => {
  const before = {
    routes: ["default via 192.0.2.1 dev eth0", "-6 default via fd00::1 dev eth0"],
    addresses: ["192.0.2.2/24 dev eth0"],
  };
  expect(unchanged(compareNet(before, before))).toBe(true);
  const after = { routes: ["default via 192.0.2.9 dev eth0"], addresses: [] };
  const d = compareNet(before, after);
  expect(d).toEqual({
    missingRoutes: ["default via 192.0.2.1 dev eth0", "-6 default via fd00::1 dev eth0"],
    newRoutes: ["default via 192.0.2.9 dev eth0"],
    missingAddresses: ["192.0.2.2/24 dev eth0"],
    newAddresses: [],
  });
  expect(restoreCommands(d)).toEqual([
    "ip addr add 192.0.2.2/24 dev eth0",
    "ip route del default via 192.0.2.9 dev eth0",
    "ip route add default via 192.0.2.1 dev eth0",
    "ip -6 route add default via fd00::1 dev eth0",
  ]);
});

const dir = mkdtempSync(join(tmpdir(), "anklume-netcheck-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("a backup reads back to the same state; the newest is found by name", () => {
  const s = { routes: ["default via 192.0.2.1 dev eth0"], addresses: ["192.0.2.2/24 dev eth0"] };
  const text = formatBackup(s, new Date(0));
  expect(text).toContain("[default gateway]\ndefault via 192.0.2.1 dev eth0");
  expect(parseBackup(text)).toEqual(s);
  expect(newestBackup(dir)).toBeNull();
  writeBackup(dir, { routes: [], addresses: [] }, new Date(2026, 0, 1, 10, 0, 0, 1));
  const p = writeBackup(dir, s, new Date(2026, 0, 1, 10, 0, 0, 2));
  expect(p.endsWith("network-20260101-100000-002.txt")).toBe(true);
  expect(newestBackup(dir)).toBe(p);
  expect(readBackup(p)).toEqual(s);
  expect(backupName(new Date(2026, 10, 29, 8, 5, 3, 7))).toBe("network-20261129-080503-007.txt");
});
