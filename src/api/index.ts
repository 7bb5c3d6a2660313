/** The api part: the HTTP API app factory and what route modules build on. */
export { API_BODY_BYTES_MAX, type ApiModule, type ApiOptions, buildApi } from "./app.ts";
export { httpError, toNexusError } from "./http-errors.ts";
export { buildOpenApi, errorResponses, jsonResponse, jsonSchemaOf, type OpenApiPaths, parameter } from "./openapi.ts";
export { decimalIndex, INDEX_MAX, parseInput } from "./params.ts";
export { ledgerDocs, ledgerRoutes } from "./routes/ledger.ts";
export { STREAM_CLIENTS_MAX, STREAM_DRAIN_TIMEOUT_MS, STREAM_HEARTBEAT_MS, type StreamOptions } from "./routes/ledger-stream.ts";
export { apiErrors, type ApiErrorCode } from "./errors.ts";
export {
  COMMAND_BURST_PER_IDENTITY,
  COMMAND_MEDIA_TYPES,
  COMMANDS_PER_SEC_PER_IDENTITY,
  commandDocs,
  commandRoutes,
  type CommandRoutesOptions,
  RateLimiter,
  sharedTokenAuthority,
  UNAUTHENTICATED_BURST_PER_ADDRESS,
  UNAUTHENTICATED_PER_SEC_PER_ADDRESS,
} from "./routes/commands.ts";
export { FEED_PAGE_MAX, imvuDocs, imvuRoutes, type ImvuRoutesOptions, STATEMENT_DAYS_MAX } from "./routes/imvus.ts";
