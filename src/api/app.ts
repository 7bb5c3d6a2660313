/**
 * The HTTP API app factory (Fastify). Routes come in modules (src/api/routes/<area>.ts), each
 * bringing its handlers and its OpenAPI description; this file adds what every route shares: the
 * error mapping (NexusError.http and {error:{code,message}}, never a stack), the 404 handler, the
 * framework's own errors in the same shape, and /openapi.json.
 */
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from "fastify";
import type { Ledger } from "../core/ledger/ledger.ts";
import { commonErrors } from "../core/common-errors.ts";
import { httpError } from "./http-errors.ts";
import { buildOpenApi, type OpenApiPaths } from "./openapi.ts";
import { ledgerRoutes } from "./routes/ledger.ts";
import type { StreamOptions } from "./routes/ledger-stream.ts";

/** Largest request body accepted. */
export const API_BODY_BYTES_MAX = 1024 * 1024;
/** Longest path parameter (so an overlong index is a 400 from validation, not a router 404). */
export const API_PARAM_CHARS_MAX = 1024;
/** Time limit on receiving a whole request. */
export const API_REQUEST_TIMEOUT_MS = 30_000;

/** A group of routes with its OpenAPI description. */
export interface ApiModule {
  readonly name: string;
  readonly docs: OpenApiPaths;
  register(app: FastifyInstance): void;
}

/** What the API serves. */
export interface ApiOptions {
  readonly ledger: Ledger;
  /** Stream tunables (tests shorten the heartbeat). */
  readonly stream?: StreamOptions;
  /** More route modules (other parts add theirs here). */
  readonly modules?: readonly ApiModule[];
  /** Log requests and errors with Fastify's logger (default: only 500s, to stderr). */
  readonly logger?: boolean;
}

function sendError(reply: FastifyReply, e: unknown): void {
  const { status, body } = httpError(e);
  if (status === 500) reply.log.error({ err: e }, "request failed");
  void reply.code(status).type("application/json; charset=utf-8").send(body);
}

/** Builds the app (not yet listening): the ledger routes, the given modules and /openapi.json. */
export async function buildApi(opts: ApiOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: opts.logger ? true : { level: "error" },
    bodyLimit: API_BODY_BYTES_MAX,
    requestTimeout: API_REQUEST_TIMEOUT_MS,
    routerOptions: { maxParamLength: API_PARAM_CHARS_MAX },
    forceCloseConnections: true,
    frameworkErrors: (error: FastifyError, _req, reply) => sendError(reply, error),
  });
  app.setErrorHandler((error, _req, reply) => sendError(reply, error));
  app.setNotFoundHandler((req, reply) => sendError(reply, commonErrors.make("NOT_FOUND", `${req.method} ${req.url.split("?")[0] ?? ""}`)));
  const modules = [ledgerRoutes(opts.ledger, opts.stream ?? {}), ...(opts.modules ?? [])];
  for (const m of modules) m.register(app);
  const doc = buildOpenApi({ title: "Nexus COS API", version: "1" }, modules.map((m) => m.docs));
  app.get("/openapi.json", async () => doc);
  return app;
}
