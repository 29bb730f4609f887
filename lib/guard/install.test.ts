import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { applyStep, describeStep, type InstallStep, installPlan } from "./install.ts";

function at(plan: InstallStep[], i: number): InstallStep {
  const s = plan[i];
  if (!s) throw new Error(`no step ${i}`);
  return s;
}

const root = mkdtempSync(join(tmpdir(), "anklume-guard-install-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

test("installPlan puts the binary, the v1 symlink and the drop-in under the root", () => {
  const plan = installPlan("/mnt/target", "/build/incus-guard");
  expect(plan.map((s) => s.path)).toEqual([
    "/mnt/target/opt/anklume/incus-guard",
    "/mnt/target/opt/anklume/incus-guard.sh",
    "/mnt/target/etc/systemd/system/incus.service.d/network-guard.conf",
  ]);
  expect(describeStep(at(plan, 2))).toContain("ExecStartPost=-/opt/anklume/incus-guard post-start");
});

test("applyStep writes atomically with the right modes, then changes nothing the second time", async () => {
  const src = join(root, "built");
  writeFileSync(src, "#!/bin/sh\necho guard\n");
  const target = join(root, "t");
  const plan = installPlan(target, src);
  for (const step of plan) expect(await applyStep(step)).toBe(true);
  expect(statSync(join(target, "opt/anklume/incus-guard")).mode & 0o777).toBe(0o755);
  expect(readlinkSync(join(target, "opt/anklume/incus-guard.sh"))).toBe("incus-guard");
  const dropIn = join(target, "etc/systemd/system/incus.service.d/network-guard.conf");
  expect(statSync(dropIn).mode & 0o777).toBe(0o644);
  expect(readFileSync(dropIn, "utf8")).toContain("[Service]");
  for (const step of plan) expect(await applyStep(step)).toBe(false);

  // A v1 install left a real script at the old path: it becomes the symlink.
  rmSync(join(target, "opt/anklume/incus-guard.sh"));
  writeFileSync(join(target, "opt/anklume/incus-guard.sh"), "#!/bin/bash\n# v1\n");
  expect(await applyStep(at(plan, 1))).toBe(true);
  expect(readlinkSync(join(target, "opt/anklume/incus-guard.sh"))).toBe("incus-guard");

  // A changed binary is replaced.
  writeFileSync(src, "#!/bin/sh\necho guard v2\n");
  expect(await applyStep(at(plan, 0))).toBe(true);
  expect(readFileSync(join(target, "opt/anklume/incus-guard"), "utf8")).toContain("v2");
});
