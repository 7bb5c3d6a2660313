/**
 * Error codes of core/crypto: canonical JSON (jcs.ts) and DSSE envelopes (dsse.ts). Listed in
 * docs/errors.md under "## crypto". Malformed input is bad input (exit 2); an envelope that does
 * not verify, or carries a payload type the caller does not accept, is a failed check (exit 1).
 */
import { defineErrors } from "../errors.ts";

/** The crypto part's error table. */
export const cryptoErrors = defineErrors({
  CRYPTO_JSON_INVALID: {
    message: "Unacceptable JSON (syntax, duplicate key, depth, size, lone surrogate, or a value JSON cannot carry)",
    http: 400,
    exit: 2,
  },
  CRYPTO_DSSE_MALFORMED: {
    message: "The DSSE envelope is malformed: missing or oversized fields, or payload or signature not base64",
    http: 400,
    exit: 2,
  },
  CRYPTO_DSSE_PAYLOAD_TYPE: {
    message: "The DSSE envelope's payloadType is not one this verifier accepts",
    http: 422,
    exit: 1,
  },
  CRYPTO_DSSE_UNVERIFIED: {
    message: "Fewer distinct trusted keys than the threshold signed the DSSE envelope: it is rejected",
    http: 422,
    exit: 1,
  },
});

/** Every code of the crypto part. */
export type CryptoErrorCode = keyof typeof cryptoErrors.specs;
