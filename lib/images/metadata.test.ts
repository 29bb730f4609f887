import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { $ } from "zx";
import { incusArch, metadataYaml, TEMPLATES, tarInto, writeMeta } from "./metadata.ts";

const dir = mkdtempSync(join(tmpdir(), "anklume-images-meta-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("incusArch names this machine's architecture the way Incus does", () => {
  expect(incusArch("x64")).toBe("x86_64");
  expect(incusArch("arm64")).toBe("aarch64");
  expect(incusArch("arm")).toBe("armv7l");
  expect(incusArch("riscv64")).toBe("riscv64");
});

test("metadataYaml quotes values, dates the image and names both templates", () => {
  const created = new Date("2026-03-04T05:06:07Z");
  const meta = parseYaml(
    metadataYaml({
      arch: "x86_64",
      created,
      os: "debian",
      release: "bookworm",
      description: "a: b",
    }),
  );
  expect(meta).toEqual({
    architecture: "x86_64",
    creation_date: Math.floor(created.getTime() / 1000),
    properties: {
      architecture: "x86_64",
      os: "debian",
      release: "bookworm",
      description: "a: b",
      serial: "202603040506",
    },
    templates: {
      "/etc/hostname": { when: ["create", "copy"], template: "hostname.tpl" },
      "/etc/hosts": { when: ["create", "copy"], template: "hosts.tpl" },
    },
  });
});

test("writeMeta packs metadata.yaml and the templates, dated in the description", async () => {
  const out = join(dir, "meta.tar.gz");
  const created = new Date("2026-03-04T05:06:07Z");
  await writeMeta(dir, out, { os: "busybox", release: "1.35.0", what: "anklume busybox", created });
  const list = (await $({ quiet: true })`tar -tzf ${out}`).stdout.trim().split("\n").sort();
  expect(list).toEqual([
    "metadata.yaml",
    "templates/",
    "templates/hostname.tpl",
    "templates/hosts.tpl",
  ]);
  const x = mkdtempSync(join(dir, "x-"));
  await $({ quiet: true })`tar -xzf ${out} -C ${x}`;
  const meta = parseYaml(readFileSync(join(x, "metadata.yaml"), "utf8"));
  expect(meta.architecture).toBe(incusArch());
  expect(meta.properties.description).toBe("anklume busybox (2026-03-04)");
  expect(readFileSync(join(x, "templates/hosts.tpl"), "utf8")).toBe(TEMPLATES["hosts.tpl"] ?? "");
});

test("tarInto writes the tarball atomically: no .part file is left, owners are numeric", async () => {
  const src = mkdtempSync(join(dir, "src-"));
  await $({ quiet: true })`touch ${join(src, "f")}`;
  const out = join(dir, "t.tar.gz");
  await tarInto(src, out);
  expect((await $({ quiet: true, nothrow: true })`test -e ${`${out}.part`}`).exitCode).toBe(1);
  const listing = (await $({ quiet: true })`tar -tvzf ${out} --numeric-owner`).stdout;
  expect(listing).toMatch(/ 0\/0 .* \.\/f$/m);
});
