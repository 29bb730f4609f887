/**
 * site.yml's plays and tags, with the real ansible-playbook: `--tags infra`
 * runs play 1's one task and nothing of play 3 (its argument check used to be
 * tagged `always`), and play 3 still refuses a knob of the wrong type, naming it.
 */
import { afterAll, expect, test } from "bun:test";
import { cpSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { $ } from "zx";

const ROOT = resolve(import.meta.dir, "..");
const work = mkdtempSync(join(tmpdir(), "anklume-site-"));
cpSync(join(ROOT, "tests/fixtures/worked-example"), work, { recursive: true });
for (const f of ["site.yml", "ansible.cfg"]) cpSync(join(ROOT, f), join(work, f));
for (const f of ["roles", "scripts", "lib", "node_modules", "package.json"]) {
  symlinkSync(join(ROOT, f), join(work, f));
}
const env = { ...process.env, PATH: `/opt/anklume/venv/bin:${process.env.PATH}`, NO_COLOR: "1" };
const playbook = (args: string[]) =>
  $({ cwd: work, env, nothrow: true, quiet: true })`ansible-playbook site.yml ${args}`;

afterAll(() => rmSync(work, { recursive: true, force: true }));

test("--tags infra lists play 1's reconcile task and no task of plays 2 and 3", async () => {
  const r = await playbook(["--tags", "infra", "--list-tasks"]);
  expect(r.exitCode, r.stderr).toBe(0);
  expect(r.stdout).toContain("Incus reconcile | Reconcile projects");
  const play3 = r.stdout.slice(r.stdout.indexOf("play #3"));
  expect(play3).not.toContain("incus_nftables :");
  expect(r.stdout).not.toContain("Validating arguments");
});

test("--tags nftables checks the role's arguments first: a knob of the wrong type fails, named", async () => {
  const list = await playbook(["--tags", "nftables", "--list-tasks"]);
  expect(list.stdout).toContain("Incus nftables | Check the role's arguments");
  const r = await playbook([
    "--tags",
    "nftables",
    "-e",
    `incus_nftables_output_path=${join(work, "x.nft")}`,
    "-e",
    "incus_nftables_apply=maybe",
  ]);
  expect(r.exitCode).not.toBe(0);
  expect(r.stdout).toContain("incus_nftables_apply");
  expect(r.stdout).toContain("not a valid boolean");
}, 60_000);
