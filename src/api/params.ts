/**
 * Request parameters shared by the routes: decimal indices and sizes as strings (bigint after
 * parsing), validated with zod; a failure is INPUT_INVALID (400) naming the field, never a 500.
 */
import { z } from "zod";
import { commonErrors } from "../core/common-errors.ts";

/** The largest index or size a request may name (int64, the stores' column type). */
export const INDEX_MAX = (1n << 63n) - 1n;

const DECIMAL_RE = /^(0|[1-9][0-9]{0,18})$/;

/** A canonical decimal (no sign, no leading zero, at most 19 digits) at most INDEX_MAX. */
export const decimalIndex = z
  .string()
  .regex(DECIMAL_RE, "a decimal integer from 0 to 2^63-1")
  // zod runs every check even after one failed: only convert what the pattern accepted.
  .refine((s) => !DECIMAL_RE.test(s) || BigInt(s) <= INDEX_MAX, "at most 2^63-1")
  .transform((s) => BigInt(s));

/** Parses `value` with `schema`, throwing INPUT_INVALID (400) naming the first bad field. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const field = issue === undefined || issue.path.length === 0 ? where : `${where}.${issue.path.map(String).join(".")}`;
  throw commonErrors.make("INPUT_INVALID", `${field}: ${issue?.message ?? "invalid"}`, { field });
}
