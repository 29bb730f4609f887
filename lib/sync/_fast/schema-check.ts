/**
 * Private to lib/sync (used by _fast/shape.ts behind `checkShape`; what it buys
 * and how to measure without it: _fast/shape.ts).
 *
 * A compiled yes/no check for a valibot schema: the same answer as
 * `v.safeParse(schema, x).success`, about ten times faster, and no messages.
 * The generator asks it first and runs valibot (for its issues) only when the
 * answer is no. It is derived from the schema object itself, so the schema
 * stays the one source of truth; a schema node it does not know makes
 * `compileCheck` throw, and a property test compares both on random inputs.
 */
import type * as v from "valibot";
import { isMapping } from "../../core/issues.ts";

type Check = (x: unknown) => boolean;

interface Node {
  type: string;
  kind?: string;
  entries?: Record<string, Node>;
  wrapped?: Node;
  item?: Node;
  key?: Node;
  value?: Node;
  options?: (Node | string | number)[];
  literal?: unknown;
  pipe?: { kind: string; type: string; requirement?: unknown }[];
}

/** A schema's structure as plain JSON: what `compileCheck` needs, without valibot. */
export type SchemaShape = Node;

/** Compile a schema, or its shape, into a fast boolean check. */
export function compileCheck(schema: v.GenericSchema | SchemaShape): Check {
  return compile(schema as unknown as Node);
}

/**
 * The structure of a valibot schema as JSON (types, entries, options, pipe
 * bounds), so the check can be compiled without loading valibot at all.
 */
export function describeSchema(schema: v.GenericSchema): SchemaShape {
  return describe(schema as unknown as Node);
}

function describe(node: Node): Node {
  const out: Node = { type: node.type };
  if (node.entries) {
    out.entries = Object.fromEntries(
      Object.entries(node.entries).map(([k, n]) => [k, describe(n)]),
    );
  }
  for (const f of ["wrapped", "item", "key", "value"] as const) {
    const child = node[f];
    if (child) out[f] = describe(child);
  }
  if (node.options) {
    out.options = node.options.map((o) => (typeof o === "object" ? describe(o as Node) : o));
  }
  if ("literal" in node) out.literal = node.literal;
  if (node.pipe) {
    out.pipe = node.pipe.map((p, i) =>
      i === 0
        ? { kind: "schema", type: node.type }
        : {
            kind: p.kind,
            type: p.type,
            ...(typeof p.requirement === "number" ? { requirement: p.requirement } : {}),
          },
    );
  }
  return out;
}

function compile(node: Node): Check {
  const base = compileBase(node);
  const steps = (node.pipe ?? []).slice(1);
  if (steps.length === 0) return base;
  const checks = steps.map((s): Check => {
    const r = s.requirement as number;
    switch (s.type) {
      case "integer":
        return (x) => Number.isInteger(x);
      case "min_value":
        return (x) => (x as number) >= r;
      case "max_value":
        return (x) => (x as number) <= r;
      default:
        throw new Error(`compileCheck: unsupported pipe step "${s.type}"`);
    }
  });
  return (x) => base(x) && checks.every((c) => c(x));
}

function compileBase(node: Node): Check {
  switch (node.type) {
    case "string":
      return (x) => typeof x === "string";
    case "number":
      return (x) => typeof x === "number" && !Number.isNaN(x);
    case "boolean":
      return (x) => typeof x === "boolean";
    case "unknown":
      return () => true;
    case "literal": {
      const lit = node.literal;
      return (x) => x === lit;
    }
    case "picklist": {
      const set = new Set(node.options as unknown[]);
      return (x) => set.has(x);
    }
    case "optional": {
      const inner = compile(node.wrapped as Node);
      return (x) => x === undefined || inner(x);
    }
    case "nullable": {
      const inner = compile(node.wrapped as Node);
      return (x) => x === null || inner(x);
    }
    case "nullish": {
      const inner = compile(node.wrapped as Node);
      return (x) => x === null || x === undefined || inner(x);
    }
    case "union": {
      const opts = (node.options as Node[]).map(compile);
      return (x) => opts.some((o) => o(x));
    }
    case "array": {
      const item = compile(node.item as Node);
      return (x) => Array.isArray(x) && x.every(item);
    }
    case "record": {
      // Every own key, whatever its name (valibot's own record skips __proto__,
      // constructor and prototype: schema.ts's `mapping` checks them).
      const key = compile(node.key as Node);
      const value = compile(node.value as Node);
      return (x) => {
        if (!isMapping(x)) return false;
        // for…in: own keys only here (isMapping: the prototype is Object's or null).
        for (const k in x) if (!key(k) || !value(x[k])) return false;
        return true;
      };
    }
    case "strict_object":
    case "loose_object":
    case "object": {
      const strict = node.type === "strict_object";
      const entries = Object.entries(node.entries ?? {}).map(([k, n]) => [k, compile(n)] as const);
      const known = new Set(entries.map(([k]) => k));
      return (x) => {
        if (!isMapping(x)) return false;
        // No known key is a name of Object.prototype, so x[k] reads an own key or nothing.
        for (const [k, c] of entries) if (!c(x[k])) return false;
        if (strict) for (const k in x) if (!known.has(k)) return false;
        return true;
      };
    }
    default:
      throw new Error(`compileCheck: unsupported schema type "${node.type}"`);
  }
}
