/**
 * Error codes of the ledger log (sequencer, reads, proofs, storage checks), listed in
 * docs/errors.md under "ledger log". Malformed indices and sizes use LEDGER_RANGE from errors.ts.
 */
import { defineErrors } from "../errors.ts";

/** Errors raised by Ledger (ledger.ts) and its storage checks. */
export const ledgerLogErrors = defineErrors({
  LEDGER_INDEX_OUT_OF_RANGE: { message: "No entry at that index: it is at or beyond the tree size", http: 404, exit: 2 },
  LEDGER_SIZE_OUT_OF_RANGE: { message: "That tree size is beyond the size of the log", http: 404, exit: 2 },
  LEDGER_ENTRY_TOO_LARGE: { message: "The entry is larger than the ledger accepts", http: 413, exit: 2 },
  LEDGER_WORK_TOO_LARGE: { message: "One submitted work appended more entries than a work may", http: 413, exit: 2 },
  LEDGER_OVERLOADED: { message: "Too many works or subscribers are waiting; retry later", http: 503, exit: 3 },
  LEDGER_CLOSED: { message: "The ledger is closed", http: 503, exit: 3 },
  LEDGER_WORK_TIMEOUT: { message: "A submitted work ran past its time limit and was rolled back", http: 503, exit: 3 },
  LEDGER_CONTEXT_CLOSED: { message: "An append context was used after its work had ended", http: 500, exit: 70 },
  LEDGER_STORAGE_CORRUPT: {
    message: "The stored log fails a consistency check; run `nexus ledger verify`",
    http: 500,
    exit: 1,
  },
  LEDGER_SEQUENCER_CONFLICT: {
    message: "Another sequencer appended to this store; only one process may write the ledger",
    http: 409,
    exit: 3,
  },
  LEDGER_ORIGIN_MISMATCH: { message: "The store holds a log with another origin", http: 500, exit: 2 },
  LEDGER_API_UNREACHABLE: { message: "The ledger API could not be reached", http: 502, exit: 3 },
  LEDGER_API_INVALID_RESPONSE: {
    message: "The ledger API answered something that does not verify or is malformed",
    http: 502,
    exit: 1,
  },
});

/** A code of the ledger log's table. */
export type LedgerLogErrorCode = keyof typeof ledgerLogErrors.specs;
