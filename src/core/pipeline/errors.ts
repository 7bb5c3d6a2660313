import { defineErrors } from "../errors.ts";

/** Rejections before the gates: nothing is recorded for these. */
export const pipelineErrors = defineErrors({
  PIPELINE_TOO_LARGE: { message: "The command envelope is larger than the limit", http: 413, exit: 2 },
  PIPELINE_MALFORMED: { message: "The command envelope is not a valid DSSE envelope of canonical JSON", http: 400, exit: 2 },
  PIPELINE_PAYLOAD_TYPE: { message: "The envelope's payloadType is not a Nexus command", http: 400, exit: 2 },
  PIPELINE_NOT_CANONICAL: { message: "The command payload is not in RFC 8785 canonical form; sign the JCS bytes", http: 400, exit: 2 },
  PIPELINE_UNKNOWN_TYPE: { message: "Unknown command type; see 'nexus gates' for the catalogue", http: 400, exit: 2 },
  PIPELINE_SCHEMA: { message: "The command does not match its schema", http: 400, exit: 2 },
  PIPELINE_ACTOR_UNKNOWN: { message: "The actor is not a registered identity; register it with 'nexus id register'", http: 401, exit: 4 },
  PIPELINE_IDENTITY_EXISTS: { message: "That identity is already registered", http: 409, exit: 4 },
  PIPELINE_KEY_EVENT_INVALID: { message: "The key event does not verify", http: 401, exit: 4 },
  PIPELINE_BAD_SIGNATURE: { message: "No signature verifies with the actor's current key", http: 401, exit: 4 },
  PIPELINE_NONCE_REUSED: { message: "This nonce was already used by the actor; sign a new command", http: 409, exit: 4 },
  PIPELINE_STALE: { message: "issuedAt is outside the accepted time window; check the clock and sign again", http: 400, exit: 4 },
  PIPELINE_OVERLOADED: { message: "The command queue is full; retry shortly", http: 503, exit: 5 },
  PIPELINE_NOT_GENESIS: { message: "The ledger has no platform genesis yet; run 'nexus up' once", http: 409, exit: 5 },
});
