/**
 * Role ollama_server on a real Debian container (anklume-debian12) on a test
 * bridge without NAT, with a stand-in ollama binary: the real one is a
 * download from the internet (docs/ai.md), so the test gives the role a
 * local file, tests/fixtures/stand-in-ollama, a small Python server that
 * answers Ollama's /api/tags and /api/pull on OLLAMA_HOST and keeps models
 * as manifest files, as the real server does. Check mode on the fresh
 * machine, converge (binary from a controller file, models from an archive
 * and pulls), the service answering from the host on the test bridge, a
 * second run with changed=0, check mode after, a changed host (v1's
 * variable name) restarting the service, and the package form (a .tgz
 * holding bin/ollama) replacing the bare binary.
 */
import { afterAll, beforeAll, describe, expect } from "bun:test";
import { cpSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { $ } from "zx";
import { recap, taskOutput } from "./apply-helpers.ts";
import { scenario, uniq } from "./helpers.ts";
import {
  aptProxy,
  cleanup,
  createBridges,
  DEBIAN,
  launch,
  type PlayRun,
  REPO,
  removeDir,
  rolesOrSkip,
  runRole,
  sh,
  tempDir,
  waitFor,
  waitSystemd,
} from "./role-helpers.ts";

const live = await rolesOrSkip("role-ollama-server");
const u = uniq();
const BRIDGE = `ros${u}`;
const C = `ros-${u}`;
const STAND_IN = join(REPO, "tests/fixtures/stand-in-ollama");
const MODELS = "/usr/share/ollama/.ollama/models";
let dir = "";
let ip = "";

/** The role's variables for the converge: the stand-in, an archive with one model, two models to pull. */
const vars = () => ({
  ollama_server_binary_src: STAND_IN,
  ollama_server_models_archive: join(dir, "models.tar"),
  ollama_server_default_model: "tiny:1b",
  ollama_server_extra_models: ["nomic-embed-text", "preloaded"],
});

const changed = (run: PlayRun) => recap(run.out)[C]?.changed ?? -1;

/** The model names the service lists, asked from the host over the test bridge. */
async function tags(port: number): Promise<string[]> {
  const r = await fetch(`http://${ip}:${port}/api/tags`, { signal: AbortSignal.timeout(5000) });
  const body = (await r.json()) as { models: { name: string }[] };
  return body.models.map((m) => m.name).sort();
}

/** True when something answers HTTP on the port from the host. */
async function answers(port: number): Promise<boolean> {
  return fetch(`http://${ip}:${port}/api/tags`, { signal: AbortSignal.timeout(3000) }).then(
    (r) => r.ok,
    () => false,
  );
}

async function mainPid(): Promise<string> {
  return (await sh(C, "systemctl show -p MainPID --value ollama")).stdout.trim();
}

describe.skipIf(!live)(
  "role ollama_server on a Debian container with a stand-in ollama binary (skipped only without Incus, the anklume-debian12 image, Ansible or the package cache; all required under CI)",
  () => {
    const test = scenario();
    beforeAll(async () => {
      dir = tempDir("anklume-role-ollama");
      // An Ollama models directory with one model, as an offline host would be given it.
      const m = join(dir, "models");
      mkdirSync(join(m, "manifests/registry.ollama.ai/library/preloaded"), { recursive: true });
      mkdirSync(join(m, "blobs"), { recursive: true });
      writeFileSync(
        join(m, "manifests/registry.ollama.ai/library/preloaded/latest"),
        '{"from":"archive"}',
      );
      writeFileSync(join(m, "blobs/sha256-0000"), "weights");
      await $`tar -cf ${join(dir, "models.tar")} -C ${m} manifests blobs`;
      // The package form: bin/ollama inside a .tgz, as upstream ships it.
      mkdirSync(join(dir, "pkg/bin"), { recursive: true });
      cpSync(STAND_IN, join(dir, "pkg/bin/ollama"));
      await $`tar -czf ${join(dir, "ollama-linux-amd64.tgz")} -C ${join(dir, "pkg")} bin`;

      const [br] = await createBridges("10.245", [BRIDGE]);
      ip = `${br?.prefix}.10`;
      await launch(C, DEBIAN, [{ name: "eth0", bridge: BRIDGE, ip }]);
      await waitSystemd(C);
      await waitFor(C, `ip -4 addr show eth0 | grep -q '${ip}/'`);
      await aptProxy(C, br?.gateway as string);
    }, 180_000);

    afterAll(async () => {
      await cleanup([C], [BRIDGE]);
      if (dir) removeDir(dir);
    }, 60_000);

    // Matrix: PV-008
    test("check mode on the fresh machine succeeds and installs nothing", async () => {
      const r = await runRole({
        dir,
        hosts: [C],
        role: "ollama_server",
        vars: vars(),
        check: true,
      });
      expect(r.code, r.out).toBe(0);
      expect(changed(r)).toBeGreaterThan(0);
      const left = await sh(
        C,
        "ls /usr/local/bin/ollama /etc/systemd/system/ollama.service; id ollama",
      );
      expect(left.exitCode).not.toBe(0);
      expect(left.stderr).toContain("No such file");
    });

    // Matrix: PV-008, PV-009
    test("converge: the stand-in ollama binary is installed, the service answers on the bridge from the host, the missing models are pulled", async () => {
      const r = await runRole({ dir, hosts: [C], role: "ollama_server", vars: vars() });
      expect(r.code, r.out).toBe(0);
      const st = await sh(
        C,
        "stat -c '%a %U' /usr/local/bin/ollama; systemctl is-enabled ollama; systemctl is-active ollama; systemctl show -p User --value ollama",
      );
      expect(st.stdout.split("\n")).toEqual(["755 root", "enabled", "active", "ollama", ""]);
      expect(await tags(11434)).toEqual(["nomic-embed-text:latest", "preloaded:latest", "tiny:1b"]);
      // The archive's model was not pulled again; the two others were, and each pull says changed.
      const pulls = await sh(C, `cat ${MODELS}/pulls.log`);
      expect(pulls.stdout.split("\n").filter(Boolean).sort()).toEqual([
        "nomic-embed-text:latest",
        "tiny:1b",
      ]);
      const pulled = taskOutput(r.out, "ollama_server : Ollama server | Pull the missing models");
      expect(pulled).toContain(`changed: [${C}] => (item=nomic-embed-text:latest)`);
      expect(pulled).toContain(`changed: [${C}] => (item=tiny:1b)`);
      expect(pulled).not.toContain("preloaded");
      const archived = await sh(
        C,
        `cat ${MODELS}/manifests/registry.ollama.ai/library/preloaded/latest`,
      );
      expect(archived.stdout).toBe('{"from":"archive"}');
    });

    // Matrix: PV-008
    test("a second run changes nothing and does not restart the service", async () => {
      const pid = await mainPid();
      const r = await runRole({ dir, hosts: [C], role: "ollama_server", vars: vars() });
      expect(r.code, r.out).toBe(0);
      expect(changed(r)).toBe(0);
      expect(await mainPid()).toBe(pid);
    });

    test("check mode after the converge reports nothing to change", async () => {
      const r = await runRole({
        dir,
        hosts: [C],
        role: "ollama_server",
        vars: vars(),
        check: true,
      });
      expect(r.code, r.out).toBe(0);
      expect(changed(r)).toBe(0);
    });

    // Matrix: PV-2-003
    test("a changed host (v1's ollama_host) rewrites the unit and restarts the service on the new port", async () => {
      const pid = await mainPid();
      const r = await runRole({
        dir,
        hosts: [C],
        role: "ollama_server",
        vars: { ...vars(), ollama_host: "0.0.0.0:11500" },
      });
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain("RUNNING HANDLER [ollama_server : Ollama server | Restart ollama]");
      expect(await mainPid()).not.toBe(pid);
      expect(await answers(11500)).toBe(true);
      expect(await answers(11434)).toBe(false);
      const again = await runRole({
        dir,
        hosts: [C],
        role: "ollama_server",
        vars: { ...vars(), ollama_host: "0.0.0.0:11500" },
      });
      expect(changed(again)).toBe(0);
    });

    // Matrix: PV-2-004
    test("the package form (.tgz with bin/ollama) is extracted into /usr/local once, then left alone", async () => {
      const pkg = { ...vars(), ollama_server_binary_src: join(dir, "ollama-linux-amd64.tgz") };
      const pid = await mainPid();
      const r = await runRole({ dir, hosts: [C], role: "ollama_server", vars: pkg });
      expect(r.code, r.out).toBe(0);
      const task = "ollama_server : Ollama server | Extract the package into /usr/local";
      expect(taskOutput(r.out, task)).toContain(`changed: [${C}]`);
      expect(await mainPid()).not.toBe(pid);
      expect(await answers(11434)).toBe(true);
      const again = await runRole({ dir, hosts: [C], role: "ollama_server", vars: pkg });
      expect(changed(again)).toBe(0);
    });
  },
);
