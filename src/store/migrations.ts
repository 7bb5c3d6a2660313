/**
 * The migrations runner: numbered migrations per part, each applied in its own transaction and
 * recorded in the `schema_version` table (one row per applied migration). Parts either pass
 * their list to `store.migrate(part, list)` (the ledger does, from Ledger.open) or register it
 * with `registerMigrations` for the composition root to apply with `migrateRegistered`.
 */
import assert from "node:assert/strict";
import { isNexusError } from "../core/errors.ts";
import type { Migration, SqlExecutor, Store } from "../core/ledger/storage-port.ts";
import { storeErrors } from "./errors.ts";

/** Longest part name. */
const PART_NAME_MAX = 64;
/** Most migrations one part may declare (a bound on the loop, not a plan). */
export const MIGRATIONS_PER_PART_MAX = 1000;
/** Key of the PostgreSQL advisory lock that serialises migrations across processes. */
const PG_MIGRATION_LOCK_KEY = 0x6e657875; // "nexu"
const PART_RE = new RegExp(`^[a-z][a-z0-9_-]{0,${PART_NAME_MAX - 1}}$`);

const SCHEMA_TABLE: Readonly<Record<Store["dialect"], string>> = {
  sqlite:
    "CREATE TABLE IF NOT EXISTS schema_version (part TEXT NOT NULL, version INTEGER NOT NULL, " +
    "name TEXT NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (part, version))",
  postgres:
    "CREATE TABLE IF NOT EXISTS schema_version (part TEXT NOT NULL, version BIGINT NOT NULL, " +
    "name TEXT NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (part, version))",
};

/** Asserts the list is well formed: versions 1..n in order (a programming error otherwise). */
function checkList(part: string, migrations: readonly Migration[]): void {
  assert.ok(PART_RE.test(part), `migration part name ${JSON.stringify(part)} must match ${PART_RE}`);
  assert.ok(migrations.length <= MIGRATIONS_PER_PART_MAX, `part ${part} declares too many migrations`);
  migrations.forEach((m, i) => {
    assert.equal(m.version, i + 1, `part ${part}: migration #${i} must have version ${i + 1}`);
  });
}

async function lockAndCreate(tx: SqlExecutor, dialect: Store["dialect"]): Promise<void> {
  if (dialect === "postgres") await tx.get("SELECT pg_advisory_xact_lock(?)", [PG_MIGRATION_LOCK_KEY]);
  await tx.run(SCHEMA_TABLE[dialect]);
}

/** The version of `part` now recorded (0 when none). */
export async function schemaVersion(db: SqlExecutor, part: string): Promise<number> {
  const row = await db.get<{ v: bigint | null }>("SELECT max(version) AS v FROM schema_version WHERE part = ?", [part]);
  return row?.v === null || row?.v === undefined ? 0 : Number(row.v);
}

/** Applies the pending migrations of `part`; returns the version now in force. */
export async function runMigrations(store: Store, part: string, migrations: readonly Migration[]): Promise<number> {
  checkList(part, migrations);
  const target = migrations.length;
  for (let step = 0; step <= target; step++) {
    const applied = await store.transaction(async (tx) => {
      await lockAndCreate(tx, store.dialect);
      const current = await schemaVersion(tx, part);
      if (current > target) {
        throw storeErrors.make("STORE_SCHEMA_TOO_NEW", `${part} is at version ${current}, this program knows ${target}`);
      }
      const next = migrations[current];
      if (next === undefined) return current;
      try {
        for (const sql of next.up[store.dialect]) await tx.run(sql);
      } catch (e) {
        const why = isNexusError(e) ? e.message : String(e);
        throw storeErrors.make("STORE_MIGRATION_FAILED", `${part} v${next.version} (${next.name}): ${why}`);
      }
      await tx.run("INSERT INTO schema_version (part, version, name, applied_at) VALUES (?, ?, ?, ?)", [
        part,
        next.version,
        next.name,
        new Date().toISOString(),
      ]);
      return -1;
    });
    if (applied >= 0) return applied;
  }
  return target;
}

const registry = new Map<string, readonly Migration[]>();

/** Declares `part`'s migrations for `migrateRegistered` (once per part; same list again is a no-op). */
export function registerMigrations(part: string, migrations: readonly Migration[]): void {
  checkList(part, migrations);
  const known = registry.get(part);
  assert.ok(known === undefined || known === migrations, `migrations for part ${part} registered twice`);
  registry.set(part, migrations);
}

/** Applies every registered part's migrations; returns the version of each part. */
export async function migrateRegistered(store: Store): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [part, list] of registry) out[part] = await store.migrate(part, list);
  return out;
}
