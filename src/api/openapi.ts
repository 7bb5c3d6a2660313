/**
 * The OpenAPI 3.1 document at /openapi.json, assembled from the route modules' own descriptions
 * (parameter schemas come from the same zod schemas the handlers validate with).
 */
import { z } from "zod";

/** An OpenAPI path item (methods to operations), kept as plain JSON. */
export type OpenApiPaths = Record<string, Record<string, unknown>>;

/** The JSON Schema of a zod schema's input (what a client sends). */
export function jsonSchemaOf(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  return rest;
}

/** An OpenAPI parameter object. */
export function parameter(name: string, where: "path" | "query" | "header", schema: z.ZodType, description: string, required: boolean): Record<string, unknown> {
  return { name, in: where, required, description, schema: jsonSchemaOf(schema) };
}

/** The error response every operation may return. */
export const ERROR_SCHEMA = {
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message"],
      properties: { code: { type: "string" }, message: { type: "string" }, details: { type: "object" } },
    },
  },
};

/** A JSON response object for `description` with `schema`. */
export function jsonResponse(description: string, schema: unknown): Record<string, unknown> {
  return { description, content: { "application/json": { schema } } };
}

/** The error responses shared by operations, by status. */
export function errorResponses(...statuses: number[]): Record<string, unknown> {
  const text: Record<number, string> = {
    400: "Malformed parameter (INPUT_INVALID, LEDGER_RANGE)",
    404: "Beyond the log (LEDGER_INDEX_OUT_OF_RANGE, LEDGER_SIZE_OUT_OF_RANGE) or no such route",
    500: "Internal error or damaged storage (INTERNAL, LEDGER_STORAGE_CORRUPT)",
    503: "Overloaded or unavailable (LEDGER_OVERLOADED, STORE_UNAVAILABLE)",
  };
  return Object.fromEntries(statuses.map((s) => [String(s), jsonResponse(text[s] ?? "Error", { $ref: "#/components/schemas/Error" })]));
}

/** The whole document. */
export function buildOpenApi(info: { title: string; version: string }, paths: readonly OpenApiPaths[]): Record<string, unknown> {
  return {
    openapi: "3.1.0",
    info: { ...info, description: "Nexus COS HTTP API. Integers that may exceed 2^53 are decimal strings; bytes are base64." },
    paths: Object.assign({}, ...paths) as OpenApiPaths,
    components: { schemas: { Error: ERROR_SCHEMA } },
  };
}
