import { defineErrors } from "../core/errors.ts";

/** Errors of the HTTP boundary itself (authentication of reads, rate limits, media types). */
export const apiErrors = defineErrors({
  API_UNAUTHENTICATED: {
    message: "This read needs an identity: sign the request (RFC 9421, Ed25519, keyid = identity id) or send a bearer token from POST /v1/auth/token",
    http: 401,
    exit: 4,
  },
  API_RATE_LIMITED: { message: "Too many commands from this identity; retry after the number of seconds in Retry-After", http: 429, exit: 5 },
  API_MEDIA_TYPE: { message: "Unsupported content type; send the DSSE envelope as application/json", http: 415, exit: 2 },
  API_CHALLENGE_INVALID: { message: "The challenge answer does not verify (expired, altered, or not signed by the identity's current key)", http: 401, exit: 4 },
});

/** An API error code. */
export type ApiErrorCode = keyof typeof apiErrors.specs;
