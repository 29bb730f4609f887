import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import YAML from "yaml";
import { isCI } from "../../tests/helpers.ts";
import { dumpYaml, NON_STRING, NON_STRING_FIRST, resolvesNonString } from "./emit.ts";
import { mergeManaged } from "./managed.ts";

const FIXTURES = join(import.meta.dir, "..", "..", "tests", "fixtures", "worked-example");
const SEED = Number(process.env.FC_SEED ?? 20261125);
// PyYAML comes with Ansible in the venv bootstrap.sh creates; CI must have it.
const PYTHON = `${process.env.ANKLUME_VENV ?? "/opt/anklume/venv"}/bin/python3`;
if (isCI() && !existsSync(PYTHON)) {
  throw new Error(
    `lib/sync/emit.test.ts: ${PYTHON} (PyYAML, from bootstrap.sh) is missing under CI=true`,
  );
}

/** The data the generator produces for generator-contract §14, file by file. */
const WORKED: Record<string, unknown> = {
  "group_vars/all.yml": {
    project_name: "demo",
    base_subnet: "10.100",
    default_os_image: "images:debian/13",
    psot_default_connection: "community.general.incus",
    psot_default_user: "root",
    incus_all_images: ["images:debian/13"],
    network_policies: [
      {
        description: "Admin reaches the lab",
        from: "anklume",
        to: "lab",
        ports: [22],
        protocol: "tcp",
      },
    ],
  },
  "inventory/anklume.yml": {
    all: {
      children: { anklume: { hosts: { "anklume-instance": { ansible_host: "10.100.0.10" } } } },
    },
  },
  "inventory/lab.yml": {
    all: {
      children: {
        lab: { hosts: { "lab-vm": { ansible_host: "10.100.3.10" }, "lab-dhcp": null } },
      },
    },
  },
  "group_vars/anklume.yml": {
    domain_name: "anklume",
    domain_description: "Administration",
    domain_ephemeral: false,
    domain_trust_level: "admin",
    incus_project: "001-anklume",
    incus_network: { name: "001-net-anklume", subnet: "10.100.0.0/24", gateway: "10.100.0.254" },
    subnet_id: 0,
  },
  "group_vars/lab.yml": {
    domain_name: "lab",
    domain_description: "Throwaway lab",
    domain_ephemeral: true,
    incus_project: "001-lab",
    incus_network: { name: "001-net-lab", subnet: "10.100.3.0/24", gateway: "10.100.3.254" },
    subnet_id: 3,
    incus_profiles: { nesting: { config: { "security.nesting": "true" } } },
  },
  "host_vars/anklume-instance.yml": {
    instance_name: "001-anklume-instance",
    instance_type: "lxc",
    instance_description: "Ansible controller",
    instance_domain: "anklume",
    instance_ephemeral: false,
    instance_os_image: "images:debian/13",
    instance_ip: "10.100.0.10",
    instance_config: { "security.nesting": "true" },
    instance_roles: ["base_system"],
  },
  "host_vars/lab-vm.yml": {
    instance_name: "001-lab-vm",
    instance_type: "vm",
    instance_description: "",
    instance_domain: "lab",
    instance_ephemeral: false,
    instance_os_image: "images:debian/13",
    instance_ip: "10.100.3.10",
    instance_profiles: ["default", "nesting"],
    instance_boot_autostart: true,
  },
  "host_vars/lab-dhcp.yml": {
    instance_name: "001-lab-dhcp",
    instance_type: "lxc",
    instance_description: "DHCP client",
    instance_domain: "lab",
    instance_ephemeral: true,
    instance_os_image: "images:debian/13",
  },
};

describe("dumpYaml on the worked example (generator-contract §14)", () => {
  for (const [file, data] of Object.entries(WORKED)) {
    test(`new ${file} is byte for byte the contract's`, () => {
      const expected = readFileSync(join(FIXTURES, file), "utf8");
      const merged = mergeManaged(null, dumpYaml(data));
      expect(merged).toEqual({ ok: true, content: expected });
    });
  }
});

describe("dumpYaml layout", () => {
  test("indents sequences under their key and nests mappings in items", () => {
    const v = { k: [1, { a: 1, b: [2, 3] }, [4, [5]], null, [], {}], e: {}, z: null };
    expect(dumpYaml(v)).toBe(
      "k:\n  - 1\n  - a: 1\n    b:\n      - 2\n      - 3\n  - - 4\n    - - 5\n  -\n  - []\n  - {}\ne: {}\nz:\n",
    );
  });

  test("quotes strings that YAML 1.1 or 1.2 would read as something else", () => {
    for (const s of [
      "true",
      "yes",
      "no",
      "on",
      "off",
      "y",
      "N",
      "null",
      "~",
      "",
      "10.100",
      "123",
    ]) {
      expect(dumpYaml({ k: s })).toBe(`k: '${s}'\n`);
    }
    for (const s of ["1e3", "0x1F", "0o7", "2026-01-01", ".", "1:20", "<<", ".inf", "-.5"]) {
      expect(dumpYaml({ k: s })).toBe(`k: '${s}'\n`);
    }
    for (const s of [
      "10.100.0.10",
      "images:debian/13",
      "001-anklume",
      "a b",
      "yesno",
      "10.100.0.0/24",
    ]) {
      expect(dumpYaml({ k: s })).toBe(`k: ${s}\n`);
    }
  });

  test("quotes indicators, ': ' and ' #', leading and trailing spaces, like PyYAML", () => {
    const cases: Record<string, string> = {
      "- x": "'- x'",
      "-x": "-x",
      "a: b": "'a: b'",
      "a:b": "a:b",
      "key #c": "'key #c'",
      "a#b": "a#b",
      "#x": "'#x'",
      " lead": "' lead'",
      "trail ": "'trail '",
      "it's": "it's",
      "'q": "'''q'",
      "---": "'---'",
      "@x": "'@x'",
      "%x": "'%x'",
      "?x": "?x",
      "? x": "'? x'",
      "a:": "'a:'",
    };
    for (const [s, out] of Object.entries(cases)) expect(dumpYaml({ k: s })).toBe(`k: ${out}\n`);
    // An astral character whose low 16 bits are an indicator (U+70027 ends in 0x27 = ').
    expect(dumpYaml({ k: "\u{70027}x" })).toBe("k: \u{70027}x\n");
  });

  test("double-quotes line breaks and control characters, never folds", () => {
    expect(dumpYaml({ k: "multi\nline" })).toBe('k: "multi\\nline"\n');
    expect(dumpYaml({ k: "tab\tx" })).toBe('k: "tab\\tx"\n');
    expect(dumpYaml({ k: 'a\u2028b\u0085c\u0001"\\' })).toBe('k: "a\\Lb\\Nc\\x01\\"\\\\"\n');
    const long = "word ".repeat(100).trim();
    expect(dumpYaml({ k: long })).toBe(`k: ${long}\n`);
  });

  test("uses PyYAML's complex keys for empty, multi-line and long keys", () => {
    expect(dumpYaml({ "": 1 })).toBe("? ''\n: 1\n");
    expect(dumpYaml({ "a\nb": { c: 1, d: 2 } })).toBe('? "a\\nb"\n: c: 1\n  d: 2\n');
    const k = "k".repeat(128);
    expect(dumpYaml({ [k]: [1, 2] })).toBe(`? ${k}\n: - 1\n  - 2\n`);
    expect(dumpYaml({ ["k".repeat(127)]: 1 })).toBe(`${"k".repeat(127)}: 1\n`);
  });

  test("writes numbers as PyYAML writes ints and Python float reprs", () => {
    expect(dumpYaml([0, -3, 1.5, 0.1, 1e-7, 1.5e-5, 1e21, 2 ** 60, -0])).toBe(
      "- 0\n- -3\n- 1.5\n- 0.1\n- 1.0e-07\n- 1.5e-05\n- 1.0e+21\n- 1.152921504606847e+18\n- -0.0\n",
    );
  });

  test("leaves out undefined keys and rejects values YAML cannot hold", () => {
    expect(dumpYaml({ a: undefined, b: 1 })).toBe("b: 1\n");
    expect(() => dumpYaml({ a: { b: new Date(0) } })).toThrow(/Cannot write Date at a\.b/);
    expect(() => dumpYaml([1n])).toThrow(/Cannot write bigint at \[0\]/);
  });

  test("top-level scalars and empty collections end with a newline", () => {
    expect(dumpYaml({})).toBe("{}\n");
    expect(dumpYaml([])).toBe("[]\n");
    expect(dumpYaml("x")).toBe("x\n");
    expect(YAML.parse(dumpYaml(null))).toBe(null);
  });

  test("resolvesNonString agrees with the yaml package on its own scalars", () => {
    for (const s of [
      "Yes",
      "NULL",
      "+12",
      "1_000",
      "0b101",
      "-.INF",
      ".NaN",
      "1.0e+5",
      "190:20:30",
    ]) {
      expect(resolvesNonString(s)).toBe(true);
    }
    expect(resolvesNonString("anklume")).toBe(false);
  });
});

const TRICKY = [
  "true",
  "no",
  "on",
  "~",
  "null",
  "",
  "10.100",
  "1e3",
  "0o7",
  ": ",
  "a: b",
  "#x",
  "- x",
  "key #c",
  " lead",
  "trail ",
  "multi\nline",
  "tab\tx",
  "\u2028",
  "y",
  "=",
  "<<",
  ".",
  "-",
  "2026-01-01",
  "2001-12-14t21:59:43.10-05:00",
  "0x1F",
  "+1",
  "1_0",
  "1:30",
  "'",
  '"',
  "---",
  "...",
  "\r\n",
  "a\u00a0",
  "\ufeff",
  "😀",
  "é",
  "\u0085",
  "[a]",
  "{b}",
  "*x",
  "&y",
  "!z",
  "|",
  ">",
  "%",
  "@",
  "`",
  "?",
  ":",
  ",",
  " ",
  "a\n ",
  "a \nb",
  "\n",
  "x:",
  "\\",
  "\u007f",
];

/** JSON-like values with the strings most likely to be misread. */
function jsonLike(unit: "binary" | "grapheme-ascii") {
  const str = fc.oneof(
    fc.constantFrom(...TRICKY),
    fc.string({ unit }),
    fc.string({ unit: "grapheme-ascii" }),
  );
  const num = fc.oneof(
    fc.integer(),
    fc
      .double({ noNaN: true, noDefaultInfinity: true })
      .filter((x) => !Object.is(x, -0) && (!Number.isInteger(x) || Number.isSafeInteger(x))),
  );
  const leaf = fc.oneof(str, num, fc.boolean(), fc.constant(null));
  return fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      leaf,
      fc.array(tie("value"), { maxLength: 5 }),
      fc.dictionary(str, tie("value"), { maxKeys: 5 }),
    ),
    top: fc.dictionary(str, tie("value"), { maxKeys: 8 }),
  })).top;
}

describe("dumpYaml round-trips", () => {
  test("through the yaml package in YAML 1.1 and 1.2 (core)", () => {
    fc.assert(
      fc.property(jsonLike("binary"), (v) => {
        const text = dumpYaml(v);
        expect(YAML.parse(text, { version: "1.1" })).toEqual(v);
        expect(YAML.parse(text)).toEqual(v);
      }),
      { numRuns: 5000, seed: SEED },
    );
  }, 60_000);

  test.skipIf(!existsSync(PYTHON))(
    "is byte for byte PyYAML's dump and reads back in PyYAML (skipped only without the Ansible venv, never under CI)",
    () => {
      // PyYAML with v1's dumper, taught the same extra non-string patterns and
      // the double-quoting of line breaks, must write exactly what we write.
      const values = fc.sample(jsonLike("binary"), { numRuns: 400, seed: SEED });
      const ours = values.map(dumpYaml);
      const script = `
import json, re, sys, yaml
class D(yaml.SafeDumper):
    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)
D.add_representer(type(None), lambda d, _: d.represent_scalar('tag:yaml.org,2002:null', ''))
BREAKS = re.compile('[\\n\\x85\\u2028\\u2029]')
D.add_representer(str, lambda d, s: d.represent_scalar('tag:yaml.org,2002:str', s, style='"' if BREAKS.search(s) else None))
job = json.load(sys.stdin)
for src in job['patterns']:
    D.add_implicit_resolver('tag:anklume,2026:other', re.compile(src), list(job['first']))
out = []
for v, text in zip(job['values'], job['ours']):
    theirs = yaml.dump(v, Dumper=D, default_flow_style=False, sort_keys=False, allow_unicode=True, width=float('inf'))
    out.append({'dump': theirs, 'load': yaml.safe_load(text)})
print(json.dumps(out))
`;
      const job = JSON.stringify({
        values,
        ours,
        patterns: NON_STRING.map((re) => re.source),
        first: NON_STRING_FIRST,
      });
      const run = Bun.spawnSync([PYTHON, "-c", script], { stdin: Buffer.from(job) });
      expect(run.stderr.toString()).toBe("");
      const results = JSON.parse(run.stdout.toString()) as { dump: string; load: unknown }[];
      expect(results.length).toBe(values.length);
      results.forEach((r, i) => {
        if (r.dump !== ours[i] || !Bun.deepEquals(r.load, values[i])) {
          throw new Error(
            `seed ${SEED}, sample ${i}: ${JSON.stringify(values[i])}\nours:\n${ours[i]}\nPyYAML:\n${r.dump}`,
          );
        }
      });
    },
    60_000,
  );

  test.skipIf(!existsSync(PYTHON))(
    "every string PyYAML's stock YAML 1.1 resolver reads as a non-string is quoted (an oracle independent of NON_STRING; skipped only without the Ansible venv, never under CI)",
    () => {
      // The byte-for-byte test above teaches PyYAML our own NON_STRING patterns,
      // so it cannot find one missing. Here PyYAML's stock resolver alone says
      // which plain scalars are not strings, and each must come out quoted.
      const sampled = fc
        .sample(jsonLike("grapheme-ascii"), { numRuns: 300, seed: SEED })
        .flatMap((v) => JSON.stringify(v).match(/"(?:[^"\\]|\\.)*"/g) ?? [])
        .map((q) => JSON.parse(q) as string);
      const corpus = [
        ...TRICKY,
        ...sampled,
        ...["yes", "No", "ON", "off", "y", "N", "~", "null", "NULL", "true", "False"],
        ...["1_000", "0x1F", "0o17", "017", "0b101", "1:20", "190:20:30", "1e3", "+1.5", "-.5"],
        ...[".inf", "-.Inf", ".NaN", "2001-12-14", "2001-12-14 21:59:43.10 -5", "=", "<<"],
      ];
      const script = `
import json, sys, yaml
r = yaml.resolver.Resolver()
print(json.dumps([s for s in json.load(sys.stdin) if r.resolve(yaml.ScalarNode, s, (True, False)) != 'tag:yaml.org,2002:str']))
`;
      const run = Bun.spawnSync([PYTHON, "-c", script], {
        stdin: Buffer.from(JSON.stringify(corpus)),
      });
      expect(run.stderr.toString()).toBe("");
      const nonStrings = JSON.parse(run.stdout.toString()) as string[];
      // The oracle answered: the fixed words above alone are over twenty.
      expect(nonStrings.length).toBeGreaterThan(20);
      for (const text of nonStrings) {
        expect(dumpYaml({ k: text }), JSON.stringify(text)).not.toBe(`k: ${text}\n`);
      }
    },
    60_000,
  );
});
