/** The api part: the HTTP API app factory and what route modules build on. */
export { API_BODY_BYTES_MAX, type ApiModule, type ApiOptions, buildApi } from "./app.ts";
export { httpError, toNexusError } from "./http-errors.ts";
export { buildOpenApi, errorResponses, jsonResponse, jsonSchemaOf, type OpenApiPaths, parameter } from "./openapi.ts";
export { decimalIndex, INDEX_MAX, parseInput } from "./params.ts";
export { ledgerDocs, ledgerRoutes } from "./routes/ledger.ts";
export { STREAM_CLIENTS_MAX, STREAM_DRAIN_TIMEOUT_MS, STREAM_HEARTBEAT_MS, type StreamOptions } from "./routes/ledger-stream.ts";
