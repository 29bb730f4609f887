#!/usr/bin/env bun
// Speed of the generator's output layer: dumpYaml and mergeManaged on
// host_vars-sized objects, cold (first call) and warm (1,000 calls), against
// the `yaml` package's stringify. Goal: 1,000 dumps well under 50 ms.
// Usage: bun bench/emit.ts
import { dumpYaml } from "../lib/sync/emit.ts";
import { mergeManaged } from "../lib/sync/managed.ts";

function hostVars(i: number) {
  return {
    instance_name: `001-machine-${i}`,
    instance_type: i % 3 === 0 ? "vm" : "lxc",
    instance_description: `Machine number ${i}: a worker`,
    instance_domain: `domain-${i % 10}`,
    instance_ephemeral: i % 2 === 0,
    instance_os_image: "images:debian/13",
    instance_ip: `10.100.${i % 250}.${(i % 200) + 1}`,
    instance_profiles: ["default", "nesting"],
    instance_config: {
      "security.nesting": "true",
      "limits.cpu.allowance": "16%",
      "limits.memory": "491MiB",
    },
    instance_devices: { gpu: { type: "gpu", gputype: "physical" } },
    instance_roles: ["base_system", "docker"],
    instance_boot_autostart: true,
    instance_boot_priority: i % 100,
  };
}

const values = Array.from({ length: 1000 }, (_, i) => hostVars(i));

let t = performance.now();
const first = dumpYaml(values[0]);
const cold = performance.now() - t;

t = performance.now();
let bytes = 0;
for (const v of values) bytes += dumpYaml(v).length;
const warm = performance.now() - t;

t = performance.now();
for (const v of values) {
  const r = mergeManaged(null, dumpYaml(v));
  if (!r.ok) throw new Error(r.error);
}
const merged = performance.now() - t;

t = performance.now();
const YAML = await import("yaml");
const importMs = performance.now() - t;
t = performance.now();
for (const v of values) YAML.stringify(v);
const pkg = performance.now() - t;

console.log(`dumpYaml: first call ${cold.toFixed(2)} ms (${first.length} B)`);
console.log(`dumpYaml: 1,000 host_vars ${warm.toFixed(2)} ms (${bytes} B) — goal < 50 ms`);
console.log(`dumpYaml + mergeManaged(new file): 1,000 in ${merged.toFixed(2)} ms`);
console.log(
  `yaml package stringify: import ${importMs.toFixed(1)} ms, 1,000 in ${pkg.toFixed(2)} ms`,
);
process.exitCode = warm < 50 ? 0 : 1;
