/** The store part: the Store port and its two drivers behind `openStore`. */
import { join } from "node:path";
import type { Store } from "../core/ledger/storage-port.ts";
import { storeErrors } from "./errors.ts";
import { PostgresStore } from "./postgres.ts";
import { SqliteStore } from "./sqlite.ts";

export type { Dialect, Migration, SqlExecutor, SqlParam, SqlValue, Store } from "./types.ts";
export { storeErrors, type StoreErrorCode } from "./errors.ts";
export { registerMigrations, migrateRegistered, runMigrations, schemaVersion } from "./migrations.ts";
export { PostgresStore, rewritePlaceholders, type PostgresOptions } from "./postgres.ts";
export { SqliteStore } from "./sqlite.ts";

/** File name of the embedded database inside the data directory. */
export const SQLITE_FILE_NAME = "nexus.db";

/** Where to open the store. */
export interface OpenStoreOptions {
  /** postgres://... or postgresql://... (PostgreSQL), sqlite:PATH or file:PATH (a SQLite file). */
  readonly url?: string | undefined;
  /** The data directory: SQLite in `<dataDir>/nexus.db` when no URL is given. */
  readonly dataDir?: string | undefined;
  /** PostgreSQL only: a schema to create and use (isolates test runs). */
  readonly schema?: string | undefined;
}

/** Opens PostgreSQL when `url` says so, else SQLite in the data directory (the embedded default). */
export async function openStore(opts: OpenStoreOptions): Promise<Store> {
  const url = opts.url;
  if (url !== undefined && url !== "") {
    if (/^postgres(ql)?:\/\//i.test(url)) {
      return PostgresStore.open({ url, ...(opts.schema === undefined ? {} : { schema: opts.schema }) });
    }
    const file = /^(sqlite|file):(.+)$/i.exec(url);
    if (file?.[2] !== undefined) return SqliteStore.open(file[2]);
    throw storeErrors.make("STORE_URL_INVALID", "use postgres://..., sqlite:PATH or file:PATH");
  }
  if (opts.dataDir === undefined || opts.dataDir === "") {
    throw storeErrors.make("STORE_URL_INVALID", "neither a database URL nor a data directory was given");
  }
  return SqliteStore.open(join(opts.dataDir, SQLITE_FILE_NAME));
}
