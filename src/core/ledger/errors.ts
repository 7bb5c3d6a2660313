/**
 * Error codes of the ledger's pure math: Merkle ranges and proofs (merkle.ts) and signed notes and
 * checkpoints (note.ts). Listed in docs/errors.md under "## ledger". Malformed input is bad input
 * (exit 2); a note whose signatures do not check is a failed check (exit 1). A proof that does not
 * verify is not an error at all: the verifiers return false.
 */
import { defineErrors } from "../errors.ts";

/** The ledger math's error table. */
export const ledgerErrors = defineErrors({
  LEDGER_RANGE: {
    message: "Index or tree size out of range (negative, index not below size, first size above second, or beyond 2^64-1)",
    http: 400,
    exit: 2,
  },
  LEDGER_HASH_INVALID: {
    message: "A hash is not a 32-byte SHA-256 value, or a hash list does not match what the plan or range needs",
    http: 400,
    exit: 2,
  },
  LEDGER_NOTE_MALFORMED: {
    message: "The signed note or checkpoint does not follow C2SP signed-note / tlog-checkpoint syntax",
    http: 400,
    exit: 2,
  },
  LEDGER_NOTE_TOO_LARGE: {
    message: "The signed note is larger than the declared limit (bytes, lines or signatures)",
    http: 413,
    exit: 2,
  },
  LEDGER_NOTE_KEY_MALFORMED: {
    message: "The note key is malformed: bad name, key hash, algorithm or public key, or two keys share a name and key hash",
    http: 400,
    exit: 2,
  },
  LEDGER_NOTE_UNVERIFIED: {
    message: "No signature of the note is from a known key: the note is not verified",
    http: 422,
    exit: 1,
  },
  LEDGER_NOTE_SIGNATURE_INVALID: {
    message: "A signature of the note by a known key does not verify: the note is rejected",
    http: 422,
    exit: 1,
  },
});

/** Every code of the ledger math. */
export type LedgerErrorCode = keyof typeof ledgerErrors.specs;
