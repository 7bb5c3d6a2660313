/** The one mapping from errors to HTTP responses: status from NexusError.http, body {error:{code,message}}. */
import { commonErrors } from "../core/common-errors.ts";
import { isNexusError, type NexusError } from "../core/errors.ts";

interface HttpishError {
  readonly statusCode?: unknown;
  readonly code?: unknown;
  readonly message?: unknown;
}

/** The NexusError an error becomes on the wire (framework 4xx errors keep their status). */
export function toNexusError(e: unknown): NexusError {
  if (isNexusError(e)) return e;
  const f = (typeof e === "object" && e !== null ? e : {}) as HttpishError;
  const status = typeof f.statusCode === "number" ? f.statusCode : 500;
  const detail = typeof f.message === "string" ? f.message : undefined;
  if (status === 413) return commonErrors.make("INPUT_TOO_LARGE", detail);
  if (status === 404) return commonErrors.make("NOT_FOUND", detail);
  if (status >= 400 && status < 500) return commonErrors.make("INPUT_INVALID", detail);
  return commonErrors.make("INTERNAL");
}

/** Status and body for an error. Internal errors never leak their message. */
export function httpError(e: unknown): { status: number; body: ReturnType<NexusError["toJSON"]> } {
  const n = toNexusError(e);
  return { status: n.http, body: n.toJSON() };
}
