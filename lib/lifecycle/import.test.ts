import { describe, expect, test } from "bun:test";
import { parse } from "yaml";
import { type ImportState, importInfra, parseBridgeAddress, renderImport } from "./import.ts";

const M = "user.anklume.infra";
const feat = {
  "features.images": "true",
  "features.profiles": "true",
  "features.storage.volumes": "true",
};
const inst = (
  name: string,
  project: string,
  extra: Partial<ImportState["instances"][number]> = {},
): ImportState["instances"][number] => ({
  name,
  project,
  status: "Running",
  type: "container",
  config: {
    "volatile.base_image": "fp1",
    "volatile.uuid": "u",
    "security.protection.delete": "true",
  },
  devices: {},
  expanded_devices: {},
  profiles: ["default"],
  ...extra,
});
const defProfile = (project: string, net: string) => ({
  name: "default",
  project,
  description: "",
  config: {},
  devices: {
    eth0: { type: "nic", network: net, name: "eth0" },
    root: { type: "disk", path: "/", pool: "default" },
  },
});
const bridge = (name: string, addr: string, nat = "false") => ({
  name,
  type: "bridge",
  managed: true,
  config: { "ipv4.address": addr, "ipv4.nat": nat },
});

const handMade = (): ImportState => ({
  projects: [
    { name: "default", description: "", config: {} },
    { name: "lab", description: "Lab work", config: feat },
    { name: "web", description: "", config: { "features.images": "false" } },
    { name: "empty", description: "", config: feat },
  ],
  networks: [bridge("net-lab", "10.50.3.254/24"), bridge("webbr", "10.50.7.1/24", "true")],
  profiles: [
    defProfile("lab", "net-lab"),
    defProfile("web", "webbr"),
    {
      name: "tuned",
      project: "lab",
      description: "",
      config: { "limits.cpu": "1", [M]: "x" },
      devices: {},
    },
  ],
  instances: [
    inst("dev", "lab", {
      config: {
        "volatile.base_image": "fp1",
        "volatile.uuid": "u1",
        "image.os": "busybox",
        "security.protection.delete": "true",
        "boot.autostart": "true",
        "boot.autostart.priority": "10",
        "snapshots.schedule": "0 3 * * *",
        "user.note": "hello",
        "user.anklume.managed_keys": "x",
      },
      devices: {
        eth0: { type: "nic", network: "net-lab", name: "eth0", "ipv4.address": "10.50.3.10" },
      },
      profiles: ["default", "tuned"],
    }),
    inst("scratch", "lab", { config: { "volatile.base_image": "fp2" }, status: "Stopped" }),
    inst("site", "web", { config: { "volatile.base_image": "fp1" } }),
    inst("stray", "default"),
  ],
  images: [
    { fingerprint: "fp1", project: "default", aliases: [{ name: "anklume-busybox" }] },
    { fingerprint: "fp2", project: "lab", aliases: [] },
  ],
});

describe("importInfra on a hand-made host (no prefix, no markers)", () => {
  const r = importInfra(handMade(), "000-");
  const infra = r.infra as {
    project_name: string;
    global: Record<string, unknown>;
    domains: Record<
      string,
      { machines: Record<string, Record<string, unknown>> } & Record<string, unknown>
    >;
  };

  test("one domain per project with instances; names kept as they are (nesting_prefix false)", () => {
    expect(Object.keys(infra.domains)).toEqual(["lab", "web"]);
    expect(infra.global).toEqual({
      base_subnet: "10.50",
      default_os_image: "anklume-busybox",
      nesting_prefix: false,
    });
    expect(infra.project_name).toBe("imported-infra");
    expect(r.domains).toBe(2);
    expect(r.machines).toBe(3);
  });

  test("the bridge gives subnet_id; description and custom profiles are kept (anklume's markers dropped)", () => {
    const lab = infra.domains.lab as Record<string, unknown>;
    expect(lab.subnet_id).toBe(3);
    expect(lab.description).toBe("Lab work");
    expect(lab.profiles).toEqual({ tuned: { config: { "limits.cpu": "1" } } });
  });

  test("a machine keeps type, static IP, protection, boot and snapshot keys, other config, profiles", () => {
    expect(infra.domains.lab?.machines.dev).toEqual({
      ip: "10.50.3.10",
      profiles: ["default", "tuned"],
      boot_autostart: true,
      boot_priority: 10,
      snapshots_schedule: "0 3 * * *",
      config: { "user.note": "hello" },
    });
  });

  test("an unprotected machine is ephemeral; an image without alias and a stopped instance are noted", () => {
    expect(infra.domains.lab?.machines.scratch).toEqual({ ephemeral: true });
    const note =
      r.notes.get(["domains", "lab", "machines", "scratch"].join("\u0000"))?.join(" ") ?? "";
    expect(note).toContain("has no alias");
    expect(note).toContain("Stopped: the apply starts it");
  });

  test("what breaks a convention is written down: bridge name, gateway, features, default project, empty projects, NAT", () => {
    const web = r.notes.get(["domains", "web"].join("\u0000"))?.join("\n") ?? "";
    expect(web).toContain("gateway at .1");
    expect(web).toContain("bridge webbr is not named as anklume names it (net-web)");
    expect(web).toContain("features.images");
    const top = r.notes.get("")?.join("\n") ?? "";
    expect(top).toContain("Not imported: stray (project default)");
    expect(top).toContain("projects empty");
    expect(top).toContain("project_name");
    expect(top).toContain("NAT=false");
  });

  test("renderImport writes YAML that reads back to the same data, with the notes as comments", () => {
    const text = renderImport(r, ["header line"]);
    expect(text.startsWith("# header line\n")).toBe(true);
    expect(text).toContain("# Imported instance scratch; guessed:");
    expect(text).toContain('base_subnet: "10.50"');
    expect(parse(text, { version: "1.1" })).toEqual(r.infra);
  });
});

describe("importInfra of an anklume-made host", () => {
  const s: ImportState = {
    projects: [
      { name: "001-pro", description: "", config: { ...feat, [M]: "001-ws" } },
      { name: "001-perso", description: "", config: { ...feat, [M]: "001-ws" } },
    ],
    networks: [
      bridge("001-net-pro", "10.100.1.254/24"),
      bridge("001-net-perso", "10.100.2.254/24"),
    ],
    profiles: [defProfile("001-pro", "001-net-pro"), defProfile("001-perso", "001-net-perso")],
    instances: [inst("001-pro-dev", "001-pro"), inst("001-perso-web", "001-perso")],
    images: [{ fingerprint: "fp1", project: "001-pro", aliases: [{ name: "images:debian/13" }] }],
  };

  test("the prefix is stripped and nesting_prefix stays on; project_name comes from the marker", () => {
    const r = importInfra(s, "001-");
    const infra = r.infra as {
      project_name: string;
      global: Record<string, unknown>;
      domains: Record<string, unknown>;
    };
    expect(infra.project_name).toBe("ws");
    expect(infra.global.nesting_prefix).toBe(true);
    expect(Object.keys(infra.domains)).toEqual(["perso", "pro"]);
    expect(infra.domains.pro).toEqual({ subnet_id: 1, machines: { "pro-dev": {} } });
    expect(r.notes.get(["domains", "pro"].join("\u0000"))).toBeUndefined();
  });

  test("at another level the names are kept whole (nesting_prefix false)", () => {
    const r = importInfra(s, "002-");
    expect((r.infra.global as Record<string, unknown>).nesting_prefix).toBe(false);
    expect(Object.keys(r.infra.domains as object)).toEqual(["001-perso", "001-pro"]);
  });

  test("--project and --infra-id narrow the import", () => {
    expect(importInfra(s, "001-", { projects: ["001-pro"] }).domains).toBe(1);
    expect(importInfra(s, "001-", { infraId: "nope" }).domains).toBe(0);
  });

  test("two projects on the same subnet: the second gets a free id, noted", () => {
    const t = {
      ...s,
      networks: [
        bridge("001-net-pro", "10.100.1.254/24"),
        bridge("001-net-perso", "10.100.1.254/24"),
      ],
    };
    const r = importInfra(t, "001-");
    const d = r.infra.domains as Record<string, { subnet_id: number }>;
    expect(d.perso?.subnet_id).toBe(1);
    expect(d.pro?.subnet_id).toBe(0);
    expect(r.notes.get(["domains", "pro"].join("\u0000"))?.join()).toContain(
      "subnet_id 0 is a guess",
    );
  });
});

test("parseBridgeAddress reads an IPv4 CIDR, null otherwise", () => {
  expect(parseBridgeAddress("10.1.2.254/24")).toEqual({ base: "10.1", id: 2, host: 254, len: 24 });
  expect(parseBridgeAddress("none")).toBeNull();
  expect(parseBridgeAddress(undefined)).toBeNull();
});
