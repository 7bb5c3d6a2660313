/**
 * The storage port: the small SQL interface core parts (the ledger first, the pipeline's
 * projections later) are written against. The drivers live in src/store (SQLite, PostgreSQL) and
 * pass one conformance suite (test/store/conformance.ts); core never imports them.
 *
 * SQL is written portably with `?` placeholders (the PostgreSQL driver rewrites them to $n).
 * Every integer comes back as bigint (SQLite `readBigInts`, PostgreSQL int2/int4/int8 parsers);
 * BLOB/bytea columns come back as plain Uint8Array; TEXT as string.
 */

/** A value bound to a `?` placeholder. */
export type SqlParam = string | number | bigint | Uint8Array | null;

/** A value read back from a column. */
export type SqlValue = string | number | bigint | Uint8Array | null;

/** Which SQL the store speaks, for the few statements that differ (DDL types, locks). */
export type Dialect = "sqlite" | "postgres";

/** Runs statements: on the store (autocommit) or inside a transaction. */
export interface SqlExecutor {
  /** Runs a statement that returns no rows; `changes` counts the rows written. */
  run(sql: string, params?: readonly SqlParam[]): Promise<{ changes: number }>;
  /** Runs a query and returns every row. */
  all<T>(sql: string, params?: readonly SqlParam[]): Promise<T[]>;
  /** Runs a query and returns its first row, or undefined. */
  get<T>(sql: string, params?: readonly SqlParam[]): Promise<T | undefined>;
}

/** One numbered schema change of a part: `up[dialect]` runs in order, in one transaction. */
export interface Migration {
  /** 1, 2, 3... contiguous within a part. */
  readonly version: number;
  /** A short name recorded in schema_version (e.g. "entries, tiles, checkpoints"). */
  readonly name: string;
  /** The statements, one per string, for each dialect. */
  readonly up: Readonly<Record<Dialect, readonly string[]>>;
}

/** A database behind the port. */
export interface Store extends SqlExecutor {
  readonly dialect: Dialect;
  /**
   * One writer at a time: transactions are serialised in the process; the commit is durable
   * (fsynced by SQLite, flushed by PostgreSQL) before the promise resolves. When `fn` throws,
   * the transaction is rolled back and the error is rethrown.
   */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /**
   * Brings `part`'s tables to the last of `migrations` (recorded in the schema_version table);
   * returns the version now in force. Safe to call from several processes at once.
   */
  migrate(part: string, migrations: readonly Migration[]): Promise<number>;
  /** Waits for the running transaction, then closes every connection. */
  close(): Promise<void>;
}
