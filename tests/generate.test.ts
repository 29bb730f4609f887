/**
 * scripts/generate.ts as a user runs it: a child process, its stdout, stderr,
 * exit code and the tree it writes.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { Buffer } from "node:buffer";
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { writeTree } from "./fixtures/snap-fixture.ts";
import { cleanup, mtimes, ROOT, runProcess, testEnv, tree, workspace } from "./gen-helpers.ts";
import { uniq } from "./helpers.ts";

afterAll(cleanup);

// generator-contract §14: infra.yml and the eight files it must produce.
const EXAMPLE = join(ROOT, "tests/fixtures/worked-example");
const exampleInfra = readFileSync(join(EXAMPLE, "infra.yml"), "utf8");

function expectedTree(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const sub of ["group_vars", "host_vars", "inventory"]) {
    for (const n of readdirSync(join(EXAMPLE, sub)).sort()) {
      out[`${sub}/${n}`] = readFileSync(join(EXAMPLE, sub, n), "utf8");
    }
  }
  return out;
}

describe("the worked example of generator-contract §14", () => {
  // Matrix: GO-001
  test("writes exactly the contract's files, byte for byte, and its stdout", () => {
    const dir = workspace({ "infra.yml": exampleInfra });
    const r = runProcess(["infra.yml"], dir);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe(
      [
        "Generating files for 2 domain(s)...",
        "  Written: group_vars/all.yml",
        "  Written: inventory/anklume.yml",
        "  Written: group_vars/anklume.yml",
        "  Written: host_vars/anklume-instance.yml",
        "  Written: inventory/lab.yml",
        "  Written: group_vars/lab.yml",
        "  Written: host_vars/lab-vm.yml",
        "  Written: host_vars/lab-dhcp.yml",
        "",
        "Done. Run `make lint` to validate.",
        "",
      ].join("\n"),
    );
    expect(tree(dir)).toEqual(expectedTree());
  });

  // Matrix: GO-002
  test("a second sync writes nothing and changes no byte (decision 4)", async () => {
    const dir = workspace({ "infra.yml": exampleInfra });
    expect(runProcess(["infra.yml"], dir).code).toBe(0);
    const before = mtimes(dir);
    const content = tree(dir);
    await Bun.sleep(20);
    const r = runProcess(["infra.yml"], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Unchanged: 8 file(s)");
    expect(r.stdout).not.toContain("Written:");
    expect(mtimes(dir)).toEqual(before);
    expect(tree(dir)).toEqual(content);
  });

  // Matrix: GO-003
  test("the nesting prefix follows /etc/anklume/absolute_level (ANKLUME_CONTEXT_DIR)", () => {
    const dir = workspace({ "infra.yml": exampleInfra, "ctx/absolute_level": "3\n" });
    expect(runProcess(["infra.yml"], dir, { ANKLUME_CONTEXT_DIR: join(dir, "ctx") }).code).toBe(0);
    const lab = readFileSync(join(dir, "group_vars/lab.yml"), "utf8");
    expect(lab).toContain("incus_project: 003-lab");
    expect(lab).toContain("name: 003-net-lab");
    expect(readFileSync(join(dir, "host_vars/lab-vm.yml"), "utf8")).toContain(
      "instance_name: 003-lab-vm",
    );
  });

  // Matrix: GO-004
  test("nesting_prefix: false gives unprefixed names", () => {
    const dir = workspace({
      "infra.yml": exampleInfra.replace("global:\n", "global:\n  nesting_prefix: false\n"),
    });
    expect(runProcess(["infra.yml"], dir).code).toBe(0);
    expect(readFileSync(join(dir, "group_vars/lab.yml"), "utf8")).toContain("incus_project: lab\n");
  });
});

describe("the sync stamp (a no-op sync reads no YAML)", () => {
  test("a generated file edited by hand, even to the same size, is regenerated", () => {
    const dir = workspace({ "infra.yml": exampleInfra });
    expect(runProcess(["infra.yml"], dir).code).toBe(0);
    const file = join(dir, "host_vars/lab-vm.yml");
    const good = readFileSync(file, "utf8");
    writeFileSync(file, good.replace("instance_type: vm", "instance_type: xx"));
    const r = runProcess(["infra.yml"], dir);
    expect(r.stdout).toContain("Written: host_vars/lab-vm.yml");
    expect(readFileSync(file, "utf8")).toBe(good);
  });
  test("a changed nesting context is seen although infra.yml did not change", () => {
    const dir = workspace({ "infra.yml": exampleInfra, "ctx/absolute_level": "1\n" });
    const env = { ANKLUME_CONTEXT_DIR: join(dir, "ctx") };
    expect(runProcess(["infra.yml"], dir, env).code).toBe(0);
    writeFileSync(join(dir, "ctx/absolute_level"), "2\n");
    expect(runProcess(["infra.yml"], dir, env).stdout).toContain("Written: group_vars/lab.yml");
    expect(readFileSync(join(dir, "group_vars/lab.yml"), "utf8")).toContain("002-lab");
  });
  // 10.100.0.0/16 on wlan0, as /proc/net/route writes it (hex, little-endian).
  const ROUTE_HEAD =
    "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n";
  const WLAN = "wlan0\t0000640A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
  const answeredByStamp = (r: { stderr: string }) =>
    r.stderr.includes("timing: stamp (nothing changed)");

  test("a new host route overlapping a domain is seen although nothing else changed (fake /proc/net/route: no such interface here)", () => {
    const dir = workspace({ "infra.yml": exampleInfra, "proc/net/route": ROUTE_HEAD });
    const env = {
      ANKLUME_PROC_DIR: join(dir, "proc"),
      ANKLUME_SKIP_HOST_SUBNET_CHECK: undefined,
      ANKLUME_TIMING: "1",
    };
    expect(runProcess(["infra.yml"], dir, env).code).toBe(0);
    // Unchanged routes: the stamp answers (so the next run is a real test of it).
    expect(answeredByStamp(runProcess(["infra.yml"], dir, env))).toBe(true);
    writeFileSync(join(dir, "proc/net/route"), ROUTE_HEAD + WLAN);
    const r = runProcess(["infra.yml"], dir, env);
    expect(answeredByStamp(r)).toBe(false);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('overlaps host interface "wlan0" (10.100.0.0/16)');
  });

  test("a changed generator source never trusts an old stamp (a copy of the generator)", () => {
    const dir = workspace({ "infra.yml": exampleInfra });
    const code = workspace();
    for (const f of ["lib", "scripts"]) cpSync(join(ROOT, f), join(code, f), { recursive: true });
    for (const f of ["node_modules", "package.json"]) symlinkSync(join(ROOT, f), join(code, f));
    const gen = () => {
      const r = Bun.spawnSync(["bun", join(code, "scripts/generate.ts"), "infra.yml"], {
        cwd: dir,
        env: testEnv({ ANKLUME_TIMING: "1" }),
      });
      return { code: r.exitCode, stderr: r.stderr.toString() };
    };
    expect(gen().code).toBe(0);
    const second = gen();
    expect(second.code).toBe(0);
    expect(answeredByStamp(second)).toBe(true);
    // Same content, new mtime: the generator may have changed.
    const later = new Date(Date.now() + 60_000);
    utimesSync(join(code, "lib/core/cidr.ts"), later, later);
    const third = gen();
    expect(third.code).toBe(0);
    expect(answeredByStamp(third)).toBe(false);
    // And the new fingerprint is stamped in turn.
    expect(answeredByStamp(gen())).toBe(true);
  });

  test("warnings and orphans are reported again on a no-op sync", () => {
    const infra = exampleInfra.replace('ip: "10.100.3.10"', 'ip: "10.100.3.150"');
    const dir = workspace({ "infra.yml": infra });
    const first = runProcess(["infra.yml"], dir);
    writeFileSync(join(dir, "host_vars/old.yml"), "instance_ephemeral: true\n");
    const second = runProcess(["infra.yml"], dir);
    expect(second.stdout).toContain("Unchanged: 8 file(s)");
    expect(second.stderr).toBe(first.stderr);
    expect(second.stderr).toContain("DHCP range");
    expect(second.stdout).toContain("  ORPHAN: host_vars/old.yml");
  });
});

describe("hand-written trees of other suites (audit 1.12)", () => {
  test("snap-fixture's writeTree writes the generator's files, keys and values for the same domains", () => {
    const dir = workspace({
      "infra.yml": `project_name: t\nglobal:\n  base_subnet: "10.100"\ndomains:\n  pro:\n    subnet_id: 1\n    machines:\n      pro-dev: {}\n      pro-b: {}\n  lab:\n    subnet_id: 2\n    machines:\n      lab-a: {}\n`,
    });
    expect(runProcess(["infra.yml"], dir).code).toBe(0);
    const hand = workspace();
    writeTree(hand, [
      {
        name: "pro",
        project: "001-pro",
        machines: { "pro-dev": "001-pro-dev", "pro-b": "001-pro-b" },
      },
      { name: "lab", project: "001-lab", machines: { "lab-a": "001-lab-a" } },
    ]);
    const ours = tree(dir);
    const theirs = tree(hand);
    expect(Object.keys(theirs).sort()).toEqual(Object.keys(ours).sort());
    for (const [rel, text] of Object.entries(theirs)) {
      const gen = ours[rel] as string;
      // Same managed-block markers, and every key the fixture writes has the generator's value.
      expect(text.split("\n").slice(0, 3)).toEqual(gen.split("\n").slice(0, 3));
      expect(text).toContain("# === END MANAGED ===\n");
      expect(parse(gen), rel).toMatchObject(parse(text));
    }
  });
});

describe("managed blocks", () => {
  // Matrix: GO-005
  test("user content outside the block survives a sync that changes the block", () => {
    const dir = workspace({ "infra.yml": exampleInfra });
    expect(runProcess(["infra.yml"], dir).code).toBe(0);
    const file = join(dir, "host_vars/lab-dhcp.yml");
    const user = "\n# Your custom variables below:\nmy_var: 42  # keep me\nlist:\n  - a\n";
    const original = readFileSync(file, "utf8").replace("\n# Your custom variables below:\n", user);
    writeFileSync(file, original);
    writeFileSync(join(dir, "infra.yml"), exampleInfra.replace('"DHCP client"', '"DHCP box"'));
    const r = runProcess(["infra.yml"], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Written: host_vars/lab-dhcp.yml");
    const after = readFileSync(file, "utf8");
    expect(after).toContain("instance_description: DHCP box");
    expect(after.endsWith(user.slice(1))).toBe(true);
    expect(parse(after).my_var).toBe(42);
  });

  // Matrix: GO-006
  test("a file without markers that starts with --- gets the block after that line", () => {
    const dir = workspace({
      "infra.yml": exampleInfra,
      "host_vars/lab-vm.yml": "---\nmine: true\n",
    });
    expect(runProcess(["infra.yml"], dir).code).toBe(0);
    const text = readFileSync(join(dir, "host_vars/lab-vm.yml"), "utf8");
    expect(text.startsWith("---\n# === MANAGED BY infra.yml ===\n")).toBe(true);
    expect(text.endsWith("mine: true\n")).toBe(true);
    expect(parse(text)).toMatchObject({ mine: true, instance_name: "001-lab-vm" });
  });

  // Matrix: GO-007
  test("a file with two managed blocks is an error and nothing is written", () => {
    const twice =
      "---\n# === MANAGED BY infra.yml ===\na: 1\n# === END MANAGED ===\n# === MANAGED BY infra.yml ===\nb: 2\n# === END MANAGED ===\n";
    const dir = workspace({ "infra.yml": exampleInfra, "host_vars/lab-vm.yml": twice });
    const r = runProcess(["infra.yml"], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("host_vars/lab-vm.yml");
    expect(readFileSync(join(dir, "host_vars/lab-vm.yml"), "utf8")).toBe(twice);
    expect(existsSync(join(dir, "group_vars"))).toBe(false);
  });
});

describe("dry run", () => {
  // Matrix: GO-008
  test("--dry-run lists what would be written and creates nothing", () => {
    const dir = workspace({ "infra.yml": exampleInfra });
    const r = runProcess(["infra.yml", "--dry-run"], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("[DRY-RUN] Generating files for 2 domain(s)...");
    expect(r.stdout).toContain("  [DRY-RUN] Would write: group_vars/all.yml");
    expect(r.stdout).not.toContain("Done.");
    expect(readdirSync(dir)).toEqual(["infra.yml"]);
  });
});

describe("orphans", () => {
  const orphanFiles = {
    "host_vars/zz-old.yml": "instance_ephemeral: true\n",
    "host_vars/aa-kept.yml": "instance_ephemeral: false\n",
    "group_vars/gone.yml": "domain_ephemeral: true\n",
    "inventory/gone.yml": "all: {}\n",
    "host_vars/notes.txt": "not yaml\n",
  };

  // Matrix: OR-001
  test("are listed sorted, protected ones marked, and nothing is deleted without --clean-orphans", () => {
    const dir = workspace({ "infra.yml": exampleInfra, ...orphanFiles });
    const r = runProcess(["infra.yml"], dir);
    expect(r.code).toBe(0);
    const section = r.stdout.slice(r.stdout.indexOf("Orphan files"));
    expect(section.split("\n").slice(0, 5)).toEqual([
      "Orphan files (4):",
      "  ORPHAN: group_vars/gone.yml",
      expect.stringMatching(
        /^ {2}PROTECTED \(.*\): host_vars\/aa-kept\.yml — manual removal required$/,
      ),
      "  ORPHAN: host_vars/zz-old.yml",
      "  ORPHAN: inventory/gone.yml",
    ]);
    expect(existsSync(join(dir, "host_vars/zz-old.yml"))).toBe(true);
  });

  // Matrix: OR-002
  test("--clean-orphans --yes deletes unprotected orphans and never protected ones", () => {
    const dir = workspace({ "infra.yml": exampleInfra, ...orphanFiles });
    const r = runProcess(["infra.yml", "--clean-orphans", "--yes"], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("  Deleted: host_vars/zz-old.yml");
    expect(r.stdout).toContain("  Skipped (protected): host_vars/aa-kept.yml");
    expect(existsSync(join(dir, "host_vars/zz-old.yml"))).toBe(false);
    expect(existsSync(join(dir, "group_vars/gone.yml"))).toBe(false);
    expect(existsSync(join(dir, "host_vars/aa-kept.yml"))).toBe(true);
    expect(existsSync(join(dir, "host_vars/notes.txt"))).toBe(true);
  });

  // Matrix: OR-003
  test("--clean-orphans asks on a terminal; answering no deletes nothing and exits 1", () => {
    const dir = workspace({ "infra.yml": exampleInfra, ...orphanFiles });
    const cmd = `bun ${join(ROOT, "scripts/generate.ts")} infra.yml --clean-orphans`;
    // `script` gives the generator a real pseudo-terminal as stdin.
    const r = Bun.spawnSync(["script", "-qec", cmd, "/dev/null"], {
      cwd: dir,
      stdin: new TextEncoder().encode("n\n"),
      env: { ...process.env, ANKLUME_SKIP_HOST_SUBNET_CHECK: "1", NO_COLOR: "1" },
    });
    const out = r.stdout.toString();
    expect(out).toContain("Delete 3 orphan file(s)? [y/N]");
    expect(out).toContain("Aborted");
    expect(r.exitCode).toBe(1);
    expect(existsSync(join(dir, "host_vars/zz-old.yml"))).toBe(true);
  });
});

describe("command line", () => {
  // Matrix: GO-009
  test("--help exits 0 and names every flag", () => {
    const r = runProcess(["--help"], ROOT);
    expect(r.code).toBe(0);
    for (const f of ["--dry-run", "--clean-orphans", "--yes", "--json", "--base-dir"]) {
      expect(r.stdout).toContain(f);
    }
  });
  // Matrix: GO-009
  test("a missing argument or an unknown flag is a usage error (exit 2)", () => {
    expect(runProcess([], ROOT).code).toBe(2);
    const r = runProcess(["infra.yml", "--frobnicate"], ROOT);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--frobnicate");
  });
  // Matrix: GO-010
  test("a missing input file is a clear error (exit 1), not a stack trace", () => {
    const dir = workspace();
    const r = runProcess(["nothere.yml"], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("cannot find nothere.yml");
    expect(r.stderr).not.toContain("    at ");
  });
  // Matrix: GO-010
  test("an empty file is a clear error", () => {
    const dir = workspace({ "infra.yml": "" });
    const r = runProcess(["infra.yml"], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("must be a mapping");
  });
  test("a directory without base.yml is a clear error", () => {
    const dir = workspace();
    mkdirSync(join(dir, "x.yml"));
    const r = runProcess(["x.yml"], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("base.yml not found");
  });
  test("domains: null means nothing to generate (exit 0)", () => {
    const dir = workspace({ "infra.yml": "project_name: x\nglobal:\ndomains:\n" });
    const r = runProcess(["infra.yml"], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("No domains defined. Nothing to generate.\n");
  });
  test("a path without .yml finds the file; a .yml path finds the directory (v1 resolution)", () => {
    // Test audit 1.7: the trees written, not only the exit codes.
    const dir = workspace({ "infra.yml": exampleInfra });
    const r1 = runProcess(["infra"], dir);
    expect(r1.code, r1.stderr).toBe(0);
    const d2 = workspace({ "infra/base.yml": exampleInfra });
    const r2 = runProcess(["infra.yml"], d2);
    expect(r2.code, r2.stderr).toBe(0);
    const ref = workspace({ "infra.yml": exampleInfra });
    expect(runProcess(["infra.yml"], ref).code).toBe(0);
    expect(Object.keys(tree(ref)).length).toBeGreaterThan(0);
    expect(tree(dir)).toEqual(tree(ref));
    expect(tree(d2)).toEqual(tree(ref));
  });
  test("--json prints a summary of written, unchanged, orphans and errors", () => {
    const dir = workspace({ "infra.yml": exampleInfra, "host_vars/old.yml": "x: 1\n" });
    const first = JSON.parse(runProcess(["infra.yml", "--json"], dir).stdout);
    expect(first.ok).toBe(true);
    expect(first.written).toHaveLength(8);
    expect(first.orphans).toEqual([
      { path: "host_vars/old.yml", protected: false, deleted: false },
    ]);
    const second = JSON.parse(runProcess(["infra.yml", "--json"], dir).stdout);
    expect(second.written).toEqual([]);
    expect(second.unchanged).toHaveLength(8);
    const bad = workspace({ "infra.yml": "project_name: x\nglobal:\ndomains:\n  A: {}\n" });
    const r = runProcess(["infra.yml", "--json"], bad);
    expect(r.code).toBe(1);
    const summary = JSON.parse(r.stdout);
    expect(summary.ok).toBe(false);
    expect(summary.errors).toContainEqual(
      expect.objectContaining({ file: "infra.yml", line: 4, col: 3, path: ["domains", "A"] }),
    );
  });
});

describe("enrichment", () => {
  // Matrix: GO-2-001
  test("firewall_mode: vm adds sys-firewall at .253 of the anklume domain", () => {
    const dir = workspace({
      "infra.yml": exampleInfra.replace("global:\n", "global:\n  firewall_mode: vm\n"),
    });
    const r = runProcess(["infra.yml"], dir);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("INFO: firewall_mode is 'vm' — auto-created sys-firewall");
    const fw = parse(readFileSync(join(dir, "host_vars/sys-firewall.yml"), "utf8"));
    expect(fw).toMatchObject({
      instance_name: "001-sys-firewall",
      instance_type: "vm",
      instance_ip: "10.100.0.253",
      instance_ephemeral: false,
      instance_roles: ["base_system", "firewall_router"],
      instance_config: { "limits.cpu": "2", "limits.memory": "2GiB" },
    });
    expect(r.stdout).not.toContain("Orphan");
  });

  // Matrix: GO-2-002
  test("ai_access_policy: exclusive adds the bidirectional policy to ai-tools", () => {
    const dir = workspace({
      "infra.yml": `project_name: x\nglobal:\n  ai_access_policy: exclusive\n  ai_access_default: pro\ndomains:\n  pro: {subnet_id: 1}\n  ai-tools: {subnet_id: 4}\n`,
    });
    expect(runProcess(["infra.yml"], dir).code).toBe(0);
    const all = parse(readFileSync(join(dir, "group_vars/all.yml"), "utf8"));
    expect(all.network_policies).toEqual([
      {
        description: "AI access: pro -> ai-tools (auto-created)",
        from: "pro",
        to: "ai-tools",
        ports: "all",
        bidirectional: true,
      },
    ]);
    // ai-tools' bridge would be 001-net-ai-tools (16 characters): Linux allows 15.
    expect(readFileSync(join(dir, "group_vars/ai-tools.yml"), "utf8")).toContain(
      "name: 001-net4\n",
    );
  });

  // Matrix: GO-2-003
  test("resource_policy splits a fake 16-CPU 64-GiB host (fake /proc and no Incus, ANKLUME_INCUS=false: no such host here, and Incus would answer for the real one)", () => {
    const dir = workspace({
      "infra.yml": `project_name: x\nglobal:\n  resource_policy: true\ndomains:\n  pro:\n    subnet_id: 1\n    machines:\n      a: {weight: 3}\n      b: {}\n`,
      "proc/cpuinfo": Array.from({ length: 16 }, (_, i) => `processor\t: ${i}\n`).join(""),
      "proc/meminfo": `MemTotal:       ${64 * 1024 * 1024} kB\n`,
      "proc/net/route": "Iface\tDestination\n",
    });
    const r = runProcess(["infra.yml"], dir, {
      ANKLUME_PROC_DIR: join(dir, "proc"),
      ANKLUME_INCUS: "false",
    });
    expect(r.code).toBe(0);
    const a = parse(readFileSync(join(dir, "host_vars/a.yml"), "utf8"));
    expect(a.instance_config).toEqual({
      "limits.cpu.allowance": "60%",
      "limits.memory": "39321MiB",
      "limits.memory.enforce": "soft",
    });
  });
});

describe("host subnet check, in a network namespace of its own", () => {
  const ns = `anklume-gen-${uniq()}`;
  const ip = (...args: string[]) => Bun.spawnSync(["ip", ...args]);
  afterAll(() => ip("netns", "del", ns));

  // Matrix: GO-2-004
  test("a domain overlapping a host interface is refused; anklume's own bridges are not host networks", () => {
    if (ip("netns", "add", ns).exitCode !== 0)
      throw new Error("cannot create a network namespace (need root)");
    const inNs = (...args: string[]) => {
      const r = ip("netns", "exec", ns, "ip", ...args);
      if (r.exitCode !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr}`);
    };
    // veth pairs (this kernel has no dummy module); the route appears once both ends are up.
    for (const [dev, addr] of [
      ["wlan0", "10.100.0.5/16"],
      ["001-net-lab", "10.200.3.254/24"],
    ] as const) {
      inNs("link", "add", dev, "type", "veth", "peer", "name", `${dev.slice(0, 10)}-p`);
      inNs("addr", "add", addr, "dev", dev);
      inNs("link", "set", dev, "up");
      inNs("link", "set", `${dev.slice(0, 10)}-p`, "up");
    }
    const dir = workspace({ "infra.yml": exampleInfra });
    const gen = (infra: string, skip?: string) =>
      Bun.spawnSync(
        ["ip", "netns", "exec", ns, "bun", join(ROOT, "scripts/generate.ts"), infra, "--json"],
        {
          cwd: dir,
          env: {
            ...process.env,
            ANKLUME_SKIP_HOST_SUBNET_CHECK: skip,
            NO_COLOR: "1",
            ANKLUME_CONTEXT_DIR: "/nonexistent",
          },
        },
      );
    const r = gen("infra.yml");
    expect(r.exitCode).toBe(1);
    const summary = JSON.parse(r.stdout.toString());
    expect(summary.errors.map((e: { message: string }) => e.message)).toEqual([
      expect.stringContaining(
        'domain "anklume" uses 10.100.0.0/24, which overlaps host interface "wlan0" (10.100.0.0/16)',
      ),
      expect.stringContaining('domain "lab" uses 10.100.3.0/24'),
    ]);
    expect(summary.errors[0].fix).toContain('"10.200"');
    // The same infra on base 10.200 meets only 001-net-lab, an anklume bridge: no conflict.
    writeFileSync(join(dir, "infra2.yml"), exampleInfra.replaceAll("10.100", "10.200"));
    expect(gen("infra2.yml").exitCode).toBe(0);
    expect(gen("infra.yml", "1").exitCode).toBe(0);
  });
});

describe("make sync", () => {
  // Matrix: GO-011
  test("on a fresh checkout copies infra.example.yml to infra.yml, says so, and generates the tree", () => {
    const dir = workspace();
    for (const f of [
      "Makefile",
      "scripts",
      "lib",
      "node_modules",
      "infra.example.yml",
      "package.json",
    ]) {
      symlinkSync(join(ROOT, f), join(dir, f));
    }
    const r = Bun.spawnSync(["make", "sync"], {
      cwd: dir,
      env: {
        ...process.env,
        ANKLUME_SKIP_HOST_SUBNET_CHECK: "1",
        ANKLUME_CONTEXT_DIR: "/nonexistent",
      },
    });
    expect(r.stderr.toString()).toContain("copied infra.example.yml to infra.yml");
    expect(r.exitCode).toBe(0);
    expect(statSync(join(dir, "infra.yml")).isFile()).toBe(true);
    expect(existsSync(join(dir, "host_vars/pro-dev.yml"))).toBe(true);
    const again = Bun.spawnSync(["make", "sync"], {
      cwd: dir,
      env: {
        ...process.env,
        ANKLUME_SKIP_HOST_SUBNET_CHECK: "1",
        ANKLUME_CONTEXT_DIR: "/nonexistent",
      },
    });
    expect(again.stderr.toString()).not.toContain("copied");
    expect(again.stdout.toString()).toContain("Unchanged: 19 file(s)");
  });
});

describe("bad inputs and faults (issue 9)", () => {
  const base = 'project_name: demo\nglobal:\n  base_subnet: "10.100"\n';
  const sandbox =
    "sandbox:\n  subnet_id: 2\n  ephemeral: true\n  machines:\n    sandbox-box: {ip: 10.100.2.10}\n";

  test("D4: a domain file that became a dangling link fails the sync; --clean-orphans deletes nothing", () => {
    const dir = workspace({
      "infra/base.yml": base,
      "infra/domains/lab.yml": "lab:\n  subnet_id: 1\n",
      "infra/domains/sandbox.yml": sandbox,
    });
    expect(runProcess(["infra"], dir).code).toBe(0);
    const notes = join(dir, "host_vars/sandbox-box.yml");
    writeFileSync(notes, `${readFileSync(notes, "utf8")}my_notes: keep me\n`);
    const link = join(dir, "infra/domains/sandbox.yml");
    rmSync(link);
    symlinkSync("missing-volume/sandbox.yml", link);
    const r = runProcess(["--clean-orphans", "-y", "infra"], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("infra/domains/sandbox.yml");
    expect(r.stderr).toContain("symbolic link to a missing file");
    expect(r.stdout).not.toContain("Deleted");
    expect(readFileSync(notes, "utf8")).toContain("my_notes: keep me");
  });

  test("D11: a FIFO or a device as input is refused at once, never read", () => {
    const dir = workspace();
    Bun.spawnSync(["mkfifo", join(dir, "fifo.yml")]);
    for (const input of ["fifo.yml", "/dev/zero"]) {
      const r = Bun.spawnSync(["bun", join(ROOT, "scripts/generate.ts"), input], {
        cwd: dir,
        env: testEnv(),
        timeout: 20_000,
      });
      expect(r.exitCode).toBe(1);
      expect(r.stderr.toString()).toContain("not a regular file");
    }
  });

  // Matrix: GO-3-002
  test("D5: a write that cannot happen is found before any file changes; --json still prints its summary", () => {
    const infra = `${base}domains:\n  lab:\n    subnet_id: 1\n    machines:\n      lab-vm: {ip: "10.100.1.10"}\n`;
    const dir = workspace({ "infra.yml": infra });
    expect(runProcess(["infra.yml"], dir).code).toBe(0);
    rmSync(join(dir, "host_vars"), { recursive: true });
    writeFileSync(join(dir, "host_vars"), "oops\n");
    writeFileSync(join(dir, "infra.yml"), infra.replaceAll("10.100", "10.200"));
    const before = tree(dir);
    const r = runProcess(["infra.yml"], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("nothing was written");
    expect(r.stderr).toContain('"host_vars" is a file, not a directory');
    expect(tree(dir)).toEqual(before);
    const j = runProcess(["infra.yml", "--json"], dir);
    expect(j.code).toBe(1);
    const summary = JSON.parse(j.stdout);
    expect(summary.ok).toBe(false);
    expect(summary.written).toEqual([]);
    expect(summary.errors[0].message).toContain("is a file, not a directory");
  });

  // Matrix: GO-3-001
  test("D16: a second sync waits for the lock of the tree, then fails clearly; a dead owner's lock is taken over", () => {
    const dir = workspace({ "infra.yml": exampleInfra });
    writeFileSync(join(dir, ".anklume-sync.lock"), `${process.pid}\n`);
    const r = runProcess(["infra.yml"], dir, { ANKLUME_LOCK_TIMEOUT: "0.3" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`another sync (pid ${process.pid})`);
    expect(existsSync(join(dir, "host_vars"))).toBe(false);
    writeFileSync(join(dir, ".anklume-sync.lock"), "9999999\n");
    expect(runProcess(["infra.yml"], dir).code).toBe(0);
    expect(existsSync(join(dir, ".anklume-sync.lock"))).toBe(false);
  });

  // Matrix: GO-3-001
  test("D16: concurrent syncs of two inputs into one tree never mix them", async () => {
    const other = exampleInfra.replaceAll("10.100", "10.120");
    for (let trial = 0; trial < 3; trial++) {
      const dir = workspace({ "a.yml": exampleInfra, "b.yml": other });
      const run = (input: string) =>
        Bun.spawn(["bun", join(ROOT, "scripts/generate.ts"), input], {
          cwd: dir,
          env: testEnv(),
          stdout: "ignore",
          stderr: "ignore",
        }).exited;
      const codes = await Promise.all([run("a.yml"), run("b.yml")]);
      expect(codes).toEqual([0, 0]);
      const text = Object.values(tree(dir)).join("\n");
      expect(text.includes("10.100.") && text.includes("10.120."), `trial ${trial}`).toBe(false);
    }
  });

  // Matrix: OR-004
  test("--clean-orphans without a terminal and without --yes refuses (exit 1) and deletes nothing", () => {
    const dir = workspace({ "infra.yml": exampleInfra, "host_vars/old-box.yml": "my: notes\n" });
    const r = runProcess(["--clean-orphans", "infra.yml"], dir, {}, "");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("add --yes");
    expect(existsSync(join(dir, "host_vars/old-box.yml"))).toBe(true);
  });

  test("D7: a duplicate key spelled with an escape (\\x69p) is refused as by the exact parser", () => {
    const infra = `${base}domains:\n  lab:\n    subnet_id: 1\n    machines:\n      lab-vm:\n        ip: "10.100.1.10"\n        "\\x69p": "10.100.1.99"\n`;
    const dir = workspace({ "infra.yml": infra });
    for (const env of [{}, { ANKLUME_YAML_EXACT: "1" }]) {
      const r = runProcess(["infra.yml"], dir, env);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("infra.yml:10:9");
      expect(r.stderr).toContain("appears twice");
    }
    expect(existsSync(join(dir, "host_vars"))).toBe(false);
  });

  test("D12, D13, D17: NUL, invalid UTF-8, an unknown tag, deep nesting and two documents are clear errors", () => {
    const cases: [string, string | Uint8Array, string][] = [
      ["nul", `${base}domains:\n  lab: {subnet_id: 1, description: "a\0b"}\n`, "U+0000"],
      ["latin1", Buffer.from(`${base}# caf\xe9\n`, "latin1"), "not valid UTF-8"],
      ["tag", `${base}domains:\n  lab: {subnet_id: 1, description: !foo bar}\n`, "unknown tag"],
      ["deep", `${base}x: ${"[".repeat(10000)}${"]".repeat(10000)}\n`, "nests too deeply"],
      ["docs", `${base}---\ndomains: {}\n`, "more than one YAML document"],
      ["tab", `project_name:\tdemo\n`, "tab"],
    ];
    for (const [name, text, message] of cases) {
      const dir = workspace();
      writeFileSync(join(dir, "infra.yml"), text);
      const r = runProcess(["infra.yml"], dir);
      expect(r.code, name).toBe(1);
      expect(r.stderr, name).toContain(message);
      expect(r.stderr, name).toMatch(/infra\.yml:\d+:\d+: /);
      expect(r.stderr, name).not.toMatch(/call stack|parseAllDocuments|Warning:| {4}at /);
    }
  });

  test('D18: an empty <infra_file> ("") is a usage error (exit 2)', () => {
    const r = runProcess([""], workspace());
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("<infra_file> is empty");
  });
});
