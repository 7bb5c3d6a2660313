/**
 * Error codes of core/identity: key events and key event logs (events.ts) and the local keyring
 * (keyring.ts). Listed in docs/errors.md under "## identity". A malformed event or name is bad
 * input (exit 2); an event that does not verify is a failed check (exit 1); keyring trouble that
 * the operator must fix on disk has its own codes.
 */
import { defineErrors } from "../errors.ts";

/** The identity part's error table. */
export const identityErrors = defineErrors({
  IDENTITY_EVENT_MALFORMED: {
    message: "The key event does not match the key event format (see docs/identity.md)",
    http: 400,
    exit: 2,
  },
  IDENTITY_SIGNATURE_INVALID: {
    message: "The key event's signature does not verify with the key that must sign it",
    http: 422,
    exit: 1,
  },
  IDENTITY_KEY_NOT_COMMITTED: {
    message: "The rotation's new key is not the one committed by the previous event's nextKeyDigest",
    http: 422,
    exit: 1,
  },
  IDENTITY_EVENT_OUT_OF_ORDER: {
    message: "The key event does not follow the current state (replayed, reordered, or not chained to the previous event)",
    http: 422,
    exit: 1,
  },
  IDENTITY_ID_MISMATCH: {
    message: "The key event belongs to another identity",
    http: 422,
    exit: 1,
  },
  IDENTITY_KEL_TOO_LARGE: {
    message: "The key event log has more events than the declared limit",
    http: 413,
    exit: 2,
  },
  IDENTITY_NAME_INVALID: {
    message: "An identity name is 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit",
    http: 400,
    exit: 2,
  },
  IDENTITY_NAME_TAKEN: {
    message: "The keyring already holds an identity with that name",
    http: 409,
    exit: 2,
  },
  IDENTITY_NOT_FOUND: {
    message: "No such identity in the keyring",
    http: 404,
    exit: 3,
  },
  IDENTITY_KEY_FILE_MODE: {
    message: "A keyring file or directory is refused: readable by others, not yours, or a symlink",
    http: 500,
    exit: 2,
  },
  IDENTITY_KEYRING_CORRUPT: {
    message: "A keyring file is unreadable or inconsistent (bad JSON, a key event log that does not verify, or keys that do not match it)",
    http: 500,
    exit: 1,
  },
  IDENTITY_KEYRING_BUSY: {
    message: "Another process is changing the keyring (its lock file exists)",
    http: 409,
    exit: 3,
  },
  IDENTITY_KEYRING_IO: {
    message: "The keyring could not be read or written",
    http: 500,
    exit: 3,
  },
});

/** Every code of the identity part. */
export type IdentityErrorCode = keyof typeof identityErrors.specs;
