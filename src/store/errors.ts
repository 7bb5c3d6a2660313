/** The store's error codes (listed in docs/errors.md under "store"). */
import { defineErrors } from "../core/errors.ts";

/** Errors raised by the storage drivers and the migrations runner. */
export const storeErrors = defineErrors({
  STORE_URL_INVALID: {
    message: "The database URL is not valid (expected postgres://..., postgresql://..., sqlite:PATH or file:PATH)",
    http: 500,
    exit: 2,
  },
  STORE_UNAVAILABLE: {
    message: "The database cannot be reached or its connection was lost; retry later",
    http: 503,
    exit: 3,
  },
  STORE_BUSY: { message: "The database stayed locked by another writer past the busy timeout; retry", http: 503, exit: 3 },
  STORE_CONSTRAINT: { message: "The write breaks a uniqueness or integrity constraint", http: 409, exit: 1 },
  STORE_CONFLICT: { message: "The transaction conflicted with another one and was rolled back; retry", http: 503, exit: 3 },
  STORE_QUERY_FAILED: { message: "The database rejected a statement", http: 500, exit: 70 },
  STORE_CORRUPT: { message: "The database file is damaged or is not a database", http: 500, exit: 1 },
  STORE_CLOSED: { message: "The store was used after it was closed", http: 500, exit: 70 },
  STORE_SCHEMA_TOO_NEW: {
    message: "The database schema is newer than this program; upgrade the program",
    http: 500,
    exit: 3,
  },
  STORE_MIGRATION_FAILED: { message: "A schema migration failed and was rolled back", http: 500, exit: 70 },
});

/** A code of the store's table. */
export type StoreErrorCode = keyof typeof storeErrors.specs;
