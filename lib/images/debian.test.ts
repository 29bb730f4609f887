/**
 * lib/images/debian.ts: the pure parts only. A real debootstrap takes about
 * a minute and needs a mirror; bootstrap.sh builds that image, and
 * tests/bootstrap.test.ts boots it.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  DEBIAN_PACKAGES,
  DEFAULT_MIRROR,
  debootstrapArgs,
  hostMirror,
  mirrorFromSources,
  NETWORKD_ETH0,
  PRUNE,
  pruneRootfs,
} from "./debian.ts";

const dir = mkdtempSync(join(tmpdir(), "anklume-images-debian-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("mirrorFromSources takes the first deb entry with a plain suite, in file order", () => {
  expect(
    mirrorFromSources([
      { name: "a.list", text: "deb http://security.debian.org/debian-security bookworm main\n" },
      {
        name: "b.sources",
        text: "Types: deb deb-src\nURIs: http://b.example/debian http://c.example/debian\nSuites: bookworm-updates bookworm\n",
      },
      { name: "c.list", text: "deb http://later.example/debian bookworm main\n" },
    ]),
  ).toBe("http://b.example/debian");
  expect(
    mirrorFromSources([
      { name: "x.list", text: "deb http://x.example/debian bookworm-backports main\n" },
    ]),
  ).toBeUndefined();
});

test("hostMirror reads sources.list.d in name order, then sources.list, else the default", () => {
  const root = mkdtempSync(join(dir, "apt-"));
  expect(hostMirror(root)).toBe(DEFAULT_MIRROR);
  writeFileSync(join(root, "sources.list"), "deb http://list.example/debian bookworm main\n");
  expect(hostMirror(root)).toBe("http://list.example/debian");
  mkdirSync(join(root, "sources.list.d"));
  writeFileSync(
    join(root, "sources.list.d", "b.sources"),
    "Types: deb\nURIs: http://b.example/debian\nSuites: bookworm\n",
  );
  writeFileSync(
    join(root, "sources.list.d", "a.list"),
    "deb http://a.example/debian trixie main\n",
  );
  expect(hostMirror(root)).toBe("http://a.example/debian");
});

test("debootstrapArgs: minbase bookworm with every package of the image, into the root, from the mirror", () => {
  expect(debootstrapArgs("/w/rootfs", "http://m.example/debian")).toEqual([
    "--variant=minbase",
    `--include=${DEBIAN_PACKAGES.join(",")}`,
    "bookworm",
    "/w/rootfs",
    "http://m.example/debian",
  ]);
  // Ansible's apt module needs python3-apt; networkd needs udev in privileged containers.
  for (const p of ["python3", "python3-apt", "systemd-sysv", "udev"])
    expect(DEBIAN_PACKAGES).toContain(p);
});

test("PRUNE drops downloaded packages, apt's caches and lists, but keeps apt's lock and partial dir", () => {
  const keep = (d: string, names: string[]) => {
    const match = PRUNE.find(([p]) => p === d)?.[1];
    if (!match) throw new Error(`no prune rule for ${d}`);
    return names.filter((n) => !match(n));
  };
  expect(keep("var/cache/apt/archives", ["a.deb", "partial", "lock"])).toEqual(["partial", "lock"]);
  expect(keep("var/cache/apt", ["pkgcache.bin", "srcpkgcache.bin", "archives"])).toEqual([
    "archives",
  ]);
  expect(
    keep("var/lib/apt/lists", ["deb.debian.org_dists_bookworm_InRelease", "partial", "lock"]),
  ).toEqual(["partial", "lock"]);
});

test("pruneRootfs empties the package lists and dates them from the epoch, so that the roles' apt refreshes the index on a freshly built image", () => {
  const root = mkdtempSync(join(tmpdir(), "anklume-prune-"));
  try {
    const lists = join(root, "var/lib/apt/lists");
    mkdirSync(join(lists, "partial"), { recursive: true });
    writeFileSync(join(lists, "deb.debian.org_dists_bookworm_InRelease"), "x");
    writeFileSync(join(lists, "lock"), "");
    pruneRootfs(root);
    expect(readdirSync(lists).sort()).toEqual(["lock", "partial"]);
    expect(statSync(lists).mtimeMs).toBe(0);
    // A rootfs without apt is left alone.
    pruneRootfs(join(root, "var/lib/apt/lists/partial"));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("NETWORKD_ETH0 asks DHCPv4 on eth0 and nothing of IPv6", () => {
  expect(NETWORKD_ETH0).toContain("[Match]\nName=eth0\n");
  expect(NETWORKD_ETH0).toContain("DHCP=ipv4\n");
  expect(NETWORKD_ETH0).toContain("IPv6AcceptRA=no\n");
});
