/**
 * The VM path of make apply on the real daemon. VMs cannot start on these
 * machines (no vhost_vsock), so the check is the daemon's own answer to the
 * `incus init --vm` that apply sends, plus the firewall VM's multi-NIC
 * profile (decision 9), which is built before the VM is created.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { parse } from "yaml";
import { incusJson } from "../lib/incus.ts";
import {
  cleanupInfra,
  freeSubnets,
  make,
  makeWorkdir,
  removeWorkdir,
  testImage,
  write,
} from "./apply-helpers.ts";
import { incusOrSkip, uniq } from "./helpers.ts";

const live = await incusOrSkip("apply-vm");
const u = uniq();
const [ADMIN, LAB] = ["anklume", `vl${u}`];
let dir = "";
let infraId = "";
let out = { code: 0, out: "" };
const gv: Record<string, { incus_project: string; incus_network: { name: string } }> = {};

describe.skipIf(!live)("make apply-infra with firewall_mode: vm", () => {
  beforeAll(async () => {
    dir = makeWorkdir("anklume-apply-vm");
    const s = await freeSubnets("10.231", 2);
    const image = await testImage();
    write(
      join(dir, "infra.yml"),
      `project_name: vm${u}
global:
  base_subnet: "10.231"
  default_os_image: ${image}
  firewall_mode: vm
domains:
  ${ADMIN}:
    subnet_id: ${s[0]}
    machines: {}
  ${LAB}:
    subnet_id: ${s[1]}
    machines:
      ${u}-l1: {}
`,
    );
    const sync = await make(dir, ["sync"]);
    expect(sync.code, sync.out).toBe(0);
    for (const d of [ADMIN, LAB])
      gv[d] = parse(readFileSync(join(dir, "group_vars", `${d}.yml`), "utf8"));
    const adminProject = gv[ADMIN]?.incus_project ?? "";
    infraId = `${adminProject.slice(0, -ADMIN.length)}vm${u}`;
    out = await make(dir, ["apply-infra", "NAT=false", "SKIP_SNAPSHOT=1", `CONTEXT_DIR=${dir}`]);
  }, 300_000);

  afterAll(async () => {
    if (infraId) await cleanupInfra(infraId);
    if (dir) removeWorkdir(dir);
  }, 120_000);

  test("sys-firewall reaches the daemon as `incus init --vm` (fake: VMs cannot start here; the daemon's refusal is the check)", () => {
    expect(out.code).not.toBe(0);
    expect(out.out).toMatch(/init \S+ \S*sys-firewall --vm/);
    // The failure of one instance does not stop the others.
    expect(out.out).not.toMatch(/\S+-l1: .*failed/);
    expect(out.out).toMatch(
      /Asked for a VM but\s+image is of type container|virtual-machine" is not\s+supported/,
    );
  });

  test("the multi-NIC profile has the admin bridge first, then every other bridge (decision 9)", async () => {
    const project = gv[ADMIN]?.incus_project as string;
    const profiles = await incusJson(["profile", "list", "--project", project], v.array(v.any()));
    const fw = profiles.find((p: { name: string }) => p.name === "firewall-multi-nic");
    expect(fw, out.out).toBeDefined();
    const lab = await incusJson(
      ["list", "--project", gv[LAB]?.incus_project as string],
      v.array(v.any()),
    );
    expect(lab.map((i: { status: string }) => i.status)).toEqual(["Running"]);
    expect(fw.devices).toEqual({
      eth0: { type: "nic", name: "eth0", network: gv[ADMIN]?.incus_network.name },
      eth1: { type: "nic", name: "eth1", network: gv[LAB]?.incus_network.name },
    });
  });
});
