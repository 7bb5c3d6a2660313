/**
 * RFC 8785 (JCS) canonical JSON for the values the console signs: objects with keys sorted by
 * UTF-16 code units (§3.2.3), strings as ECMAScript JSON.stringify writes them (§3.2.2.2),
 * numbers as ECMAScript Number serialisation (§3.2.2.3; the console sends integers only).
 * undefined, NaN, Infinity, functions and lone surrogates are refused, as the server refuses them.
 */

/** A JSON value. */
export type Json = null | boolean | number | string | readonly Json[] | { readonly [k: string]: Json };

/** Most nesting the canonicaliser follows. */
export const JCS_DEPTH_MAX = 64;

/** The RFC 8785 text of `v`. */
export function canonicalize(v: unknown, depth = 0): string {
  if (depth > JCS_DEPTH_MAX) throw new Error("JCS: nesting too deep");
  if (v === null) return "null";
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new Error("JCS: numbers must be finite");
    return JSON.stringify(v);
  }
  if (typeof v === "string") {
    if (!v.isWellFormed()) throw new Error("JCS: lone surrogate in a string");
    return JSON.stringify(v);
  }
  if (Array.isArray(v)) return `[${v.map((x) => canonicalize(x, depth + 1)).join(",")}]`;
  if (typeof v === "object") {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).sort();
    const parts: string[] = [];
    for (const k of keys) {
      if (o[k] === undefined) throw new Error(`JCS: undefined member ${JSON.stringify(k)}`);
      parts.push(`${canonicalize(k)}:${canonicalize(o[k], depth + 1)}`);
    }
    return `{${parts.join(",")}}`;
  }
  throw new Error(`JCS: a ${typeof v} is not JSON`);
}
