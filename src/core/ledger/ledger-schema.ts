/**
 * The ledger's tables (part "ledger" in schema_version):
 * - ledger_entries(idx, bytes, leaf_hash): the log itself, one row per entry;
 * - ledger_tiles(level, idx, width, hashes): complete-subtree hashes, tiles of 256 (tiles.ts);
 * - ledger_checkpoints(size, note): one signed C2SP checkpoint per committed batch.
 */
import type { Migration } from "./storage-port.ts";

/** The ledger's migrations, in order. */
export const LEDGER_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "entries, tiles, checkpoints",
    up: {
      sqlite: [
        "CREATE TABLE ledger_entries (idx INTEGER PRIMARY KEY, bytes BLOB NOT NULL, leaf_hash BLOB NOT NULL)",
        "CREATE TABLE ledger_tiles (level INTEGER NOT NULL, idx INTEGER NOT NULL, width INTEGER NOT NULL, " +
          "hashes BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID",
        "CREATE TABLE ledger_checkpoints (size INTEGER PRIMARY KEY, note TEXT NOT NULL)",
      ],
      postgres: [
        "CREATE TABLE ledger_entries (idx BIGINT PRIMARY KEY, bytes BYTEA NOT NULL, leaf_hash BYTEA NOT NULL)",
        "CREATE TABLE ledger_tiles (level INTEGER NOT NULL, idx BIGINT NOT NULL, width INTEGER NOT NULL, " +
          "hashes BYTEA NOT NULL, PRIMARY KEY (level, idx))",
        // Hashes do not compress: skip PostgreSQL's compression attempt on every tile write.
        "ALTER TABLE ledger_tiles ALTER COLUMN hashes SET STORAGE EXTERNAL",
        "CREATE TABLE ledger_checkpoints (size BIGINT PRIMARY KEY, note TEXT NOT NULL)",
      ],
    },
  },
];
