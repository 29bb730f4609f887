/**
 * make upgrade and the update notifier, end to end, without network: the
 * upstream is a bare clone of this repository in a temp dir, the user's
 * checkout a clone of it, and new upstream commits are pushed from a third
 * clone. The scratch checkout runs its own Makefile and generator (node_modules
 * linked from this repository).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..");
const tmp = mkdtempSync(join(tmpdir(), "anklume-upgrade-"));
const BARE = join(tmp, "upstream.git");
const USER = join(tmp, "user");
const DEV = join(tmp, "dev");
const CTX = join(tmp, "ctx");
const CACHE_FILE = join(tmp, "notifier", "update-check-cache");

const ENV: Record<string, string> = {
  ...(process.env as Record<string, string>),
  ANKLUME_CONTEXT_DIR: CTX,
  ANKLUME_CACHE_DIR: join(tmp, "cache"),
  ANKLUME_SKIP_HOST_SUBNET_CHECK: "1",
  ANKLUME_UPDATE_CHECK_CACHE: CACHE_FILE,
  NO_COLOR: "1",
  GIT_AUTHOR_NAME: "t",
  GIT_AUTHOR_EMAIL: "t@example.invalid",
  GIT_COMMITTER_NAME: "t",
  GIT_COMMITTER_EMAIL: "t@example.invalid",
  GIT_CONFIG_NOSYSTEM: "1",
  HOME: join(tmp, "home"),
};
delete ENV.MAKEFLAGS;
delete ENV.MAKELEVEL;

function run(cmd: string, args: string[], cwd: string) {
  const r = spawnSync(cmd, args, { cwd, env: ENV, encoding: "utf8" });
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}
function git(cwd: string, ...args: string[]): string {
  const r = run("git", args, cwd);
  if (r.code !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
  return r.stdout.trim();
}
const upgrade = (cwd: string, ...args: string[]) =>
  run("bun", [join(ROOT, "scripts/upgrade.ts"), ...args], cwd);
const notifier = (cwd: string) => run("bun", [join(ROOT, "scripts/update-check.ts"), cwd], tmp);

/** Push a commit to the upstream that changes `files` (path → function of the old text). */
function pushUpstream(subject: string, files: Record<string, (old: string) => string>): string {
  git(DEV, "pull", "-q", "--ff-only");
  for (const [p, f] of Object.entries(files)) {
    const file = join(DEV, p);
    writeFileSync(file, f(existsSync(file) ? readFileSync(file, "utf8") : ""));
  }
  git(DEV, "add", "-A");
  git(DEV, "commit", "-q", "-m", subject);
  git(DEV, "push", "-q", "origin", "HEAD");
  return git(DEV, "rev-parse", "--short", "HEAD");
}

const INFRA = `project_name: upg
global:
  base_subnet: "10.100"
domains:
  pro:
    subnet_id: 1
    file_portal:
      allowed_paths: ["/shared/pro"]
    machines:
      pro-dev:
        ip: "10.100.1.10"
        export_apps: [firefox]
`;
/** Everything of the user's: compared byte for byte before and after. */
const USER_FILES = [
  "infra.yml",
  "anklume.conf.yml",
  "roles_custom/mine/tasks/main.yml",
  "host_vars/pro-dev.yml",
  "group_vars/pro.yml",
  "inventory/pro.yml",
];
const snapshot = () =>
  Object.fromEntries(USER_FILES.map((f) => [f, readFileSync(join(USER, f), "utf8")]));

let branch = "";

beforeAll(() => {
  mkdirSync(CTX);
  mkdirSync(ENV.HOME as string);
  git(tmp, "clone", "-q", "--bare", ROOT, BARE);
  git(tmp, "clone", "-q", BARE, USER);
  git(tmp, "clone", "-q", BARE, DEV);
  branch = git(USER, "rev-parse", "--abbrev-ref", "HEAD");
  symlinkSync(join(ROOT, "node_modules"), join(USER, "node_modules"));
  // The user's files: infra.yml, a config, a custom role, the generated tree with a variable of theirs.
  writeFileSync(join(USER, "infra.yml"), INFRA);
  writeFileSync(join(USER, "anklume.conf.yml"), "# mine\nlanguage: fr\n");
  mkdirSync(join(USER, "roles_custom/mine/tasks"), { recursive: true });
  writeFileSync(
    join(USER, "roles_custom/mine/tasks/main.yml"),
    "---\n- name: Mine | Do\n  ansible.builtin.debug:\n",
  );
  const sync = run("make", ["--no-print-directory", "sync"], USER);
  if (sync.code !== 0) throw new Error(`first sync: ${sync.stdout}${sync.stderr}`);
  appendFileSync(join(USER, "host_vars/pro-dev.yml"), "my_own_var: 42\n");
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("make upgrade", () => {
  // Matrix: LC-008
  test("a framework file changed locally gets its .bak before the update; user files are byte-identical after", () => {
    // Local changes: site.yml (upstream changes it too), ansible.cfg (upstream does not).
    appendFileSync(join(USER, "site.yml"), "# my local tweak\n");
    appendFileSync(join(USER, "ansible.cfg"), "# my ansible tweak\n");
    const mine = readFileSync(join(USER, "site.yml"), "utf8");
    const cfg = readFileSync(join(USER, "ansible.cfg"), "utf8");
    const sha = pushUpstream("upstream: a note in site.yml and the README", {
      "site.yml": (t) => `${t}# upstream's note\n`,
      "README.md": (t) => `${t}\nUpstream line.\n`,
    });
    const before = snapshot();
    const from = git(USER, "rev-parse", "--short", "HEAD");

    const r = upgrade(USER);
    expect(r.stderr).toContain(
      `Upgraded anklume from ${from} to ${sha}: 1 commit from origin/${branch}`,
    );
    expect(r.stderr).toContain(`${sha} upstream: a note in site.yml and the README`);
    expect(r.stderr).toContain("site.yml -> site.yml.bak");
    expect(r.stderr).toContain(
      "Kept your changes to framework files the update does not touch:\n  ansible.cfg",
    );
    expect(r.stderr).toContain("Not touched (yours): infra.yml, roles_custom/, anklume.conf.yml");
    expect(r.stderr).toContain("Your infra.yml is accepted by the updated framework");
    expect(r.code).toBe(0);

    expect(readFileSync(join(USER, "site.yml.bak"), "utf8")).toBe(mine);
    expect(readFileSync(join(USER, "site.yml"), "utf8")).toBe(
      readFileSync(join(DEV, "site.yml"), "utf8"),
    );
    expect(readFileSync(join(USER, "README.md"), "utf8")).toContain("Upstream line.");
    expect(readFileSync(join(USER, "ansible.cfg"), "utf8")).toBe(cfg);
    expect(git(USER, "rev-parse", "--short", "HEAD")).toBe(sha);
    expect(snapshot()).toEqual(before);
    expect(readFileSync(join(USER, "host_vars/pro-dev.yml"), "utf8")).toContain("my_own_var: 42");
  });

  test("a second upgrade with nothing new says so and changes nothing (through make, UPSTREAM=)", () => {
    const before = snapshot();
    const head = git(USER, "rev-parse", "HEAD");
    const r = run("make", ["--no-print-directory", "upgrade", `UPSTREAM=origin/${branch}`], USER);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("Already up to date");
    expect(r.stderr).toContain("Nothing was changed");
    expect(git(USER, "rev-parse", "HEAD")).toBe(head);
    expect(existsSync(join(USER, "site.yml.bak.1"))).toBe(false);
    expect(snapshot()).toEqual(before);
  });

  test("--dry-run says what would happen and changes nothing", () => {
    appendFileSync(join(USER, "README.md"), "my readme line\n");
    const sha = pushUpstream("upstream: README again", { "README.md": (t) => `${t}Again.\n` });
    const head = git(USER, "rev-parse", "HEAD");
    const r = upgrade(USER, "--dry-run");
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`Would upgrade anklume from ${head.slice(0, 7)} to ${sha}`);
    expect(r.stderr).toContain("README.md -> README.md.bak");
    expect(r.stderr).toContain("Dry run: nothing was changed");
    expect(git(USER, "rev-parse", "HEAD")).toBe(head);
    expect(existsSync(join(USER, "README.md.bak"))).toBe(false);
  });

  test("the update notifier: one line when the upstream is ahead, at most one fetch an hour, silent when up to date", () => {
    // The upstream is one commit ahead (the dry run above did not move HEAD).
    const first = notifier(USER);
    expect(first.code).toBe(0);
    expect(first.stdout).toBe(
      `anklume: 1 update available on origin/${branch}. Run 'make -C ${USER} upgrade'\n`,
    );
    expect(existsSync(CACHE_FILE)).toBe(true);
    // A newer commit within the hour is not fetched: still 1.
    pushUpstream("upstream: another", { "README.md": (t) => `${t}Another.\n` });
    expect(notifier(USER).stdout).toContain("1 update available");
    // An hour later it fetches again: 2.
    utimesSync(
      CACHE_FILE,
      new Date(Date.now() - 2 * 3_600_000),
      new Date(Date.now() - 2 * 3_600_000),
    );
    expect(notifier(USER).stdout).toContain("2 updates available");
    // Upgraded: silent (counting is local, no fetch needed).
    const up = upgrade(USER);
    expect(up.code).toBe(0);
    expect(up.stderr).toContain("README.md -> README.md.bak");
    expect(notifier(USER).stdout).toBe("");
    // Not a checkout: silent, exit 0.
    const outside = notifier(tmp);
    expect(outside.code).toBe(0);
    expect(outside.stdout).toBe("");
  });

  test("when the new framework rejects the user's infra.yml it says so, writes nothing and says how to go back", () => {
    const before = snapshot();
    const from = git(USER, "rev-parse", "--short", "HEAD");
    pushUpstream("upstream: drop export_apps", {
      "lib/sync/schema.ts": (t) =>
        t.replace(/\n\s*export_apps: v\.optional\(v\.unknown\(\)\),/, ""),
    });
    const r = upgrade(USER);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('unknown key "export_apps"');
    expect(r.stderr).toContain("The updated framework does not accept your infra.yml");
    expect(r.stderr).toContain(`git reset --keep ${from}`);
    expect(snapshot()).toEqual(before);
    // The way back works and keeps the user's files.
    git(USER, "reset", "-q", "--keep", from);
    expect(snapshot()).toEqual(before);
  });
});

describe("make upgrade with commits of the user's own", () => {
  test("merges the upstream when they do not conflict; refuses, changing nothing, when they do", () => {
    const clone = join(tmp, "own");
    git(tmp, "clone", "-q", BARE, clone);
    appendFileSync(join(clone, "ansible.cfg"), "# committed locally\n");
    git(clone, "commit", "-q", "-am", "mine: ansible.cfg");
    const sha = pushUpstream("upstream: README once more", {
      "README.md": (t) => `${t}Once more.\n`,
    });
    const r = upgrade(clone, "--no-sync");
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`to `);
    expect(r.stderr).toContain("(merged with your own commits)");
    expect(r.stderr).toContain(`${sha} upstream: README once more`);
    expect(readFileSync(join(clone, "ansible.cfg"), "utf8")).toContain("# committed locally");
    expect(readFileSync(join(clone, "README.md"), "utf8")).toContain("Once more.");

    appendFileSync(join(clone, "README.md"), "mine, committed\n");
    git(clone, "commit", "-q", "-am", "mine: README");
    pushUpstream("upstream: README, conflicting", { "README.md": (t) => `${t}Theirs.\n` });
    const head = git(clone, "rev-parse", "HEAD");
    const c = upgrade(clone, "--no-sync");
    expect(c.code).toBe(1);
    expect(c.stderr).toContain(`conflict with origin/${branch} in README.md;`);
    expect(git(clone, "rev-parse", "HEAD")).toBe(head);
    expect(git(clone, "status", "--porcelain")).toBe("");
  });
});

describe("make upgrade: local files upstream adds or rewrites", () => {
  test("an untracked file where upstream adds one is moved to .bak; a deleted framework file comes back", () => {
    const clone = join(tmp, "adds");
    git(tmp, "clone", "-q", BARE, clone);
    writeFileSync(join(clone, "docs", "new-page.md"), "my draft\n");
    rmSync(join(clone, "infra.example.yml"));
    const sha = pushUpstream("upstream: a new page and the example", {
      "docs/new-page.md": () => "upstream page\n",
      "infra.example.yml": (t) => `${t}# upstream\n`,
    });
    const r = upgrade(clone, "--no-sync");
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`${sha} upstream: a new page and the example`);
    expect(r.stderr).toContain("docs/new-page.md -> docs/new-page.md.bak");
    expect(r.stderr).toContain("infra.example.yml: you had deleted it; upstream's version is back");
    expect(readFileSync(join(clone, "docs/new-page.md.bak"), "utf8")).toBe("my draft\n");
    expect(readFileSync(join(clone, "docs/new-page.md"), "utf8")).toBe("upstream page\n");
    expect(readFileSync(join(clone, "infra.example.yml"), "utf8")).toEndWith("# upstream\n");
    expect(git(clone, "status", "--porcelain")).toBe("?? docs/new-page.md.bak");
  });
});

describe("make upgrade refuses clearly, changing nothing", () => {
  test("not a git checkout: exit 1", () => {
    const r = upgrade(tmp);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("is not a git checkout");
  });

  test("an unreachable upstream: exit 1, HEAD unchanged", () => {
    const clone = join(tmp, "lost");
    git(tmp, "clone", "-q", BARE, clone);
    git(clone, "remote", "set-url", "origin", join(tmp, "gone.git"));
    const head = git(clone, "rev-parse", "HEAD");
    const r = upgrade(clone, "--no-sync");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the upstream origin/${branch} cannot be reached`);
    expect(git(clone, "rev-parse", "HEAD")).toBe(head);
  });

  test("no upstream configured, or an UPSTREAM= with an unknown remote: exit 1 naming the fix", () => {
    const clone = join(tmp, "alone");
    git(tmp, "clone", "-q", BARE, clone);
    git(clone, "checkout", "-q", "-b", "local-only");
    const r = upgrade(clone);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("the branch local-only has no upstream on a remote");
    expect(r.stderr).toContain("UPSTREAM=origin/main");
    const bad = upgrade(clone, "--upstream", "nowhere/main");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("known remote (origin)");
  });

  test("--help exits 0; a usage error exits 2", () => {
    expect(upgrade(tmp, "--help").code).toBe(0);
    expect(upgrade(tmp, "--bogus").code).toBe(2);
    expect(upgrade(tmp, "extra").code).toBe(2);
    expect(notifier("--help").code).toBe(0);
    expect(run("bun", [join(ROOT, "scripts/update-check.ts"), "a", "b"], tmp).code).toBe(2);
  });
});
