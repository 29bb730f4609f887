/**
 * Image sharing across nesting levels (SPEC-operations section 15): the host
 * exports the images the infra uses (`make export-images`, scripts/export-images.ts)
 * into HOST_IMAGES_DIR; machines that run Incus themselves get that
 * directory as a read-only disk at GUEST_IMAGES_DIR, and roles/dev_test_runner
 * imports from it, so a nested Incus needs no network.
 *
 * Layout of the directory, one entry per alias, as `incus image export`
 * writes it: a split image is `<alias>` (metadata tarball) plus
 * `<alias>.root` (rootfs); a unified one is `<alias>.tar.gz` (or another
 * tarball extension). `index.json` lists {alias, fingerprint, files}.
 */

/** Where `make export-images` writes on the host. */
export const HOST_IMAGES_DIR = "/var/lib/anklume/images";
/** Where a machine that runs Incus sees it (roles/dev_test_runner `dev_test_runner_images_dir`). */
export const GUEST_IMAGES_DIR = "/mnt/host-images";
/** The Incus device name of that disk. */
export const HOST_IMAGES_DEVICE = "host-images";

/** The roles that run an Incus daemon inside their machine. */
export const NESTED_INCUS_ROLES = ["dev_test_runner"];

/** Does this machine run Incus itself (and so needs the host's images)? */
export function runsNestedIncus(machine: { roles?: string[] | null } | null | undefined): boolean {
  return (machine?.roles ?? []).some((r) => NESTED_INCUS_ROLES.includes(r));
}

/**
 * The disk device: read-only, and not required, so that a machine still
 * starts before the first `make export-images` (the role then says to run it).
 */
export function hostImagesDevice(source = HOST_IMAGES_DIR): Record<string, string> {
  return {
    type: "disk",
    source,
    path: GUEST_IMAGES_DIR,
    readonly: "true",
    required: "false",
  };
}

/** The local alias of an image reference: the part after the last `:` (`images:debian/13` → `debian/13`). */
export function localAlias(ref: string): string {
  const i = ref.lastIndexOf(":");
  return i >= 0 ? ref.slice(i + 1) : ref;
}

/** A file name for an alias (`debian/13` → `debian_13`): no directories inside the export. */
export function exportName(alias: string): string {
  return alias.replace(/[^A-Za-z0-9._-]/g, "_");
}

/** One entry of `index.json`. */
export interface ExportEntry {
  alias: string;
  fingerprint: string;
  /** Files in the export directory: [metadata, rootfs] for a split image, [tarball] for a unified one. */
  files: string[];
}

/**
 * The images an infra uses, from the generated variables: every host's
 * `instance_os_image` (else `default_os_image`), replaced by the `OS_IMAGE`
 * override when given; as local aliases, sorted, once.
 */
export function usedImages(
  hosts: { vars: Record<string, unknown> }[],
  all: Record<string, unknown>,
  override?: string,
): string[] {
  const refs = new Set<string>();
  if (override) refs.add(override);
  else {
    for (const h of hosts) {
      const ref = h.vars.instance_os_image ?? all.default_os_image;
      if (typeof ref === "string" && ref !== "") refs.add(ref);
    }
  }
  return [...new Set([...refs].map(localAlias))].sort();
}

/** What to do for each alias: export it, or keep the export whose fingerprint still matches. */
export function exportPlan(
  aliases: string[],
  local: Map<string, string>,
  index: ExportEntry[],
  present: (file: string) => boolean,
): { alias: string; fingerprint?: string; action: "export" | "keep" | "missing" }[] {
  return aliases.map((alias) => {
    const fingerprint = local.get(alias);
    if (fingerprint === undefined) return { alias, action: "missing" };
    const old = index.find((e) => e.alias === alias);
    const keep =
      old !== undefined &&
      old.fingerprint === fingerprint &&
      old.files.length > 0 &&
      old.files.every(present);
    return { alias, fingerprint, action: keep ? "keep" : "export" };
  });
}
