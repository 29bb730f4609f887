import { describe, expect, test } from "bun:test";
import {
  type CurrentProfile,
  type DomainOrphansDesired,
  firewallInterfaces,
  type OrphanInputs,
  type ProfilesDesired,
  planDomainOrphans,
  planFirewall,
  planImages,
  planNetworks,
  planProfiles,
  planProjects,
  usedByProject,
} from "./kinds.ts";
import { planSteps } from "./reconcile.ts";

test("planProjects creates with v1 features and the infra marker, fixes the description", () => {
  const p = planProjects(
    {
      infra: "001-x",
      features: {},
      projects: [
        { name: "001-a", description: "A" },
        { name: "001-b", description: "B" },
      ],
    },
    [
      {
        name: "001-b",
        description: "old",
        config: {
          "user.anklume.infra": "001-x",
          "features.images": "true",
          "features.profiles": "true",
          "features.storage.volumes": "true",
        },
      },
    ],
  );
  expect(p.before.map((s) => s.args)).toEqual([
    [
      "project",
      "create",
      "001-a",
      "-c",
      "features.images=true",
      "-c",
      "features.networks=false",
      "-c",
      "features.profiles=true",
      "-c",
      "features.storage.volumes=true",
      "-c",
      "user.anklume.infra=001-x",
      "--description",
      "A",
    ],
    ["project", "set", "001-b", "description", "B", "--property"],
  ]);
});

test("planNetworks on a cluster: a new bridge is defined on each member (pending), then created; an existing one is not", () => {
  const want = { infra: "i", nat: false, networks: [{ name: "001-net-a", gateway: "10.1.2.254" }] };
  const create = planNetworks(want, [], ["m1", "m2"]);
  expect(create.before.map((s) => s.args?.slice(0, 5).join(" "))).toEqual([
    "network create 001-net-a --target m1",
    "network create 001-net-a --target m2",
    "network create 001-net-a ipv4.address=10.1.2.254/24 ipv4.dhcp.ranges=10.1.2.100-10.1.2.249",
  ]);
  const cfg = {
    "ipv4.address": "10.1.2.254/24",
    "ipv4.nat": "false",
    "ipv4.firewall": "true",
    "ipv4.dhcp.ranges": "10.1.2.100-10.1.2.249",
    "ipv6.address": "none",
    "user.anklume.infra": "i",
  };
  expect(planNetworks(want, [{ name: "001-net-a", config: cfg }], ["m1", "m2"]).before).toEqual([]);
});

test("planNetworks: a new bridge gets gateway/24, DHCP .100-.249, NAT as asked, IPv6 off; drift is one set call", () => {
  const create = planNetworks(
    { infra: "i", nat: false, networks: [{ name: "001-net-a", gateway: "10.1.2.254" }] },
    [],
  );
  expect(create.before[0]?.args).toEqual([
    "network",
    "create",
    "001-net-a",
    "ipv4.address=10.1.2.254/24",
    "ipv4.dhcp.ranges=10.1.2.100-10.1.2.249",
    "ipv4.firewall=true",
    "ipv4.nat=false",
    "ipv6.address=none",
    "user.anklume.infra=i",
  ]);
  const cfg = {
    "ipv4.address": "10.1.2.254/24",
    "ipv4.nat": "true",
    "ipv4.firewall": "true",
    "ipv4.dhcp.ranges": "x",
    "ipv6.address": "none",
    "user.anklume.infra": "i",
  };
  const drift = planNetworks(
    { infra: "i", nat: false, networks: [{ name: "001-net-a", gateway: "10.1.2.254" }] },
    [{ name: "001-net-a", config: cfg }],
  );
  expect(drift.before.map((s) => s.args)).toEqual([
    ["network", "set", "001-net-a", "ipv4.dhcp.ranges=10.1.2.100-10.1.2.249", "ipv4.nat=false"],
  ]);
  expect(
    planNetworks(
      { infra: "i", nat: true, networks: [{ name: "001-net-a", gateway: "10.1.2.254" }] },
      [{ name: "001-net-a", config: { ...cfg, "ipv4.dhcp.ranges": "10.1.2.100-10.1.2.249" } }],
    ).before,
  ).toEqual([]);
});

test("planProfiles puts eth0 (filtering on) and root on a new project's default profile in the same run", () => {
  const p = planProfiles(
    {
      infra: "i",
      pool: "default",
      keep: [],
      nic_filtering: true,
      domains: [
        {
          project: "p",
          bridge: "br",
          profiles: { gpu: { config: { "limits.cpu": 2 }, devices: { gpu: { type: "gpu" } } } },
        },
      ],
    },
    [],
    false,
  );
  const args = p.before.map((s) => s.args?.join(" "));
  expect(args).toContain(
    "profile device add default eth0 nic name=eth0 network=br security.ipv4_filtering=true security.ipv6_filtering=true security.mac_filtering=true --project p",
  );
  expect(args).toContain("profile device add default root disk path=/ pool=default --project p");
  expect(args).toContain("profile create gpu --project p");
  expect(args).toContain(
    "profile set gpu limits.cpu=2 user.anklume.infra=i user.anklume.managed_devices=gpu user.anklume.managed_keys=limits.cpu,user.anklume.infra --project p",
  );
  expect(args).toContain("profile device add gpu gpu gpu --project p");
});

test("planImages copies a local alias into each project with --mode relay, and warns how to fix a missing one", () => {
  const images = [
    { fingerprint: "f1", project: "default", aliases: [{ name: "anklume-busybox" }] },
  ];
  /** The desired images of project 001-a. */
  const want = (...refs: string[]) => ({
    source_project: "default",
    images: refs.map((ref) => ({ project: "001-a", ref })),
  });
  const p = planImages(want("anklume-busybox", "anklume-busybox"), images, "local");
  expect(p.before.map((s) => s.args)).toEqual([
    [
      "image",
      "copy",
      "anklume-busybox",
      "local:",
      "--project",
      "default",
      "--target-project",
      "001-a",
      "--alias",
      "anklume-busybox",
      "--mode",
      "relay",
    ],
  ]);
  expect(
    planImages(
      want("anklume-busybox"),
      [...images, { fingerprint: "f1", project: "001-a", aliases: [{ name: "anklume-busybox" }] }],
      "local",
    ).before,
  ).toEqual([]);
  // A missing image is a warning: only the machines that use it fail (at their creation).
  const missing = planImages(want("nope"), images, "local");
  expect(planSteps(missing)).toEqual([]);
  expect(missing.warnings[0]).toMatch(/Cannot find image "nope".*OS_IMAGE=/);
  expect(
    planImages(want("images:debian/13"), images, "local").before[0]?.args?.slice(0, 4),
  ).toEqual(["image", "copy", "images:debian/13", "local:"]);
  // On another remote (INCUS_REMOTE, incus remote switch) both copies name it.
  const far = planImages(want("anklume-busybox", "images:debian/13"), images, "lab");
  expect(far.before.map((s) => s.args?.slice(2, 4))).toEqual([
    ["anklume-busybox", "lab:"],
    ["images:debian/13", "lab:"],
  ]);
});

test("orphan domains: a project with a protected instance is kept; a bridge used only by deleted projects goes", () => {
  const mark = { "user.anklume.infra": "i" };
  const p = planDomainOrphans(
    { infra: "i", projects: ["001-a"], networks: ["001-net-a"], auto_cleanup: true },
    {
      projects: [
        { name: "001-a", config: mark },
        { name: "001-b", config: mark },
        { name: "001-c", config: mark },
        { name: "foreign", config: {} },
      ],
      networks: [
        { name: "001-net-b", config: mark, used_by: ["/1.0/profiles/default?project=001-b"] },
        { name: "001-net-c", config: mark, used_by: ["/1.0/profiles/default?project=001-c"] },
      ],
      instances: [
        { name: "x", project: "001-c", config: { "security.protection.delete": "true" } },
      ],
      images: [{ fingerprint: "f", project: "001-b" }],
      profiles: [],
    },
  );
  expect(p.orphans.map((o) => `${o.kind} ${o.name}: ${o.action}`)).toEqual([
    "project 001-b: deleted",
    "instance x: kept (protected)",
    "project 001-c: kept (protected)",
    "network 001-net-b: deleted",
    "network 001-net-c: kept (in use)",
  ]);
  expect(p.after.map((s) => s.args?.join(" "))).toEqual([
    "image delete f --project 001-b",
    "project delete 001-b",
    "network delete 001-net-b",
  ]);
});

test("the firewall VM profile has one NIC per bridge, admin first, and drops NICs of vanished bridges (fake: VMs cannot start here)", () => {
  expect(firewallInterfaces(["001-net-anklume", "001-net-a"])).toEqual([
    { name: "eth0", bridge: "001-net-anklume" },
    { name: "eth1", bridge: "001-net-a" },
  ]);
  const cur = [
    {
      name: "firewall-multi-nic",
      project: "001-anklume",
      config: { "user.anklume.infra": "i", "user.anklume.managed_devices": "eth0,eth1,eth2" },
      devices: {
        eth0: { type: "nic", network: "001-net-anklume", name: "eth0" },
        eth1: { type: "nic", network: "001-net-old", name: "eth1" },
        eth2: { type: "nic", network: "001-net-b", name: "eth2" },
      },
    },
  ];
  const p = planFirewall(
    {
      infra: "i",
      project: "001-anklume",
      profile: "firewall-multi-nic",
      bridges: ["001-net-anklume", "001-net-a"],
    },
    cur,
  );
  expect(p.before.map((s) => s.args?.join(" "))).toEqual([
    "profile set firewall-multi-nic user.anklume.managed_devices=eth0,eth1 --project 001-anklume",
    "profile device set firewall-multi-nic eth1 network=001-net-a --project 001-anklume",
    "profile device remove firewall-multi-nic eth2 --project 001-anklume",
  ]);
});

test("a project or bridge marked by another infra is not taken over (a warning says so)", () => {
  const p = planProjects(
    { infra: "001-mine", features: {}, projects: [{ name: "001-a", description: "" }] },
    [
      {
        name: "001-a",
        description: "",
        config: {
          "user.anklume.infra": "001-other",
          "features.images": "true",
          "features.profiles": "true",
          "features.storage.volumes": "true",
        },
      },
    ],
  );
  expect(p.before).toEqual([]);
  expect(p.warnings[0]).toContain('belongs to infra "001-other"');
  const cfg = {
    "ipv4.address": "10.1.2.254/24",
    "ipv4.nat": "true",
    "ipv4.firewall": "true",
    "ipv4.dhcp.ranges": "10.1.2.100-10.1.2.249",
    "ipv6.address": "none",
    "user.anklume.infra": "001-other",
  };
  const n = planNetworks(
    { infra: "001-mine", nat: true, networks: [{ name: "br", gateway: "10.1.2.254" }] },
    [{ name: "br", config: cfg }],
  );
  expect(n.before).toEqual([]);
  expect(n.warnings.length).toBe(1);
  // An unmarked project (a v1 install) is adopted.
  const v1 = planProjects(
    { infra: "001-mine", features: {}, projects: [{ name: "001-a", description: "" }] },
    [
      {
        name: "001-a",
        description: "",
        config: {
          "features.images": "true",
          "features.profiles": "true",
          "features.storage.volumes": "true",
        },
      },
    ],
  );
  expect(v1.before.map((s) => s.args)).toEqual([
    ["project", "set", "001-a", "user.anklume.infra=001-mine"],
  ]);
});

describe("planProfiles, the whole plan (mutation survivors)", () => {
  const want: ProfilesDesired = {
    infra: "001-x",
    pool: "fast",
    nic_filtering: false,
    keep: ["fw"],
    domains: [
      {
        project: "001-a",
        bridge: "001-net-a",
        profiles: {
          fresh: {
            description: "New one",
            config: { "limits.cpu": 2 },
            devices: { gpu: { type: "gpu" } },
          },
          old: {
            description: "Changed",
            config: { "limits.memory": "1GiB" },
            devices: { d: { type: "disk", path: "/d", source: "/s" } },
          },
          plain: null,
        },
      },
    ],
  };
  const current: CurrentProfile[] = [
    {
      name: "default",
      project: "001-a",
      description: "",
      config: {},
      devices: {
        eth0: { type: "nic", network: "001-net-a", name: "eth0", "security.mac_filtering": "true" },
      },
      used_by: [],
    },
    {
      name: "old",
      project: "001-a",
      description: "Was",
      config: {
        "limits.memory": "2GiB",
        "limits.cpu": "4",
        "user.anklume.managed_keys": "limits.cpu,limits.memory,user.anklume.infra",
        "user.anklume.infra": "001-x",
        "user.anklume.managed_devices": "d,gone",
      },
      devices: {
        d: { type: "disk", path: "/old", source: "/s" },
        gone: { type: "disk", path: "/g" },
      },
      used_by: [],
    },
    {
      name: "unused",
      project: "001-a",
      description: "",
      config: { "user.anklume.infra": "001-x" },
      devices: {},
      used_by: [],
    },
    {
      name: "used",
      project: "001-a",
      description: "",
      config: { "user.anklume.infra": "001-x" },
      devices: {},
      used_by: ["/1.0/instances/i?project=001-a"],
    },
    {
      name: "fw",
      project: "001-a",
      description: "",
      config: { "user.anklume.infra": "001-x" },
      devices: {},
      used_by: [],
    },
    { name: "hand", project: "001-a", description: "", config: {}, devices: {}, used_by: [] },
    {
      name: "otherinfra",
      project: "001-a",
      description: "",
      config: { "user.anklume.infra": "002-y" },
      devices: {},
      used_by: [],
    },
    {
      name: "elsewhere",
      project: "001-b",
      description: "",
      config: { "user.anklume.infra": "001-x" },
      devices: {},
      used_by: [],
    },
  ];

  test("default profile drift, a new, a drifted and a bare custom profile, and each kind of orphan", () => {
    const plan = planProfiles(want, current, true);
    const step = (args: string[]) => `${args.join(" ")}`;
    expect(plan.before.map((s) => `${s.desc} | ${step(s.args ?? [])}`)).toEqual([
      "001-a/default: unset eth0 | profile device unset default eth0 security.mac_filtering --project 001-a",
      "001-a/default: add root | profile device add default root disk path=/ pool=fast --project 001-a",
      "001-a/fresh: create | profile create fresh --project 001-a --description New one",
      "001-a/fresh: set config | profile set fresh limits.cpu=2 user.anklume.infra=001-x user.anklume.managed_devices=gpu user.anklume.managed_keys=limits.cpu,user.anklume.infra --project 001-a",
      "001-a/fresh: add gpu | profile device add fresh gpu gpu --project 001-a",
      "001-a/old: set config | profile set old limits.cpu= limits.memory=1GiB user.anklume.managed_devices=d user.anklume.managed_keys=limits.memory,user.anklume.infra --project 001-a",
      "001-a/old: set d | profile device set old d path=/d --project 001-a",
      "001-a/old: remove gone | profile device remove old gone --project 001-a",
      "001-a/old: description | profile set old description Changed --property --project 001-a",
      "001-a/plain: create | profile create plain --project 001-a",
      "001-a/plain: set config | profile set plain user.anklume.infra=001-x user.anklume.managed_keys=user.anklume.infra --project 001-a",
    ]);
    expect(plan.changes).toEqual([
      "001-a/default: update device eth0: unset security.mac_filtering",
      "001-a/default: add device root",
      "001-a/fresh: create profile",
      "001-a/old: set limits.memory=1GiB (was 2GiB)",
      "001-a/old: unset limits.cpu (was 4)",
      "001-a/old: update device d: path=/d",
      "001-a/old: remove device gone",
      '001-a/old: description -> "Changed"',
      "001-a/plain: create profile",
      "001-a/unused: delete orphan profile (auto_cleanup)",
    ]);
    // fw is kept by name, hand and otherinfra are not this infra's, elsewhere is another project.
    expect(plan.orphans).toEqual([
      { kind: "profile", name: "unused", project: "001-a", protected: false, action: "deleted" },
      {
        kind: "profile",
        name: "used",
        project: "001-a",
        protected: false,
        action: "kept (in use)",
      },
    ]);
    expect(plan.after).toEqual([
      {
        desc: "001-a/unused: delete orphan profile",
        args: ["profile", "delete", "unused", "--project", "001-a"],
      },
    ]);
    expect(plan.perInstance).toEqual([]);
    expect(plan.warnings).toEqual([]);
  });
  test("without auto_cleanup the orphans are reported, none deleted", () => {
    const plan = planProfiles(want, current, false);
    expect(plan.orphans.map((o) => `${o.name} ${o.action}`)).toEqual([
      "unused reported",
      "used reported",
    ]);
    expect(plan.after).toEqual([]);
    expect(plan.changes.filter((c) => c.includes("orphan"))).toEqual([]);
  });
  test("a converged profile plans nothing", () => {
    const conv: ProfilesDesired = {
      infra: "i",
      pool: "default",
      nic_filtering: true,
      keep: [],
      domains: [
        {
          project: "p",
          bridge: "br",
          profiles: {
            c: {
              description: "D",
              config: { k: "v" },
              devices: { d: { type: "disk", path: "/d" } },
            },
          },
        },
      ],
    };
    const cur: CurrentProfile[] = [
      {
        name: "default",
        project: "p",
        description: "",
        config: {},
        devices: {
          eth0: {
            type: "nic",
            network: "br",
            name: "eth0",
            "security.mac_filtering": "true",
            "security.ipv4_filtering": "true",
            "security.ipv6_filtering": "true",
          },
          root: { type: "disk", pool: "default", path: "/" },
        },
        used_by: [],
      },
      {
        name: "c",
        project: "p",
        description: "D",
        config: {
          k: "v",
          "user.anklume.infra": "i",
          "user.anklume.managed_keys": "k,user.anklume.infra",
          "user.anklume.managed_devices": "d",
        },
        devices: { d: { type: "disk", path: "/d" } },
        used_by: [],
      },
    ];
    const plan = planProfiles(conv, cur, true);
    expect(plan.before).toEqual([]);
    expect(plan.changes).toEqual([]);
    expect(plan.orphans).toEqual([]);
  });
});

describe("planDomainOrphans, the whole plan (mutation survivors)", () => {
  const mark = { "user.anklume.infra": "i" };
  const cur: OrphanInputs = {
    projects: [
      { name: "001-z", config: mark },
      { name: "001-b", config: mark },
      { name: "001-a", config: mark },
      { name: "other", config: { "user.anklume.infra": "j" } },
    ],
    networks: [
      { name: "001-net-z", config: mark, used_by: ["/1.0/profiles/default?project=001-z"] },
      { name: "001-net-b", config: mark, used_by: ["/1.0/profiles/default?project=001-b"] },
      { name: "001-net-a", config: mark, used_by: [] },
      { name: "001-net-d", config: mark, used_by: ["/1.0/instances/v"] },
      { name: "hand", config: {}, used_by: [] },
    ],
    instances: [
      { name: "b1", project: "001-b", config: {} },
      { name: "b2", project: "001-b", config: { "security.protection.delete": "false" } },
      { name: "z1", project: "001-z", config: { "security.protection.delete": "true" } },
      { name: "z2", project: "001-z", config: {} },
      { name: "a1", project: "001-a", config: {} },
    ],
    images: [
      { fingerprint: "fb", project: "001-b" },
      { fingerprint: "fz", project: "001-z" },
    ],
    profiles: [
      { name: "default", project: "001-b" },
      { name: "custom", project: "001-b" },
      { name: "cz", project: "001-z" },
    ],
  };
  const want = { infra: "i", projects: ["001-a"], networks: ["001-net-a"] };

  test("with auto_cleanup: unprotected instances, images, profiles and the project go; a protected instance keeps its project and bridge", () => {
    const p = planDomainOrphans({ ...want, auto_cleanup: true }, cur);
    expect(p.orphans).toEqual([
      { kind: "instance", name: "b1", project: "001-b", protected: false, action: "deleted" },
      { kind: "instance", name: "b2", project: "001-b", protected: false, action: "deleted" },
      { kind: "project", name: "001-b", protected: false, action: "deleted" },
      {
        kind: "instance",
        name: "z1",
        project: "001-z",
        protected: true,
        action: "kept (protected)",
      },
      { kind: "instance", name: "z2", project: "001-z", protected: false, action: "deleted" },
      { kind: "project", name: "001-z", protected: true, action: "kept (protected)" },
      { kind: "network", name: "001-net-b", protected: false, action: "deleted" },
      { kind: "network", name: "001-net-d", protected: false, action: "kept (in use)" },
      { kind: "network", name: "001-net-z", protected: false, action: "kept (in use)" },
    ]);
    expect(p.after.map((s) => `${s.desc} | ${s.args?.join(" ")}`)).toEqual([
      "001-b/b1: delete orphan instance | delete b1 --project 001-b --force",
      "001-b/b2: delete orphan instance | delete b2 --project 001-b --force",
      "001-b: delete image | image delete fb --project 001-b",
      "001-b: delete profile custom | profile delete custom --project 001-b",
      "project 001-b: delete orphan | project delete 001-b",
      "001-z/z2: delete orphan instance | delete z2 --project 001-z --force",
      "bridge 001-net-b: delete orphan | network delete 001-net-b",
    ]);
    expect(p.changes).toEqual([
      "001-b/b1: delete orphan instance (auto_cleanup)",
      "001-b/b2: delete orphan instance (auto_cleanup)",
      "project 001-b: delete orphan project (auto_cleanup)",
      "001-z/z2: delete orphan instance (auto_cleanup)",
      "bridge 001-net-b: delete orphan bridge (auto_cleanup)",
    ]);
    expect(p.before).toEqual([]);
  });

  test("without auto_cleanup (absent or false): everything is reported, nothing deleted", () => {
    for (const w of [want, { ...want, auto_cleanup: false }]) {
      const p = planDomainOrphans(w as DomainOrphansDesired, cur);
      expect(p.orphans.map((o) => `${o.kind} ${o.name} ${o.protected} ${o.action}`)).toEqual([
        "instance b1 false reported",
        "instance b2 false reported",
        "project 001-b false reported",
        "instance z1 true reported",
        "instance z2 false reported",
        "project 001-z true reported",
        "network 001-net-b false reported",
        "network 001-net-d false reported",
        "network 001-net-z false reported",
      ]);
      expect(p.after).toEqual([]);
      expect(p.changes).toEqual([]);
    }
  });

  test("usedByProject reads the project of a used_by URL, default when absent", () => {
    expect(usedByProject("/1.0/instances/x?project=001-a")).toBe("001-a");
    expect(usedByProject("/1.0/instances/x?foo=1&project=p%20q&bar=2")).toBe("p q");
    expect(usedByProject("/1.0/instances/x")).toBe("default");
  });
});

describe("planProjects, the whole plan (mutation survivors)", () => {
  const feat = {
    "features.images": "true",
    "features.profiles": "true",
    "features.storage.volumes": "true",
  };
  test("create with the features and marker, mark an unmarked one, leave another infra's, fix descriptions, warn on features", () => {
    const p = planProjects(
      {
        infra: "i",
        features: { "features.networks": true },
        projects: [
          { name: "new", description: "" },
          { name: "unmarked", description: "U" },
          { name: "theirs", description: "" },
          { name: "mine", description: "" },
          { name: "feat", description: "" },
        ],
      },
      [
        { name: "unmarked", description: "U", config: { ...feat, "features.networks": "true" } },
        {
          name: "theirs",
          description: "T",
          config: { ...feat, "features.networks": "true", "user.anklume.infra": "other" },
        },
        {
          name: "mine",
          description: "",
          config: { ...feat, "features.networks": "true", "user.anklume.infra": "i" },
        },
        { name: "feat", description: "", config: { "user.anklume.infra": "i" } },
      ],
    );
    expect(p.before.map((s) => `${s.desc} | ${s.args?.join(" ")}`)).toEqual([
      "project new: create | project create new -c features.images=true -c features.networks=true -c features.profiles=true -c features.storage.volumes=true -c user.anklume.infra=i",
      "project unmarked: mark | project set unmarked user.anklume.infra=i",
      "project theirs: description | project set theirs description  --property",
    ]);
    expect(p.changes).toEqual([
      "project new: create",
      "project unmarked: set user.anklume.infra=i",
      'project theirs: description "T" -> ""',
    ]);
    expect(p.warnings).toEqual([
      'project theirs: belongs to infra "other", not "i"; left unmarked (rename a domain or the project_name to avoid sharing it)',
      "project feat: features.images is unset, anklume wants true; Incus only changes features on an empty project",
      "project feat: features.profiles is unset, anklume wants true; Incus only changes features on an empty project",
      "project feat: features.storage.volumes is unset, anklume wants true; Incus only changes features on an empty project",
      "project feat: features.networks is unset, anklume wants true; Incus only changes features on an empty project",
    ]);
    expect(p.after).toEqual([]);
    expect(p.orphans).toEqual([]);
  });
  test("the default features are v1's: images, profiles and volumes per project, networks shared", () => {
    const p = planProjects(
      { infra: "i", features: {}, projects: [{ name: "n", description: "D" }] },
      [],
    );
    expect(p.before[0]?.args).toEqual([
      "project",
      "create",
      "n",
      "-c",
      "features.images=true",
      "-c",
      "features.networks=false",
      "-c",
      "features.profiles=true",
      "-c",
      "features.storage.volumes=true",
      "-c",
      "user.anklume.infra=i",
      "--description",
      "D",
    ]);
    // A current project with networks unset matches the default "false".
    const same = planProjects(
      { infra: "i", features: {}, projects: [{ name: "n", description: "D" }] },
      [{ name: "n", description: "D", config: { ...feat, "user.anklume.infra": "i" } }],
    );
    expect(same.before).toEqual([]);
    expect(same.warnings).toEqual([]);
  });
});
