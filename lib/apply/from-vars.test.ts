import { describe, expect, test } from "bun:test";
import { desiredFromVars, type Kind } from "./desired.ts";
import { desiredByKind, kindsForTags } from "./from-vars.ts";

describe("kindsForTags", () => {
  test("an untagged run, --tags all and --tags infra select every kind, in apply order", () => {
    const every: Kind[] = ["projects", "networks", "profiles", "images", "firewall", "instances"];
    expect(kindsForTags([], [])).toEqual(every);
    expect(kindsForTags(["all"], [])).toEqual(every);
    expect(kindsForTags(["infra"], [])).toEqual(every);
  });

  test("a kind's tag selects that kind only, in apply order whatever the tag order", () => {
    expect(kindsForTags(["networks"], [])).toEqual(["networks"]);
    expect(kindsForTags(["instances", "projects"], [])).toEqual(["projects", "instances"]);
    expect(kindsForTags(["provision"], [])).toEqual([]);
  });

  test("skipped tags remove kinds; skipping infra removes them all", () => {
    expect(kindsForTags(["all"], ["images"])).toEqual([
      "projects",
      "networks",
      "profiles",
      "firewall",
      "instances",
    ]);
    expect(kindsForTags(["all"], ["infra"])).toEqual([]);
  });
});

test("desiredByKind hands the executor's knobs to the instances kind only", () => {
  const d = desiredFromVars({ hosts: {}, knobs: { incus_instances_parallel: 7 } });
  const docs = desiredByKind(d);
  expect(docs.instances).toMatchObject({ parallel: 7, timeout: 300 });
  expect(docs.networks).not.toHaveProperty("parallel");
  expect(docs.firewall).toBeNull();
});
