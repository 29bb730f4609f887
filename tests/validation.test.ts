/**
 * One test per validation rule of generator-contract §4 (and the stricter rules
 * of decision 2): each checks that the message names the file, the line, the
 * YAML path and a fix, that the exit code is 1, and that nothing was written.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanup, runInProcess, tree, workspace } from "./gen-helpers.ts";

afterAll(cleanup);

const HEAD = `project_name: t
global:
  base_subnet: "10.100"
`;
const PRO = `domains:
  pro:
    subnet_id: 1
    machines:
      pro-dev:
        ip: "10.100.1.10"
`;

interface Case {
  rule: string;
  yaml: string;
  /** The YAML path printed in the message. */
  path: string;
  /** A fragment of the message. */
  msg: string | RegExp;
  /** The first line containing this text is the line the message must give. */
  at: string;
  /** Which occurrence of `at` (default 1). */
  nth?: number;
  context?: Record<string, string>;
}

const cases: Case[] = [
  {
    // Matrix: GV-001
    rule: "1: required top-level keys",
    yaml: `${HEAD}`,
    path: "domains",
    msg: 'missing required key "domains"',
    at: "project_name",
  },
  {
    rule: "2: nesting_prefix is a boolean",
    yaml: `${HEAD}  nesting_prefix: "yes"\n${PRO}`,
    path: "global.nesting_prefix",
    msg: "expected true or false",
    at: "nesting_prefix",
  },
  {
    rule: "3: gpu_policy",
    yaml: `${HEAD}  gpu_policy: all\n${PRO}`,
    path: "global.gpu_policy",
    msg: '"exclusive" or "shared"',
    at: "gpu_policy",
  },
  {
    rule: "4: firewall_mode",
    yaml: `${HEAD}  firewall_mode: router\n${PRO}`,
    path: "global.firewall_mode",
    msg: '"host" or "vm"',
    at: "firewall_mode",
  },
  {
    rule: "5: ai_access_policy",
    yaml: `${HEAD}  ai_access_policy: closed\n${PRO}`,
    path: "global.ai_access_policy",
    msg: '"exclusive" or "open"',
    at: "ai_access_policy",
  },
  {
    // Matrix: GV-002
    rule: "6: domain name format",
    yaml: `${HEAD}domains:\n  Pro_1:\n    subnet_id: 1\n`,
    path: "domains.Pro_1",
    msg: 'invalid domain name "Pro_1"',
    at: "Pro_1",
  },
  {
    // Matrix: GV-002
    rule: "6b: domain name without trailing hyphen",
    yaml: `${HEAD}domains:\n  pro-:\n    subnet_id: 1\n`,
    path: "domains.pro-",
    msg: "invalid domain name",
    at: "pro-:",
  },
  {
    rule: "7: subnet_id present",
    yaml: `${HEAD}domains:\n  pro:\n    description: x\n`,
    path: "domains.pro.subnet_id",
    msg: 'missing required key "subnet_id"',
    at: "  pro:",
  },
  {
    rule: "7b: subnet_id range",
    yaml: `${HEAD}domains:\n  pro:\n    subnet_id: 300\n`,
    path: "domains.pro.subnet_id",
    msg: "out of range",
    at: "300",
  },
  {
    // Matrix: GV-010
    rule: "7b: subnet_id is never a boolean",
    yaml: `${HEAD}domains:\n  pro:\n    subnet_id: true\n`,
    path: "domains.pro.subnet_id",
    msg: "got the boolean true",
    at: "subnet_id: true",
  },
  {
    rule: "7b: subnet_id quoted",
    yaml: `${HEAD}domains:\n  pro:\n    subnet_id: "4"\n`,
    path: "domains.pro.subnet_id",
    msg: 'got the string "4"',
    at: '"4"',
  },
  {
    // Matrix: GV-003
    rule: "7c: subnet_id unique",
    yaml: `${HEAD}domains:\n  pro:\n    subnet_id: 1\n  perso:\n    subnet_id: 1\n`,
    path: "domains.perso.subnet_id",
    msg: 'already used by domain "pro"',
    at: "subnet_id: 1",
    nth: 2,
  },
  {
    rule: "8: domain ephemeral is a boolean",
    yaml: `${HEAD}domains:\n  pro:\n    subnet_id: 1\n    ephemeral: 0\n`,
    path: "domains.pro.ephemeral",
    msg: "expected true or false",
    at: "ephemeral: 0",
  },
  {
    rule: "9: trust_level",
    yaml: `${HEAD}domains:\n  pro:\n    subnet_id: 1\n    trust_level: Trusted\n`,
    path: "domains.pro.trust_level",
    msg: '"trusted"',
    at: "Trusted",
  },
  {
    // Matrix: GV-004
    rule: "10: machine names are global",
    yaml: `${HEAD}${PRO}  perso:\n    subnet_id: 2\n    machines:\n      pro-dev: {}\n`,
    path: "domains.perso.machines.pro-dev",
    msg: 'already defined in domain "pro"',
    at: "      pro-dev: {}",
  },
  {
    // Matrix: GV-005
    rule: "10b: machine name format (decision 2)",
    yaml: `${HEAD}domains:\n  pro:\n    subnet_id: 1\n    machines:\n      Dev_1: {}\n`,
    path: "domains.pro.machines.Dev_1",
    msg: 'invalid machine name "Dev_1"',
    at: "Dev_1",
  },
  {
    // Matrix: GV-005
    rule: "10c: machine name length with prefix (decision 2)",
    yaml: `${HEAD}domains:\n  pro:\n    subnet_id: 1\n    machines:\n      ${"a".repeat(61)}: {}\n`,
    path: `domains.pro.machines.${"a".repeat(61)}`,
    msg: 'is too long: Incus names are at most 63 characters with the "001-" prefix',
    at: "aaaa",
  },
  {
    rule: "10d: domain name length with prefix (audit 7.7)",
    yaml: `${HEAD}domains:\n  ${"d".repeat(60)}:\n    subnet_id: 1\n`,
    path: `domains.${"d".repeat(60)}`,
    msg: `domain name "${"d".repeat(60)}" is too long for an Incus name`,
    at: "dddd",
  },
  {
    rule: "10e: profile name format (audit 7.7)",
    yaml: `${HEAD}domains:\n  pro:\n    subnet_id: 1\n    profiles:\n      -bad: {}\n`,
    path: "domains.pro.profiles.-bad",
    msg: 'invalid profile name "-bad"',
    at: "-bad",
  },
  {
    rule: "26c: host_reserve percentage is whole (audit 7.7)",
    yaml: `${HEAD}  resource_policy:\n    host_reserve: {cpu: "2.5%"}\n${PRO}`,
    path: "global.resource_policy.host_reserve.cpu",
    msg: '"2.5%" is not a whole percentage',
    at: "2.5%",
  },
  {
    rule: "11: type",
    yaml: `${HEAD}${PRO}        type: docker\n`,
    path: "domains.pro.machines.pro-dev.type",
    msg: '"lxc" or "vm"',
    at: "docker",
  },
  {
    // Matrix: GV-2-003
    rule: "12: privileged LXC without a VM",
    yaml: `${HEAD}${PRO}        config:\n          security.privileged: "true"\n`,
    path: 'config["security.privileged"]',
    msg: "forbidden",
    at: "security.privileged",
    context: { vm_nested: "false" },
  },
  {
    // Matrix: GV-006
    rule: "13: IPs are unique",
    yaml: `${HEAD}${PRO}      pro-web:\n        ip: "10.100.1.10"\n`,
    path: "domains.pro.machines.pro-web.ip",
    msg: 'already used by machine "pro-dev"',
    at: 'ip: "10.100.1.10"',
    nth: 2,
  },
  {
    // Matrix: GV-007
    rule: "13b: IP inside the domain's subnet",
    yaml: `${HEAD}domains:\n  pro:\n    subnet_id: 1\n    machines:\n      pro-dev:\n        ip: "10.100.2.10"\n`,
    path: "domains.pro.machines.pro-dev.ip",
    msg: 'not in domain "pro"\'s subnet 10.100.1.0/24',
    at: "10.100.2.10",
  },
  {
    // Matrix: GV-008
    rule: "13c: IP is parsed (decision 2)",
    yaml: `${HEAD}domains:\n  pro:\n    subnet_id: 1\n    machines:\n      pro-dev:\n        ip: "10.100.1.300"\n`,
    path: "domains.pro.machines.pro-dev.ip",
    msg: "not a valid IPv4 address",
    at: "10.100.1.300",
  },
  {
    // Matrix: GV-008
    rule: "13d: IP host part 1-253 (decision 2)",
    yaml: `${HEAD}domains:\n  pro:\n    subnet_id: 1\n    machines:\n      pro-dev:\n        ip: "10.100.1.254"\n`,
    path: "domains.pro.machines.pro-dev.ip",
    msg: "gateway",
    at: "10.100.1.254",
  },
  {
    rule: "13e: IP is a string",
    yaml: `${HEAD}domains:\n  pro:\n    subnet_id: 1\n    machines:\n      pro-dev:\n        ip: 10\n`,
    path: "domains.pro.machines.pro-dev.ip",
    msg: "got the number 10",
    at: "ip: 10",
  },
  {
    rule: "14: machine ephemeral is a boolean",
    yaml: `${HEAD}${PRO}        ephemeral: "no"\n`,
    path: "domains.pro.machines.pro-dev.ephemeral",
    msg: "expected true or false",
    at: 'ephemeral: "no"',
  },
  {
    // Matrix: GV-015
    rule: "15: profiles exist in the domain",
    yaml: `${HEAD}${PRO}        profiles: [default, gpuu]\n`,
    path: "domains.pro.machines.pro-dev.profiles[1]",
    msg: 'profile "gpuu" is not defined in domain "pro"',
    at: "gpuu",
  },
  {
    rule: "16: services are mappings",
    yaml: `${HEAD}${PRO}        services: [clip]\n`,
    path: "domains.pro.machines.pro-dev.services[0]",
    msg: 'expected a mapping with name and tool, got the string "clip"',
    at: "services",
  },
  {
    rule: "16b: service name unique",
    yaml: `${HEAD}${PRO}        services:\n          - {name: a, tool: gpg_sign}\n          - {name: a, tool: gpg_sign}\n`,
    path: "services[1].name",
    msg: 'duplicate service name "a"',
    at: "{name: a",
    nth: 2,
  },
  {
    rule: "16c: service tool known",
    yaml: `${HEAD}${PRO}        services:\n          - {name: a, tool: print}\n`,
    path: "services[0].tool",
    msg: "gpg_sign",
    at: "tool: print",
  },
  {
    rule: "17: boot_autostart is a boolean",
    yaml: `${HEAD}${PRO}        boot_autostart: 1\n`,
    path: "domains.pro.machines.pro-dev.boot_autostart",
    msg: "expected true or false",
    at: "boot_autostart",
  },
  {
    rule: "18: boot_priority 0-100",
    yaml: `${HEAD}${PRO}        boot_priority: 101\n`,
    path: "domains.pro.machines.pro-dev.boot_priority",
    msg: "out of range",
    at: "boot_priority",
  },
  {
    // Matrix: GV-010
    rule: "18b: boot_priority is never a boolean (decision 2)",
    yaml: `${HEAD}${PRO}        boot_priority: false\n`,
    path: "domains.pro.machines.pro-dev.boot_priority",
    msg: "boolean false",
    at: "boot_priority",
  },
  {
    rule: "19: snapshots_schedule has 5 fields",
    yaml: `${HEAD}${PRO}        snapshots_schedule: "0 2 * *"\n`,
    path: "snapshots_schedule",
    msg: "5 fields",
    at: "snapshots_schedule",
  },
  {
    rule: "20: snapshots_expiry is a duration",
    yaml: `${HEAD}${PRO}        snapshots_expiry: 30days\n`,
    path: "snapshots_expiry",
    msg: "not a duration",
    at: "snapshots_expiry",
  },
  {
    rule: "21: weight is a positive integer",
    yaml: `${HEAD}${PRO}        weight: 0\n`,
    path: "domains.pro.machines.pro-dev.weight",
    msg: "the number 0 is out of range: weight must be a positive integer",
    at: "weight",
  },
  {
    // Matrix: GV-010
    rule: "21b: weight is never a boolean",
    yaml: `${HEAD}${PRO}        weight: true\n`,
    path: "domains.pro.machines.pro-dev.weight",
    msg: "boolean true",
    at: "weight",
  },
  {
    rule: "22: service consumers are machines",
    yaml: `${HEAD}${PRO}        services:\n          - {name: a, tool: gpg_sign, consumers: [pro-dve]}\n`,
    path: "domains.pro.machines.pro-dev.services[0].consumers[0]",
    msg: 'consumer "pro-dve" is not a known machine',
    at: "consumers",
  },
  {
    rule: "23: exclusive GPU",
    yaml: `${HEAD}domains:\n  pro:\n    subnet_id: 1\n    profiles:\n      gpu:\n        devices: {gpu: {type: gpu}}\n    machines:\n      a: {gpu: true}\n      b: {profiles: [gpu]}\n`,
    path: "domains.pro.machines.b",
    msg: "2 instances have GPU access: a, b",
    at: "b: {profiles",
  },
  {
    rule: "24: policies are mappings",
    yaml: `${HEAD}${PRO}network_policies:\n  - pro\n`,
    path: "network_policies[0]",
    msg: "expected a mapping",
    at: "  - pro",
  },
  {
    rule: "24b: policy from is required",
    yaml: `${HEAD}${PRO}network_policies:\n  - {to: pro}\n`,
    path: "network_policies[0].from",
    msg: 'missing required key "from"',
    at: "{to: pro}",
  },
  {
    rule: "24b: policy endpoints are known",
    yaml: `${HEAD}${PRO}network_policies:\n  - {from: host, to: proo}\n`,
    path: "network_policies[0].to",
    msg: '"proo" is not a known domain, machine',
    at: "proo",
  },
  {
    rule: "24c: ports 1-65535",
    yaml: `${HEAD}${PRO}network_policies:\n  - {from: host, to: pro, ports: [22, 70000]}\n`,
    path: "network_policies[0].ports[1]",
    msg: "the number 70000 is out of range: ports[1] must be a port number from 1 to 65535",
    at: "70000",
  },
  {
    rule: "24c: a quoted port is rejected",
    yaml: `${HEAD}${PRO}network_policies:\n  - {from: host, to: pro, ports: ["443"]}\n`,
    path: "network_policies[0].ports",
    msg: "expected the word all or a list of port numbers from 1 to 65535, e.g. [22, 443], got a list",
    at: '"443"',
  },
  {
    rule: "24d: protocol",
    yaml: `${HEAD}${PRO}network_policies:\n  - {from: host, to: pro, protocol: icmp}\n`,
    path: "network_policies[0].protocol",
    msg: '"tcp" or "udp"',
    at: "icmp",
  },
  {
    // Matrix: GV-3-002
    rule: "25: ai_access_default required",
    yaml: `${HEAD}  ai_access_policy: exclusive\n${PRO}  ai-tools:\n    subnet_id: 4\n`,
    path: "global.ai_access_policy",
    msg: "ai_access_default is required",
    at: "ai_access_policy",
  },
  {
    // Matrix: GV-3-002
    rule: "25: ai_access_default is not ai-tools",
    yaml: `${HEAD}  ai_access_policy: exclusive\n  ai_access_default: ai-tools\n${PRO}  ai-tools:\n    subnet_id: 4\n`,
    path: "global.ai_access_default",
    msg: "cannot be 'ai-tools'",
    at: "ai_access_default",
  },
  {
    // Matrix: GV-3-002
    rule: "25: ai_access_default is a known domain",
    yaml: `${HEAD}  ai_access_policy: exclusive\n  ai_access_default: proo\n${PRO}  ai-tools:\n    subnet_id: 4\n`,
    path: "global.ai_access_default",
    msg: '"proo" is not a known domain',
    at: "ai_access_default",
  },
  {
    rule: "25b: ai-tools exists",
    yaml: `${HEAD}  ai_access_policy: exclusive\n  ai_access_default: pro\n${PRO}`,
    path: "global.ai_access_policy",
    msg: "no 'ai-tools' domain",
    at: "ai_access_policy",
  },
  {
    rule: "25c: one policy to ai-tools",
    yaml: `${HEAD}  ai_access_policy: exclusive\n  ai_access_default: pro\n${PRO}  ai-tools:\n    subnet_id: 4\nnetwork_policies:\n  - {from: pro, to: ai-tools}\n  - {from: host, to: ai-tools}\n`,
    path: "network_policies",
    msg: "2 network_policies target ai-tools",
    at: "network_policies",
  },
  {
    rule: "26: resource_policy false is rejected",
    yaml: `${HEAD}  resource_policy: false\n${PRO}`,
    path: "global.resource_policy",
    msg: "true or a mapping",
    at: "resource_policy",
  },
  {
    rule: "26b: resource_policy.mode",
    yaml: `${HEAD}  resource_policy: {mode: fair}\n${PRO}`,
    path: "global.resource_policy.mode",
    msg: '"proportional" or "equal"',
    at: "resource_policy",
  },
  {
    rule: "26b: resource_policy.cpu_mode",
    yaml: `${HEAD}  resource_policy: {cpu_mode: cores}\n${PRO}`,
    path: "global.resource_policy.cpu_mode",
    msg: '"allowance" or "count"',
    at: "resource_policy",
  },
  {
    rule: "26b: resource_policy.memory_enforce",
    yaml: `${HEAD}  resource_policy: {memory_enforce: strict}\n${PRO}`,
    path: "global.resource_policy.memory_enforce",
    msg: '"soft" or "hard"',
    at: "resource_policy",
  },
  {
    rule: "26c: overcommit is a boolean",
    yaml: `${HEAD}  resource_policy: {overcommit: maybe}\n${PRO}`,
    path: "global.resource_policy.overcommit",
    msg: "expected true or false",
    at: "resource_policy",
  },
  {
    rule: "26d: host_reserve is a mapping",
    yaml: `${HEAD}  resource_policy: {host_reserve: 20}\n${PRO}`,
    path: "global.resource_policy.host_reserve",
    msg: "expected a mapping",
    at: "resource_policy",
  },
  {
    rule: "26e: host_reserve percentage 1-99",
    yaml: `${HEAD}  resource_policy: {host_reserve: {cpu: "150%"}}\n${PRO}`,
    path: "global.resource_policy.host_reserve.cpu",
    msg: "percentage must be 1-99",
    at: "resource_policy",
  },
  {
    rule: "26e: host_reserve cpu is not a bare string",
    yaml: `${HEAD}  resource_policy: {host_reserve: {cpu: "2"}}\n${PRO}`,
    path: "global.resource_policy.host_reserve.cpu",
    msg: "must be 'N%' or a positive number",
    at: "resource_policy",
  },
  {
    rule: "26e: host_reserve memory size",
    yaml: `${HEAD}  resource_policy: {host_reserve: {memory: lots}}\n${PRO}`,
    path: "global.resource_policy.host_reserve.memory",
    msg: "not a memory size",
    at: "resource_policy",
  },
  {
    rule: "26e: host_reserve positive",
    yaml: `${HEAD}  resource_policy: {host_reserve: {memory: -1}}\n${PRO}`,
    path: "global.resource_policy.host_reserve.memory",
    msg: "must be positive",
    at: "resource_policy",
  },
  {
    // Matrix: GV-012
    rule: "decision 2: unknown keys name the closest known key",
    yaml: `${HEAD}domains:\n  pro:\n    subnet_idd: 1\n`,
    path: "domains.pro.subnet_idd",
    msg: 'unknown key "subnet_idd"',
    at: "subnet_idd",
  },
  {
    // Matrix: GV-011
    rule: "decision 2: an unquoted base_subnet says to quote it",
    yaml: `project_name: t\nglobal:\n  base_subnet: 10.100\n${PRO}`,
    path: "global.base_subnet",
    msg: "number 10.1",
    at: "base_subnet",
  },
  {
    rule: "decision 2: base_subnet is two octets",
    yaml: `project_name: t\nglobal:\n  base_subnet: "10.300"\n${PRO}`,
    path: "global.base_subnet",
    msg: "first two octets",
    at: "base_subnet",
  },
  {
    // Matrix: GV-2-004
    rule: "6.1: firewall_mode vm needs an anklume domain",
    yaml: `${HEAD}  firewall_mode: vm\n${PRO}`,
    path: "global.firewall_mode",
    msg: "no 'anklume' domain",
    at: "firewall_mode",
  },
  {
    // Matrix: GV-2-004
    rule: "6.1: sys-firewall's .253 collides with a machine",
    yaml: `${HEAD}  firewall_mode: vm\ndomains:\n  anklume:\n    subnet_id: 0\n    machines:\n      admin:\n        ip: "10.100.0.253"\n`,
    path: "sys-firewall.ip",
    msg: 'already used by machine "admin"',
    at: "firewall_mode",
  },
  {
    // Matrix: GV-013
    rule: "decision 3: a domain that is null",
    yaml: `${HEAD}domains:\n  pro:\n`,
    path: "domains.pro",
    msg: "got null",
    at: "  pro:",
  },
  {
    // Matrix: GV-013
    rule: "decision 3: a machine that is null",
    yaml: `${HEAD}domains:\n  pro:\n    subnet_id: 1\n    machines:\n      m2:\n`,
    path: "domains.pro.machines.m2",
    msg: "got null",
    at: "m2:",
  },
  {
    // Matrix: GV-013
    rule: "decision 3: a top-level list",
    yaml: "- a\n- b\n",
    path: "(top level)",
    msg: "must be a mapping",
    at: "- a",
  },
  {
    // Matrix: GV-014
    rule: "YAML: a duplicate key is an error, not silently replaced",
    yaml: `${HEAD}domains:\n  pro:\n    subnet_id: 1\n    subnet_id: 2\n`,
    path: "(top level)",
    msg: "appears twice",
    at: "subnet_id: 2",
  },
  {
    // Matrix: GV-014
    rule: "YAML: a syntax error",
    yaml: `${HEAD}domains:\n  pro:\n    subnet_id: 1: 2\n`,
    path: "(top level)",
    msg: "cannot read YAML",
    at: "subnet_id: 1: 2",
  },
  // Issue 9: defects of the bad-input campaign (../shared/reviews/bad-input-campaign-4f4f8dd.md).
  {
    rule: "D1: a domain named prototype is checked like any other",
    yaml: `${HEAD}domains:\n  prototype:\n    subnet_id: "5; touch pwned"\n`,
    path: "domains.prototype.subnet_id",
    msg: 'got the string "5; touch pwned"',
    at: "5; touch",
  },
  {
    rule: "D1: a machine named constructor is checked like any other",
    yaml: `${HEAD}domains:\n  pro:\n    subnet_id: 1\n    machines:\n      constructor:\n        type: banana\n`,
    path: "domains.pro.machines.constructor.type",
    msg: '"lxc" or "vm"',
    at: "banana",
  },
  {
    rule: "D1: an unknown key named constructor is refused",
    yaml: `${HEAD}${PRO}        constructor: 1\n`,
    path: "domains.pro.machines.pro-dev.constructor",
    msg: 'unknown key "constructor"',
    at: "constructor",
  },
  {
    rule: "D1: a config key named __proto__ holds a scalar like any other",
    yaml: `${HEAD}${PRO}        config:\n          __proto__: {polluted: "yes"}\n`,
    path: "config.__proto__",
    msg: "got a mapping",
    at: "__proto__",
  },
  {
    rule: "D2: domains is a mapping, not a list",
    yaml: `${HEAD}domains:\n  - subnet_id: 1\n`,
    path: "domains",
    msg: "expected a mapping of domain names to their settings, got a list",
    at: "- subnet_id",
  },
  {
    rule: "D2: machines is a mapping, not a list",
    yaml: `${HEAD}domains:\n  pro:\n    subnet_id: 1\n    machines:\n      - ip: "10.100.1.10"\n`,
    path: "domains.pro.machines",
    msg: "got a list",
    at: "- ip",
  },
  {
    rule: "D2: a machine is a mapping, not a list",
    yaml: `${HEAD}domains:\n  pro:\n    subnet_id: 1\n    machines:\n      m1: []\n`,
    path: "domains.pro.machines.m1",
    msg: "got a list",
    at: "m1",
  },
  {
    rule: "D2: domain profiles are a mapping, not a list",
    yaml: `${HEAD}domains:\n  pro:\n    subnet_id: 1\n    profiles: [gpu]\n`,
    path: "domains.pro.profiles",
    msg: "expected a mapping of profile names to their settings, got a list",
    at: "profiles",
  },
  {
    rule: "D2: config is a mapping, not a list",
    yaml: `${HEAD}${PRO}        config: ["security.privileged=true"]\n`,
    path: "domains.pro.machines.pro-dev.config",
    msg: "got a list",
    at: "config",
  },
  {
    rule: "D2: a device is a mapping, not a list",
    yaml: `${HEAD}${PRO}        devices:\n          gpu: [1]\n`,
    path: "devices.gpu",
    msg: "got a list",
    at: "gpu",
  },
  {
    rule: "D3: a domain cannot be named all (group_vars/all.yml holds the globals)",
    yaml: `${HEAD}domains:\n  all:\n    subnet_id: 2\n`,
    path: "domains.all",
    msg: '"all" cannot be a domain name: it is reserved',
    at: "  all:",
  },
  {
    rule: "D3: a domain cannot be named ungrouped",
    yaml: `${HEAD}domains:\n  ungrouped:\n    subnet_id: 2\n`,
    path: "domains.ungrouped",
    msg: "reserved",
    at: "ungrouped:",
  },
  {
    rule: "D3: a machine cannot be named localhost",
    yaml: `${HEAD}domains:\n  pro:\n    subnet_id: 1\n    machines:\n      localhost: {}\n`,
    path: "domains.pro.machines.localhost",
    msg: '"localhost" cannot be a machine name',
    at: "localhost",
  },
  {
    rule: "D3: a machine cannot be named all",
    yaml: `${HEAD}domains:\n  pro:\n    subnet_id: 1\n    machines:\n      all: {}\n`,
    path: "domains.pro.machines.all",
    msg: "reserved",
    at: "all: {}",
  },
  {
    rule: "D6: a description cannot hold the end marker of the managed block",
    yaml: `${HEAD}${PRO}        description: "see # === END MANAGED === notes"\n`,
    path: "domains.pro.machines.pro-dev.description",
    msg: '"# === END MANAGED ==="',
    at: "see #",
  },
  {
    rule: "D6: a config value cannot hold the begin marker",
    yaml: `${HEAD}${PRO}        config:\n          user.note: "# === MANAGED BY infra.yml ==="\n`,
    path: 'config["user.note"]',
    msg: "MANAGED BY infra.yml",
    at: "user.note",
  },
  {
    rule: "D6: a domain description cannot hold a marker",
    yaml: `${HEAD}domains:\n  pro:\n    subnet_id: 1\n    description: "x # === END MANAGED ==="\n`,
    path: "domains.pro.description",
    msg: "marker",
    at: "description",
  },
  {
    rule: "D8: a domain cannot be named host (policies mean the physical host)",
    yaml: `${HEAD}${PRO}  host:\n    subnet_id: 2\nnetwork_policies:\n  - {from: host, to: pro, ports: [22]}\n`,
    path: "domains.host",
    msg: '"host" cannot be a domain name',
    at: "  host:",
  },
  {
    rule: "D8: a machine cannot be named host",
    yaml: `${HEAD}domains:\n  pro:\n    subnet_id: 1\n    machines:\n      host: {}\n`,
    path: "domains.pro.machines.host",
    msg: "physical host",
    at: "host: {}",
  },
  {
    rule: "D9: a service entry refuses unknown keys and names the closest one",
    yaml: `${HEAD}${PRO}        services:\n          - {name: clip, tool: clipboard_get, consumerz: [pro-dev]}\n`,
    path: "services[0].consumerz",
    msg: 'unknown key "consumerz"',
    at: "consumerz",
  },
  {
    rule: "D10: base_subnet is not in the loopback range",
    yaml: `project_name: t\nglobal:\n  base_subnet: "127.0"\n${PRO.replaceAll("10.100", "127.0")}`,
    path: "global.base_subnet",
    msg: "loopback",
    at: "base_subnet",
  },
  {
    rule: "D10: base_subnet is not multicast",
    yaml: `project_name: t\nglobal:\n  base_subnet: "224.0"\n${PRO.replaceAll("10.100", "224.0")}`,
    path: "global.base_subnet",
    msg: "multicast",
    at: "base_subnet",
  },
  {
    rule: "D10: base_subnet is not link-local",
    yaml: `project_name: t\nglobal:\n  base_subnet: "169.254"\n${PRO.replaceAll("10.100", "169.254")}`,
    path: "global.base_subnet",
    msg: "link-local",
    at: "base_subnet",
  },
  {
    rule: "D10: base_subnet is not in 0/8",
    yaml: `project_name: t\nglobal:\n  base_subnet: "0.0"\n${PRO.replaceAll("10.100", "0.0")}`,
    path: "global.base_subnet",
    msg: "0.0.0.0/8",
    at: "base_subnet",
  },
  {
    rule: "D10: base_subnet is not 255.255",
    yaml: `project_name: t\nglobal:\n  base_subnet: "255.255"\n${PRO.replaceAll("10.100", "255.255")}`,
    path: "global.base_subnet",
    msg: "reserved",
    at: "base_subnet",
  },
  {
    rule: "D17: a missing key's placeholder names the expected type",
    yaml: `global:\n  base_subnet: "10.100"\n${PRO}`,
    path: "project_name",
    msg: /fix: add project_name: <the project's name, a string/,
    at: "global",
  },
  {
    rule: "D17: a missing policy endpoint's placeholder says what it names",
    yaml: `${HEAD}${PRO}network_policies:\n  - {to: pro}\n`,
    path: "network_policies[0].from",
    msg: "add from: <a domain name, a machine name or host>",
    at: "{to: pro}",
  },
  {
    rule: "D17: an unquoted date is called a date and gets a quoting hint",
    yaml: `${HEAD}${PRO}        description: 2024-01-01\n`,
    path: "domains.pro.machines.pro-dev.description",
    msg: /got the date 2024-01-01[\s\S]*fix: .*description: "2024-01-01"/,
    at: "2024-01-01",
  },
  {
    rule: "D17: binary data is not called a mapping",
    yaml: `${HEAD}${PRO}        description: !!binary aGVsbG8=\n`,
    path: "domains.pro.machines.pro-dev.description",
    msg: "got binary data",
    at: "!!binary",
  },
];

function lineOf(text: string, needle: string, nth = 1): number {
  let i = -1;
  for (let k = 0; k < nth; k++) i = text.indexOf(needle, i + 1);
  if (i < 0) throw new Error(`test bug: ${needle} not in text`);
  return text.slice(0, i).split("\n").length;
}

describe("validation rules (single file)", () => {
  for (const c of cases) {
    test(`rule ${c.rule}: file, line, path, message, fix; nothing written`, async () => {
      const dir = workspace({ "infra.yml": c.yaml });
      let ctx: string | undefined;
      if (c.context) {
        ctx = join(dir, "ctx");
        mkdirSync(ctx);
        for (const [k, v] of Object.entries(c.context)) writeFileSync(join(ctx, k), v);
      }
      const r = await runInProcess(
        [join(dir, "infra.yml"), "--base-dir", dir],
        ctx ? { ANKLUME_CONTEXT_DIR: ctx } : {},
      );
      expect(r.code).toBe(1);
      const line = lineOf(c.yaml, c.at, c.nth);
      const entry = r.stderr.split("\n  - ").find((e) => e.includes(c.path));
      if (!entry) throw new Error(`no message for ${c.path} in:\n${r.stderr}`);
      expect(entry).toContain(`${join(dir, "infra.yml")}:${line}:`);
      if (typeof c.msg === "string") expect(entry).toContain(c.msg);
      else expect(entry).toMatch(c.msg);
      expect(entry).toContain("fix:");
      expect(tree(dir)).toEqual({});
    });
  }
});

// Matrix: GV-2-001
test("every error is reported at once", async () => {
  const yaml = `${HEAD}  gpu_policy: all\ndomains:\n  pro:\n    subnet_id: 300\n    machines:\n      Bad_Name: {type: docker}\n`;
  const dir = workspace({ "infra.yml": yaml });
  const r = await runInProcess([join(dir, "infra.yml"), "--base-dir", dir]);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("4 error(s)");
  for (const p of ["global.gpu_policy", "domains.pro.subnet_id", "machines.Bad_Name:", "type"])
    expect(r.stderr).toContain(p);
});

// Matrix: GV-009
test("a static IP inside the DHCP range is a warning with its line, and the sync succeeds", async () => {
  const yaml = `${HEAD}domains:\n  pro:\n    subnet_id: 1\n    machines:\n      pro-dev:\n        ip: "10.100.1.150"\n`;
  const dir = workspace({ "infra.yml": yaml });
  const r = await runInProcess([join(dir, "infra.yml"), "--base-dir", dir]);
  expect(r.code).toBe(0);
  expect(r.stderr).toContain(
    `WARNING: ${join(dir, "infra.yml")}:9:13: domains.pro.machines.pro-dev.ip`,
  );
  expect(r.stderr).toContain("DHCP range");
});

test("a machine named like a domain is a warning with its path, and the sync succeeds (audit 7.7)", async () => {
  const yaml = `${HEAD}${PRO}  perso:\n    subnet_id: 2\n    machines:\n      pro: {}\n`;
  const dir = workspace({ "infra.yml": yaml });
  const r = await runInProcess([join(dir, "infra.yml"), "--base-dir", dir]);
  expect(r.code).toBe(0);
  const entry = r.stderr.split("\n").find((l) => l.includes("domains.perso.machines.pro"));
  if (!entry) throw new Error(`no warning for the machine in:\n${r.stderr}`);
  expect(entry).toContain(`WARNING: ${join(dir, "infra.yml")}:${lineOf(yaml, "pro: {}")}:`);
  expect(r.stderr).toContain('machine "pro" has the same name as a domain');
  expect(Object.keys(tree(dir)).length).toBeGreaterThan(1);
});

// Matrix: GV-2-005
test("gpu_policy shared with two GPU machines is a warning, and the sync succeeds (audit 7.7)", async () => {
  const yaml = `${HEAD}  gpu_policy: shared\ndomains:\n  pro:\n    subnet_id: 1\n    machines:\n      a: {gpu: true}\n      b: {gpu: true}\n`;
  const dir = workspace({ "infra.yml": yaml });
  const r = await runInProcess([join(dir, "infra.yml"), "--base-dir", dir]);
  expect(r.code).toBe(0);
  expect(r.stderr).toContain("WARNING:");
  expect(r.stderr).toContain("global.gpu_policy");
  expect(r.stderr).toContain("GPU policy is 'shared': 2 instances share GPU access (a, b)");
  // The same file with the default policy is refused: the warning is the policy's doing.
  const dir2 = workspace({ "infra.yml": yaml.replace("  gpu_policy: shared\n", "") });
  expect((await runInProcess([join(dir2, "infra.yml"), "--base-dir", dir2])).code).toBe(1);
});

// Matrix: GV-2-003
test("YOLO turns the privileged refusal into a warning", async () => {
  const yaml = `${HEAD}${PRO}        config:\n          security.privileged: true\n`;
  const dir = workspace({ "infra.yml": yaml, "ctx/vm_nested": "false\n", "ctx/yolo": "true\n" });
  const r = await runInProcess([join(dir, "infra.yml"), "--base-dir", dir], {
    ANKLUME_CONTEXT_DIR: join(dir, "ctx"),
  });
  expect(r.code).toBe(0);
  expect(r.stderr).toContain('YOLO: machine "pro-dev" has security.privileged=true');
});

// Matrix: GV-2-002
test("directory mode: errors name the domain file and its line", async () => {
  const dir = workspace({
    "infra/base.yml": HEAD,
    "infra/domains/a.yml": "pro:\n  subnet_id: 1\n",
    "infra/domains/b.yml":
      '# perso\nperso:\n  subnet_id: 1\n  machines:\n    p1: {ip: "10.100.9.9"}\n',
    "infra/policies.yml": "network_policies:\n  - {from: pro, to: nowhere}\n",
  });
  const r = await runInProcess([join(dir, "infra"), "--base-dir", dir]);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain(`${join(dir, "infra/domains/b.yml")}:3:14: domains.perso.subnet_id`);
  expect(r.stderr).toContain(
    `${join(dir, "infra/domains/b.yml")}:5:14: domains.perso.machines.p1.ip`,
  );
  expect(r.stderr).toContain(`${join(dir, "infra/policies.yml")}:2:21: network_policies[0].to`);
  expect(tree(dir)).toEqual({});
});

describe("issue 9: bad input found by the campaign", () => {
  test("D1: a domain named __proto__ in a domain file is reported, not dropped", async () => {
    const dir = workspace({
      "infra/base.yml": HEAD,
      "infra/domains/a.yml": '__proto__:\n  subnet_id: "5; touch pwned"\n',
      "infra/domains/b.yml": "pro:\n  subnet_id: 1\n",
    });
    const r = await runInProcess([join(dir, "infra"), "--base-dir", dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `${join(dir, "infra/domains/a.yml")}:2:14: domains.__proto__.subnet_id: expected an integer`,
    );
    expect(r.stderr).toContain('invalid domain name "__proto__"');
    expect(tree(dir)).toEqual({});
  });

  test("D13: at most 100 errors are listed, the header counts them all", async () => {
    const policies = Array.from({ length: 150 }, (_, i) => `  - {from: nowhere${i}, to: pro}\n`);
    const dir = workspace({ "infra.yml": `${HEAD}${PRO}network_policies:\n${policies.join("")}` });
    const r = await runInProcess([join(dir, "infra.yml"), "--base-dir", dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("Validation failed: 150 error(s)");
    expect(r.stderr.split("\n  - ").filter((e) => e.includes("is not a known"))).toHaveLength(100);
    expect(r.stderr).toContain("  - … and 50 more errors (only the first 100 are listed");
    expect(r.stderr).not.toContain("nowhere100");
  });

  test("D17: an empty file is reported once, with a fix that names the keys", async () => {
    const dir = workspace({ "infra.yml": "" });
    const r = await runInProcess([join(dir, "infra.yml"), "--base-dir", dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("1 error(s)");
    expect(r.stderr.match(/must be a mapping/g)).toHaveLength(1);
    expect(r.stderr).toContain(
      "fix: start from infra.example.yml: project_name, global and domains",
    );
    expect(r.stderr).not.toContain("set  to");
  });

  test("D17: settings at the top level of a domain file are not called invalid values", async () => {
    const dir = workspace({
      "infra/base.yml": HEAD,
      "infra/domains/zz.yml": "subnet_id: 9\n",
    });
    const r = await runInProcess([join(dir, "infra"), "--base-dir", dir]);
    expect(r.code).toBe(1);
    const entry = r.stderr.split("\n  - ").find((e) => e.includes("domains.subnet_id"));
    expect(entry).toContain("expected the domain's settings, a mapping (subnet_id, machines…)");
    expect(entry).toContain("every top-level key is a domain name");
    expect(entry).not.toContain("integer from 0 to 254");
  });

  test("D17: a 1 MB name is echoed cut to 80 characters, not whole", async () => {
    const name = "a".repeat(1 << 20);
    const dir = workspace({
      // An explicit key (?): an implicit one is at most 1024 characters in YAML.
      "infra.yml": `${HEAD}domains:\n  pro:\n    subnet_id: 1\n    machines:\n      ? ${name}_\n      : {}\n`,
    });
    const r = await runInProcess([join(dir, "infra.yml"), "--base-dir", dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`invalid machine name "${"a".repeat(79)}…"`);
    expect(r.stderr.length).toBeLessThan(2000);
  });

  test("an alias inside its own anchor is a clear error, never a stack overflow", async () => {
    const dir = workspace({ "infra.yml": `${HEAD}${PRO}        roles: &r [base_system, *r]\n` });
    const r = await runInProcess([join(dir, "infra.yml"), "--base-dir", dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("domains.pro.machines.pro-dev.roles[1]: expected a role name");
    expect(r.stderr).not.toContain("call stack");
    expect(tree(dir)).toEqual({});
  });

  test("D14: a huge unknown name gets no edit-distance suggestion", async () => {
    const long = "b".repeat(30_000);
    const dir = workspace({
      "infra.yml": `${HEAD}domains:\n  pro:\n    subnet_id: 1\n    machines:\n      ? ${long}a\n      : {}\nnetwork_policies:\n  - from: ${long}c\n    to: pro\n`,
    });
    const r = await runInProcess([join(dir, "infra.yml"), "--base-dir", dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("network_policies[0].from");
    expect(r.stderr).toContain("fix: name a domain, a machine, or host");
    expect(r.stderr).not.toContain("did you mean");
  });
});

describe("v1 infra files keep working (issue 11)", () => {
  const V1 = `${HEAD}domains:
  pro:
    subnet_id: 1
    file_portal:
      allowed_paths: ["/shared/pro"]
      read_only: false
    machines:
      pro-dev:
        ip: "10.100.1.10"
        export_apps: [code, firefox]
`;

  test("file_portal and export_apps are accepted with one info line each naming file, line and path; nothing of them is written", async () => {
    const dir = workspace({ "infra.yml": V1 });
    const file = join(dir, "infra.yml");
    const r = await runInProcess([file, "--base-dir", dir]);
    expect(r.code).toBe(0);
    const infos = r.stderr.split("\n").filter((l) => l.startsWith("INFO:"));
    expect(infos).toEqual([
      `INFO: ${file}:${lineOf(V1, "file_portal")}:5: domains.pro.file_portal: "file_portal" is read by v1's file portal (per-domain paths for cross-domain file transfer), not by anklume: accepted, and anklume does nothing with it`,
      `INFO: ${file}:${lineOf(V1, "export_apps")}:9: domains.pro.machines.pro-dev.export_apps: "export_apps" is read by v1's app export (host desktop entries for container applications), not by anklume: accepted, and anklume does nothing with it`,
    ]);
    expect(r.stderr).not.toContain("WARNING");
    const files = tree(dir);
    expect(Object.keys(files)).toContain("host_vars/pro-dev.yml");
    for (const [name, text] of Object.entries(files)) {
      if (name === "infra.yml") continue;
      expect(text).not.toContain("export_apps");
      expect(text).not.toContain("file_portal");
      expect(text).not.toContain("allowed_paths");
    }
    // A second sync (the stamp answers it) says the same.
    const again = await runInProcess([file, "--base-dir", dir]);
    expect(again.code).toBe(0);
    expect(again.stderr.split("\n").filter((l) => l.startsWith("INFO:"))).toEqual(infos);
  });

  test("a true typo of a v1 key still fails, naming the nearest key", async () => {
    const yaml = V1.replace("export_apps:", "export_app:");
    const dir = workspace({ "infra.yml": yaml });
    const r = await runInProcess([join(dir, "infra.yml"), "--base-dir", dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('domains.pro.machines.pro-dev.export_app: unknown key "export_app"');
    expect(r.stderr).toContain('did you mean "export_apps"?');
    expect(tree(dir)).toEqual({});
  });
});
