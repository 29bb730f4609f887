import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { INVENTORY_CACHE_ENTRIES, readInventory, selectHosts } from "./inventory.ts";

const dirs: string[] = [];
// The parsed-tree cache of these tests lives in a directory of their own
// (bun runs every test file in one process: put the variable back after).
const savedCacheDir = process.env.ANKLUME_CACHE_DIR;
const CACHE = mkdtempSync(join(tmpdir(), "inv-cache-"));
process.env.ANKLUME_CACHE_DIR = CACHE;
afterAll(() => {
  if (savedCacheDir === undefined) delete process.env.ANKLUME_CACHE_DIR;
  else process.env.ANKLUME_CACHE_DIR = savedCacheDir;
  for (const d of [...dirs, CACHE]) rmSync(d, { recursive: true, force: true });
});

const managed = (body: string, user = "") =>
  `---\n# === MANAGED BY infra.yml ===\n# Do not edit this section — it will be overwritten by \`make sync\`\n${body}# === END MANAGED ===\n\n# Your custom variables below:\n${user}`;

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "inv-"));
  dirs.push(dir);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

const generated = {
  "inventory/pro.yml": managed(
    "all:\n  children:\n    pro:\n      hosts:\n        pro-dev:\n          ansible_host: 10.100.1.10\n        pro-dhcp:\n",
  ),
  "inventory/lab.yml": managed("all:\n  children:\n    lab:\n      hosts:\n        lab-a:\n"),
  "inventory/empty.yml": managed("all:\n  children:\n    empty:\n      hosts:\n"),
  "group_vars/all.yml": managed("base_subnet: '10.100'\n"),
  "group_vars/pro.yml": managed("domain_name: pro\nincus_project: 001-pro\n"),
  "group_vars/lab.yml": managed("domain_name: lab\nincus_project: 001-lab\n"),
  "host_vars/pro-dev.yml": managed("instance_name: 001-pro-dev\ninstance_domain: pro\n"),
  "host_vars/pro-dhcp.yml": managed("instance_name: 001-pro-dhcp\ninstance_domain: pro\n"),
  "host_vars/lab-a.yml": managed(
    "instance_name: 001-lab-a\ninstance_domain: lab\n",
    "incus_project: custom-lab\n",
  ),
};

describe("readInventory", () => {
  test("reads instance names and projects of every domain from the generated files", () => {
    const inv = readInventory(tree(generated));
    expect(inv?.hosts.map(({ vars: _vars, ...h }) => h)).toEqual([
      { host: "lab-a", instance: "001-lab-a", project: "custom-lab", groups: ["lab"] },
      { host: "pro-dev", instance: "001-pro-dev", project: "001-pro", groups: ["pro"] },
      { host: "pro-dhcp", instance: "001-pro-dhcp", project: "001-pro", groups: ["pro"] },
    ]);
    expect(inv?.groups.get("empty")).toEqual([]);
  });

  test("falls back to the host name and the default project when vars are missing", () => {
    const inv = readInventory(
      tree({ "inventory/x.yml": "all:\n  children:\n    x:\n      hosts:\n        bare:\n" }),
    );
    expect(inv?.hosts.map(({ vars: _vars, ...h }) => h)).toEqual([
      { host: "bare", instance: "bare", project: "default", groups: ["x"] },
    ]);
  });

  test("reads group_vars/<group>/ directories and nested child groups", () => {
    const inv = readInventory(
      tree({
        "inventory/hosts.yml":
          "all:\n  children:\n    site:\n      children:\n        web:\n          hosts:\n            w1:\n",
        "group_vars/web/vars.yml": "incus_project: webproj\n",
      }),
    );
    expect(inv?.hosts.map(({ vars: _vars, ...h }) => h)).toEqual([
      { host: "w1", instance: "w1", project: "webproj", groups: ["site", "web"] },
    ]);
  });

  test("merges each host's variables as Ansible does: all, then its groups, then host_vars", () => {
    const inv = readInventory(
      tree({
        "inventory/hosts.yml":
          "all:\n  children:\n    web:\n      hosts:\n        w1:\n        w2:\n",
        "group_vars/all.yml": "a: all\nb: all\nc: all\n",
        "group_vars/web.yml": "b: web\nc: web\n",
        "host_vars/w1.yml": "c: host\n",
      }),
    );
    expect(inv?.hosts.map((h) => [h.host, h.vars])).toEqual([
      ["w1", { a: "all", b: "web", c: "host" }],
      ["w2", { a: "all", b: "web", c: "web" }],
    ]);
  });

  test("returns null when there is no inventory", () => {
    expect(readInventory(tree({ "group_vars/all.yml": "x: 1\n" }))).toBeNull();
  });

  test("reports a YAML error with the file and the fix", () => {
    const dir = tree({ "inventory/bad.yml": "all: [\n" });
    expect(() => readInventory(dir)).toThrow(/bad\.yml.*make sync/);
  });

  test("the parsed tree is cached: an unchanged tree is read from the cache, a changed file is parsed again", () => {
    const dir = tree(generated);
    process.env.ANKLUME_CACHE_DIR = join(CACHE, "one");
    const project = () => readInventory(dir)?.hosts.find((h) => h.host === "lab-a")?.project;
    try {
      expect(project()).toBe("custom-lab");
      const entries = readdirSync(join(CACHE, "one", "inventory"));
      expect(entries).toHaveLength(1);
      // A hit returns what the cache holds (proved by changing it behind the reader's back).
      const file = join(CACHE, "one", "inventory", entries[0] as string);
      writeFileSync(file, readFileSync(file, "utf8").replace("custom-lab", "from-the-cache"));
      expect(project()).toBe("from-the-cache");
      // Any change to a file of the tree is a miss, and the cache is rewritten.
      writeFileSync(
        join(dir, "host_vars/lab-a.yml"),
        managed("instance_name: 001-lab-a\n", "incus_project: edited-lab\n"),
      );
      expect(project()).toBe("edited-lab");
      expect(readFileSync(file, "utf8")).toContain("edited-lab");
      // An unreadable cache is a miss, never an error or a different answer.
      writeFileSync(file, "{not json");
      expect(project()).toBe("edited-lab");
      // A file the reader asks for and the cache lacks is parsed.
      writeFileSync(
        file,
        JSON.stringify({ ...JSON.parse(readFileSync(file, "utf8")), values: [] }),
      );
      expect(project()).toBe("edited-lab");
    } finally {
      process.env.ANKLUME_CACHE_DIR = CACHE;
    }
  });

  test("ANKLUME_NO_CACHE=1 writes no cache; the cache keeps at most INVENTORY_CACHE_ENTRIES trees", () => {
    const saved = process.env.ANKLUME_NO_CACHE;
    const before = readdirSync(join(CACHE, "inventory")).length;
    process.env.ANKLUME_NO_CACHE = "1";
    try {
      expect(readInventory(tree(generated))?.hosts).toHaveLength(3);
      expect(readdirSync(join(CACHE, "inventory"))).toHaveLength(before);
    } finally {
      if (saved === undefined) delete process.env.ANKLUME_NO_CACHE;
      else process.env.ANKLUME_NO_CACHE = saved;
    }
    for (let i = 0; i < INVENTORY_CACHE_ENTRIES + 3; i++) readInventory(tree(generated));
    expect(readdirSync(join(CACHE, "inventory"))).toHaveLength(INVENTORY_CACHE_ENTRIES);
  });
});

describe("selectHosts", () => {
  const inv = () => {
    const i = readInventory(tree(generated));
    if (!i) throw new Error("no inventory");
    return i;
  };

  test("selects a domain, a host, a comma list, or everything", () => {
    const names = (limit?: string) => selectHosts(inv(), limit).map((h) => h.host);
    expect(names()).toEqual(["lab-a", "pro-dev", "pro-dhcp"]);
    expect(names("all")).toEqual(["lab-a", "pro-dev", "pro-dhcp"]);
    expect(names("pro")).toEqual(["pro-dev", "pro-dhcp"]);
    expect(names("lab-a,pro-dev")).toEqual(["lab-a", "pro-dev"]);
    expect(names("001-pro-dev")).toEqual(["pro-dev"]);
    expect(names("empty")).toEqual([]);
  });

  test("understands Ansible's pattern syntax: globs, ~regex, !exclude, &intersect, colons", () => {
    const names = (limit: string) => selectHosts(inv(), limit).map((h) => h.host);
    expect(names("pro-*")).toEqual(["pro-dev", "pro-dhcp"]);
    expect(names("*")).toEqual(["lab-a", "pro-dev", "pro-dhcp"]);
    expect(names("~^lab")).toEqual(["lab-a"]);
    expect(names("pro:!pro-dhcp")).toEqual(["pro-dev"]);
    expect(names("all,!lab")).toEqual(["pro-dev", "pro-dhcp"]);
    expect(names("all:&pro")).toEqual(["pro-dev", "pro-dhcp"]);
    expect(names("emp*")).toEqual([]);
    expect(() => selectHosts(inv(), "zz*")).toThrow(/"zz\*"/);
  });

  test("an unknown group or host is an error naming it and the known groups", () => {
    expect(() => selectHosts(inv(), "pro,nope")).toThrow(/"nope".*known groups: empty, lab, pro/);
  });
});

describe("readInventory on the generator's own output", () => {
  test("every machine of every domain gets its prefixed instance name and prefixed project", async () => {
    const dir = tree({
      "infra.yml": [
        "project_name: inv-test",
        "global:",
        '  base_subnet: "10.231"',
        "domains:",
        "  work:",
        "    subnet_id: 1",
        "    machines:",
        "      work-dev:",
        '        ip: "10.231.1.10"',
        "      work-dhcp: {}",
        "  lab:",
        "    subnet_id: 2",
        "    ephemeral: true",
        "    machines:",
        "      lab-box: {}",
        "",
      ].join("\n"),
    });
    const gen = Bun.spawnSync(
      ["bun", "scripts/generate.ts", join(dir, "infra.yml"), "--base-dir", dir],
      {
        cwd: join(import.meta.dir, "..", ".."),
        env: {
          ...process.env,
          ANKLUME_SKIP_HOST_SUBNET_CHECK: "1",
          // No /etc/anklume and no ~/.cache: an empty context (level 1) and a
          // stamp cache removed with the workspace.
          ANKLUME_CONTEXT_DIR: tree({}),
          ANKLUME_CACHE_DIR: join(dir, "cache"),
        },
        stderr: "pipe",
      },
    );
    expect(gen.exitCode, gen.stderr.toString()).toBe(0);
    const inv = readInventory(dir);
    // An empty context dir is level 1: the prefix is 001-, whatever this host has.
    const p = "001-";
    expect(inv?.hosts.map(({ vars: _vars, ...h }) => h)).toEqual([
      { host: "lab-box", instance: `${p}lab-box`, project: `${p}lab`, groups: ["lab"] },
      { host: "work-dev", instance: `${p}work-dev`, project: `${p}work`, groups: ["work"] },
      { host: "work-dhcp", instance: `${p}work-dhcp`, project: `${p}work`, groups: ["work"] },
    ]);
  });
});
