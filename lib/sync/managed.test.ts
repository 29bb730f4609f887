import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import YAML from "yaml";
import { dumpYaml } from "./emit.ts";
import { MANAGED_BEGIN, MANAGED_END, managedBlock, mergeManaged } from "./managed.ts";

/** fast-check runs per property; `make mutation` lowers them through FC_NUM_RUNS. */
const runs = (n: number): number => Number(process.env.FC_NUM_RUNS) || n;

const SEED = Number(process.env.FC_SEED ?? 20261125);
const NOTICE = "# Do not edit this section — it will be overwritten by `make sync`";

function content(r: ReturnType<typeof mergeManaged>): string {
  if (!r.ok) throw new Error(`unexpected merge error: ${r.error}`);
  return r.content;
}

describe("managedBlock", () => {
  test("is the four parts of §10 with the body's trailing blanks stripped", () => {
    expect(managedBlock("a: 1\n\n  \n")).toBe(`${MANAGED_BEGIN}\n${NOTICE}\na: 1\n${MANAGED_END}`);
  });
});

describe("mergeManaged", () => {
  test("a new file gets ---, the block and the user section", () => {
    expect(content(mergeManaged(null, "a: 1\n"))).toBe(
      `---\n${MANAGED_BEGIN}\n${NOTICE}\na: 1\n${MANAGED_END}\n\n# Your custom variables below:\n`,
    );
  });

  test("replaces the one block and keeps every other byte", () => {
    const old = `--- # top\n# mine\n${MANAGED_BEGIN}\nold: 1\n${MANAGED_END}  \nuser: 2 # kept\r\n`;
    expect(content(mergeManaged(old, "new: 3\n"))).toBe(
      `--- # top\n# mine\n${managedBlock("new: 3")}  \nuser: 2 # kept\r\n`,
    );
  });

  test("puts the block after a leading --- line in a file without markers", () => {
    expect(content(mergeManaged("---\nuser: 1\n", "a: 1"))).toBe(
      `---\n${managedBlock("a: 1")}\n\nuser: 1\n`,
    );
    expect(content(mergeManaged("---", "a: 1"))).toBe(`---\n${managedBlock("a: 1")}\n\n`);
  });

  test("adds --- above the block in a file without markers nor ---", () => {
    expect(content(mergeManaged("user: 1\n", "a: 1"))).toBe(
      `---\n${managedBlock("a: 1")}\n\nuser: 1\n`,
    );
    expect(content(mergeManaged("", "a: 1"))).toBe(`---\n${managedBlock("a: 1")}\n\n`);
  });

  test("refuses two blocks and names the lines", () => {
    const two = `---\n${managedBlock("a: 1")}\n${managedBlock("b: 1")}\n`;
    const r = mergeManaged(two, "c: 1");
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error).toContain("2 managed blocks");
      expect(r.error).toContain("line(s) 2, 6");
      expect(r.error).toContain("keep exactly one block");
    }
  });

  test("refuses a begin marker without an end, and an end without or before a begin", () => {
    const cases: [string, RegExp][] = [
      [`---\n${MANAGED_BEGIN}\na: 1\n`, /on line 2 has no "# === END MANAGED ===" after it/],
      [
        `---\na: 1\n${MANAGED_END}\n`,
        /on line 3 has no "# === MANAGED BY infra.yml ===" before it/,
      ],
      [`${MANAGED_END}\n${MANAGED_BEGIN}\n`, /\(line 1\) comes before .* \(line 2\)/],
      [`${MANAGED_BEGIN}\n${MANAGED_BEGIN}\n${MANAGED_END}\n`, /2 managed blocks/],
    ];
    for (const [text, message] of cases) {
      const r = mergeManaged(text, "x: 1");
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error).toMatch(message);
        expect(r.error).toMatch(/make sync/);
      }
    }
  });
});

/** Arbitrary text that holds neither marker. */
const userText = fc
  .oneof(
    fc.string({ unit: "binary" }),
    fc
      .array(
        fc.constantFrom(
          "---",
          "# Your custom variables below:",
          "x: 1",
          "",
          "# === ",
          "\r",
          "---x",
        ),
        { maxLength: 6 },
      )
      .map((ls) => ls.join("\n")),
  )
  .filter((s) => !s.includes(MANAGED_BEGIN) && !s.includes(MANAGED_END));

const body = fc
  .dictionary(fc.string({ minLength: 1 }), fc.oneof(fc.string(), fc.integer()), { maxKeys: 4 })
  .map(dumpYaml);

describe("mergeManaged properties", () => {
  test("is idempotent", () => {
    fc.assert(
      fc.property(fc.option(userText), body, (existing, b) => {
        const once = content(mergeManaged(existing, b));
        expect(content(mergeManaged(once, b))).toBe(once);
      }),
      { numRuns: runs(3000), seed: SEED },
    );
  }, 60_000);

  test("keeps user content below the block byte for byte across merges", () => {
    fc.assert(
      fc.property(userText, fc.array(body, { minLength: 1, maxLength: 5 }), (user, bodies) => {
        let text = content(mergeManaged(null, "first: 1"));
        text = `${text}${user}`;
        for (const b of bodies) text = content(mergeManaged(text, b));
        const last = bodies[bodies.length - 1] as string;
        expect(text).toBe(`---\n${managedBlock(last)}\n\n# Your custom variables below:\n${user}`);
      }),
      { numRuns: runs(3000), seed: SEED },
    );
  }, 60_000);

  test("a YAML body merged into a YAML user part gives one YAML document", () => {
    const key = fc.string({ minLength: 1, maxLength: 8 });
    fc.assert(
      fc.property(
        fc.dictionary(key, fc.jsonValue({ maxDepth: 2 }), { minKeys: 1, maxKeys: 4 }),
        fc.dictionary(key, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
        fc.constantFrom("", "---\n", "--- \n", "# a comment\n"),
        (generated, mine, lead) => {
          const user = Object.fromEntries(Object.entries(mine).filter(([k]) => !(k in generated)));
          const userPart = Object.keys(user).length ? dumpYaml(user) : "# nothing yet\n";
          for (const existing of [null, `${lead}${userPart}`]) {
            let text = content(mergeManaged(existing, dumpYaml(generated)));
            if (existing === null) text += userPart;
            const docs = YAML.parseAllDocuments(text, { version: "1.1" });
            expect(docs.length).toBe(1);
            expect(docs[0]?.errors).toEqual([]);
            const expected = { ...generated, ...user };
            const parsed = docs[0]?.toJS() ?? {};
            expect(parsed).toEqual(expected);
          }
        },
      ),
      { numRuns: runs(2000), seed: SEED },
    );
  }, 60_000);
});

test("D14: many stray markers are reported in linear time, with at most 10 line numbers", () => {
  const file = `---\n${MANAGED_BEGIN}\na: 1\n${`${MANAGED_END}\n`.repeat(40_000)}`;
  const t0 = performance.now();
  const r = mergeManaged(file, "a: 2\n");
  expect(performance.now() - t0).toBeLessThan(500);
  expect(r.ok).toBe(false);
  if (!r.ok) {
    expect(r.error).toContain("on line(s) 4, 5, 6, 7, 8, 9, 10, 11, 12, 13 and 39990 more");
    expect(r.error.length).toBeLessThan(1000);
  }
});
