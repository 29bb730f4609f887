/**
 * lib/images/busybox.ts: the pure parts, and a real build of the rootfs
 * from this host's static busybox into a temporary directory (~0.3 s).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { $ } from "zx";
import { appletPaths, buildBusybox, busyboxFiles, HOST_BUSYBOX } from "./busybox.ts";

const dir = mkdtempSync(join(tmpdir(), "anklume-images-busybox-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const q = $({ quiet: true, nothrow: true });

test("appletPaths keeps the applets' paths, without busybox itself or blank lines", () => {
  expect(appletPaths("bin/busybox\nbin/sh\n  sbin/init \nusr/bin/wget\n\nnonsense\n")).toEqual([
    "bin/sh",
    "sbin/init",
    "usr/bin/wget",
  ]);
});

test("busyboxFiles: the scripts are executable, shadow is private, the rest readable", () => {
  const mode = Object.fromEntries(busyboxFiles().map((f) => [f.path, f.mode]));
  expect(mode["etc/init.d/rcS"]).toBe(0o755);
  expect(mode["etc/init.d/dhcp-eth0"]).toBe(0o755);
  expect(mode["usr/share/udhcpc/default.script"]).toBe(0o755);
  expect(mode["etc/shadow"]).toBe(0o600);
  expect(mode["etc/inittab"]).toBe(0o644);
});

test("buildBusybox refuses a busybox that is missing or dynamically linked, naming the package", async () => {
  for (const bad of [join(dir, "no-busybox"), "/bin/ls"]) {
    await expect(buildBusybox(mkdtempSync(join(dir, "w-")), bad)).rejects.toThrow(
      `Cannot build the busybox image: ${bad} is missing or not static; install busybox-static (apt-get install busybox-static)`,
    );
  }
});

describe.skipIf(!existsSync(HOST_BUSYBOX))(
  "a real build (skipped only without /bin/busybox; bootstrap installs busybox-static)",
  () => {
    test("buildBusybox packs busybox, a link per applet (init included), the image's files and metadata", async () => {
      const work = mkdtempSync(join(dir, "build-"));
      const { meta, rootfs } = await buildBusybox(work);
      expect([meta, rootfs]).toEqual([
        join(work, "busybox-meta.tar.gz"),
        join(work, "busybox-rootfs.tar.gz"),
      ]);
      const listing = (await q`tar -tvzf ${rootfs}`).stdout;
      expect(listing).toMatch(/^-rwx.* \.\/bin\/busybox$/m);
      expect(listing).toMatch(/^l.* \.\/sbin\/init -> \/bin\/busybox$/m);
      expect(listing).toMatch(/^l.* \.\/bin\/sh -> \/bin\/busybox$/m);
      expect(listing).toMatch(/^drwxrwxrwt.* \.\/tmp\/$/m);
      expect(listing).toMatch(/^drwx------.* \.\/root\/$/m);
      expect(listing).toMatch(/^-rw-------.* \.\/etc\/shadow$/m);
      expect(listing).toMatch(/^-rwxr-xr-x.* \.\/usr\/share\/udhcpc\/default\.script$/m);
      const version = /BusyBox v([\d.]+)/.exec((await q`${HOST_BUSYBOX}`).stdout)?.[1];
      expect(version).toBeDefined();
      const x = mkdtempSync(join(dir, "meta-"));
      await q`tar -xzf ${meta} -C ${x}`;
      expect((await q`cat ${join(x, "metadata.yaml")}`).stdout).toContain(`release: "${version}"`);
      // The rootfs's busybox runs its own applets (it is the host's static one).
      const sh = await q`${join(work, "rootfs/bin/busybox")} sh -c ${"echo ok"}`;
      expect(sh.stdout).toBe("ok\n");
    }, 60_000);
  },
);
