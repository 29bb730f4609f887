import { describe, expect, test } from "bun:test";
import { FOREIGN_KEYS, foreignKeyNotes } from "./foreign.ts";
import { shapeIssues } from "./schema.ts";

const infra = (domain: Record<string, unknown>) => ({
  project_name: "t",
  global: { base_subnet: "10.100" },
  domains: { pro: { subnet_id: 1, ...domain } },
});

describe("foreignKeyNotes()", () => {
  test("notes file_portal on a domain and export_apps on a machine, one info each, at the key", () => {
    const data = infra({
      file_portal: { allowed_paths: ["/shared/pro"], read_only: false },
      machines: { a: { export_apps: ["firefox"] }, b: {}, c: { export_apps: null } },
    });
    const notes = foreignKeyNotes(data);
    expect(notes.map((n) => n.path)).toEqual([
      ["domains", "pro", "file_portal"],
      ["domains", "pro", "machines", "a", "export_apps"],
      ["domains", "pro", "machines", "c", "export_apps"],
    ]);
    for (const n of notes) {
      expect(n.severity).toBe("info");
      expect(n.atKey).toBe(true);
      expect(n.message).toContain("anklume does nothing with it");
    }
    expect(notes[0]?.message).toContain("v1's file portal");
    expect(notes[1]?.message).toContain("v1's app export");
  });

  test("does not note global.ai_vram_flush (make ai-switch reads it); the schema types it as a boolean", () => {
    const data = { ...infra({}), global: { base_subnet: "10.100", ai_vram_flush: true } };
    expect(foreignKeyNotes(data)).toEqual([]);
    expect(shapeIssues(data)).toEqual([]);
    const bad = shapeIssues({ ...data, global: { ai_vram_flush: "yes" } });
    expect(bad[0]?.message).toContain("expected true or false");
  });

  test("says nothing for an infra without them, or one that is not a mapping", () => {
    expect(foreignKeyNotes(infra({ machines: { a: {} } }))).toEqual([]);
    expect(foreignKeyNotes(null)).toEqual([]);
    expect(foreignKeyNotes({ domains: [1] })).toEqual([]);
    expect(foreignKeyNotes({ domains: { pro: null } })).toEqual([]);
  });

  test("the schema accepts every foreign key, with any value, where it lives", () => {
    for (const k of FOREIGN_KEYS.filter((f) => f.level !== "global")) {
      for (const value of [null, "x", 3, ["a"], { any: { thing: true } }]) {
        const data =
          k.level === "domain"
            ? infra({ [k.key]: value })
            : infra({ machines: { a: { [k.key]: value } } });
        expect(shapeIssues(data)).toEqual([]);
      }
    }
  });

  test("a foreign key at the wrong level, or misspelt, is still an unknown key naming the nearest", () => {
    const wrongLevel = shapeIssues(infra({ export_apps: ["code"] }));
    expect(wrongLevel.map((i) => i.message)).toEqual(['unknown key "export_apps"']);
    const typo = shapeIssues(infra({ machines: { a: { export_app: ["code"] } } }));
    expect(typo[0]?.message).toBe('unknown key "export_app"');
    expect(typo[0]?.fix).toBe('did you mean "export_apps"?');
    const typo2 = shapeIssues(infra({ file_portals: {} }));
    expect(typo2[0]?.fix).toBe('did you mean "file_portal"?');
  });
});
