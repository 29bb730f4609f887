/**
 * An Incus image's metadata: `metadata.yaml` (architecture, creation date,
 * properties, templates) and the templates that give an instance its own
 * `/etc/hostname` and `/etc/hosts`, packed as the metadata tarball of a split
 * image. Also the tarball writer both images use.
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { arch } from "node:os";
import { join } from "node:path";
import { $ } from "zx";

/** Incus's architecture name for this machine (`x64` → `x86_64`). */
export function incusArch(nodeArch: string = arch()): string {
  const map: Record<string, string> = { x64: "x86_64", arm64: "aarch64", arm: "armv7l" };
  return map[nodeArch] ?? nodeArch;
}

/** metadata.yaml of an image: architecture, creation date, properties, templates. */
export function metadataYaml(p: {
  arch: string;
  created: Date;
  os: string;
  release: string;
  description: string;
}): string {
  const epoch = Math.floor(p.created.getTime() / 1000);
  const q = (s: string) => JSON.stringify(s);
  return [
    `architecture: ${q(p.arch)}`,
    `creation_date: ${epoch}`,
    "properties:",
    `  architecture: ${q(p.arch)}`,
    `  os: ${q(p.os)}`,
    `  release: ${q(p.release)}`,
    `  description: ${q(p.description)}`,
    `  serial: ${q(p.created.toISOString().slice(0, 16).replace(/[-:T]/g, ""))}`,
    "templates:",
    "  /etc/hostname:",
    "    when: [create, copy]",
    "    template: hostname.tpl",
    "  /etc/hosts:",
    "    when: [create, copy]",
    "    template: hosts.tpl",
    "",
  ].join("\n");
}

/** Incus templates (pongo2) referenced by metadataYaml. */
export const TEMPLATES: Record<string, string> = {
  "hostname.tpl": "{{ instance.name }}\n",
  "hosts.tpl":
    "127.0.0.1\tlocalhost\n127.0.1.1\t{{ instance.name }}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
};

/** Pack `entries` of `srcDir` into the gzipped tarball `out` (numeric owners), written atomically. */
export async function tarInto(
  srcDir: string,
  out: string,
  entries: string[] = ["."],
): Promise<void> {
  const tmp = `${out}.part`;
  await $({ quiet: true })`tar --numeric-owner -C ${srcDir} -czf ${tmp} ${entries}`;
  renameSync(tmp, out);
}

/**
 * Write an image's metadata tarball `out`, staged in `dir/meta`; `what` is
 * the description, followed by the creation day.
 */
export async function writeMeta(
  dir: string,
  out: string,
  p: { os: string; release: string; what: string; created?: Date },
): Promise<void> {
  const created = p.created ?? new Date();
  const meta = metadataYaml({
    arch: incusArch(),
    created,
    os: p.os,
    release: p.release,
    description: `${p.what} (${created.toISOString().slice(0, 10)})`,
  });
  const stage = join(dir, "meta");
  mkdirSync(join(stage, "templates"), { recursive: true });
  writeFileSync(join(stage, "metadata.yaml"), meta);
  for (const [name, text] of Object.entries(TEMPLATES)) {
    writeFileSync(join(stage, "templates", name), text);
  }
  await tarInto(stage, out, ["metadata.yaml", "templates"]);
}
