/**
 * Read the parent's nesting context from /etc/anklume (or a test directory).
 * The reader lives in lib/core/nesting.ts (one reader of /etc/anklume, both
 * spec'd interpretations); this name stays for scripts/reconcile.ts.
 */
export { readParentContext as readContext } from "../core/nesting.ts";
