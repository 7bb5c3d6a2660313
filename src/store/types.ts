/** The Store port, declared in core (src/core/ledger/storage-port.ts) so core never imports drivers. */
export type { Dialect, Migration, SqlExecutor, SqlParam, SqlValue, Store } from "../core/ledger/storage-port.ts";
