import { expect, test } from "bun:test";
import {
  exportName,
  exportPlan,
  hostImagesDevice,
  localAlias,
  runsNestedIncus,
  usedImages,
} from "./images.ts";

test("localAlias keeps what follows the last colon; exportName makes one flat file name", () => {
  expect(localAlias("images:debian/13")).toBe("debian/13");
  expect(localAlias("anklume-debian12")).toBe("anklume-debian12");
  expect(exportName("debian/13")).toBe("debian_13");
  expect(exportName("../../etc")).toBe(".._.._etc");
  expect(exportName("anklume-busybox")).toBe("anklume-busybox");
});

test("usedImages: each host's image (default_os_image as fallback), the override instead of all of them", () => {
  const hosts = [
    { vars: { instance_os_image: "images:debian/13" } },
    { vars: { instance_os_image: "anklume-busybox" } },
    { vars: {} },
    { vars: { instance_os_image: "anklume-busybox" } },
  ];
  expect(usedImages(hosts, { default_os_image: "anklume-debian12" })).toEqual([
    "anklume-busybox",
    "anklume-debian12",
    "debian/13",
  ]);
  expect(usedImages(hosts, {})).toEqual(["anklume-busybox", "debian/13"]);
  expect(usedImages(hosts, {}, "anklume-debian12")).toEqual(["anklume-debian12"]);
});

test("exportPlan keeps an export only when its fingerprint matches and all its files are there", () => {
  const local = new Map([
    ["a", "fa"],
    ["b", "fb2"],
    ["c", "fc"],
  ]);
  const index = [
    { alias: "a", fingerprint: "fa", files: ["a", "a.root"] },
    { alias: "b", fingerprint: "fb1", files: ["b.tar.gz"] },
    { alias: "c", fingerprint: "fc", files: ["c", "c.root"] },
  ];
  const present = (f: string) => f !== "c.root";
  expect(exportPlan(["a", "b", "c", "d"], local, index, present)).toEqual([
    { alias: "a", fingerprint: "fa", action: "keep" },
    { alias: "b", fingerprint: "fb2", action: "export" },
    { alias: "c", fingerprint: "fc", action: "export" },
    { alias: "d", action: "missing" },
  ]);
});

test("the nested-Incus machines are those with dev_test_runner; their disk is read-only and optional", () => {
  expect(runsNestedIncus({ roles: ["base_system", "dev_test_runner"] })).toBe(true);
  expect(runsNestedIncus({ roles: ["base_system"] })).toBe(false);
  expect(runsNestedIncus({})).toBe(false);
  expect(runsNestedIncus(null)).toBe(false);
  expect(hostImagesDevice("/srv/img")).toEqual({
    type: "disk",
    source: "/srv/img",
    path: "/mnt/host-images",
    readonly: "true",
    required: "false",
  });
});
