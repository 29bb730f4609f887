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

test("--tags nftables checks the role's arguments first: a knob of the wrong type fails, named, before anything is rendered", async () => {
  // The role is included (read only when play 3 runs): --list-tasks shows the include.
  const list = await playbook(["--tags", "nftables", "--list-tasks"]);
  expect(list.stdout).toContain("Firewall | Render the isolation ruleset");
  const r = await playbook([
    "--tags",
    "nftables",
    "-e",
    `incus_nftables_output_path=${join(work, "x.nft")}`,
    "-e",
    "incus_nftables_apply=maybe",
  ]);
  expect(r.exitCode).not.toBe(0);
  expect(r.stdout).toContain("TASK [incus_nftables : Incus nftables | Check the role's arguments]");
  expect(r.stdout).toContain("incus_nftables_apply");
  expect(r.stdout).toContain("not a valid boolean");
  expect(r.stdout).not.toContain("Incus nftables | Render the isolation ruleset");
}, 60_000);

/** v1's AI targets and their tag sets (operations-contract §5.3). */
const AI_TARGETS: [string, string][] = [
  ["apply-llm", "llm"],
  ["apply-stt", "stt"],
  ["apply-ai", "llm,stt,lobechat,opencode"],
  ["apply-code-sandbox", "code_sandbox"],
  ["apply-openclaw", "openclaw"],
  // v1's --tags agent-setup matched nothing; site.yml tags dev_agent_runner so.
  ["agent-runner-setup", "agent-setup"],
];
const makeIn = (args: string[]) =>
  $({
    cwd: work,
    env,
    nothrow: true,
    quiet: true,
  })`make --no-print-directory -f ${join(ROOT, "Makefile")} ${args}`;

/** Puts O_NONBLOCK on the shared stdout and stderr pipe, as a Bun process before us leaves it. */
const NONBLOCK = `perl -MFcntl -e 'for my $fd (1, 2) { open(my $h, ">&=", $fd) or next; fcntl($h, F_SETFL, fcntl($h, F_GETFL, 0) | O_NONBLOCK) }'`;

test("a pipe left non-blocking (as Bun leaves one, `make sync apply | tee log`): ansible-playbook alone refuses it, the Make target clears it and runs", async () => {
  const inPipe = (cmd: string) =>
    $({ cwd: work, env, nothrow: true, quiet: true })`sh -c ${`${NONBLOCK}; ${cmd}`}`;
  const alone = await inPipe("ansible-playbook --version");
  expect(alone.exitCode).not.toBe(0);
  expect(alone.stderr).toContain("Ansible requires blocking IO");
  const out = join(work, "blocking.nft");
  const r = await inPipe(
    `make --no-print-directory -f ${join(ROOT, "Makefile")} nftables NFT_FILE=${out}`,
  );
  expect(r.exitCode, r.stdout + r.stderr).toBe(0);
  expect(r.stdout).toContain("PLAY RECAP");
}, 60_000);

test.each(AI_TARGETS)(
  "make %s runs site.yml --tags %s inside safe_apply_wrap, and is in make help",
  async (target, tags) => {
    const r = await makeIn(["-n", target]);
    expect(r.exitCode, r.stderr).toBe(0);
    const lines = r.stdout.split("\n");
    const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
    const play = at(new RegExp(`ansible-playbook site\\.yml --tags ${tags}( |$)`));
    expect(play, r.stdout).toBeGreaterThan(-1);
    // safe_apply_wrap's steps around it, in order: network backup, snapshot, the play, verify, cleanup.
    expect(at(/network-check\.ts backup/)).toBeGreaterThan(-1);
    expect(at(/network-check\.ts backup/)).toBeLessThan(at(/snapshot-apply\.ts create/));
    expect(at(/snapshot-apply\.ts create/)).toBeLessThan(play);
    expect(at(/network-check\.ts verify/)).toBeGreaterThan(play);
    expect(at(/snapshot-apply\.ts cleanup/)).toBeGreaterThan(play);
    const help = await makeIn(["help"]);
    expect(help.stdout).toMatch(new RegExp(`^  ${target} +\\S.*--tags ${tags}\\)`, "m"));
  },
);

test("make apply-ai runs the real playbook with its tags: play 2's role task is selected, play 1's reconcile and play 3 are not", async () => {
  const r = await makeIn([
    "apply-ai",
    "ARGS=--list-tasks",
    "SKIP_SNAPSHOT=1",
    "ANKLUME_SKIP_NETWORK_CHECK=1",
  ]);
  expect(r.exitCode, r.stderr).toBe(0);
  expect(r.stderr).toContain("==> Running: apply-ai");
  expect(r.stdout).toContain("Provisioning | Apply the machine's roles");
  expect(r.stdout).not.toContain("Incus reconcile | Reconcile projects");
  expect(r.stdout).not.toContain("incus_nftables :");
}, 60_000);
