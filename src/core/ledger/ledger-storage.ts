/**
 * The ledger's SQL, in one place: every statement the log runs against the Store port. Rows read
 * back are hostile (a person with database access may have edited them), so each reader checks
 * types and returns undefined or throws LEDGER_STORAGE_CORRUPT instead of trusting them.
 */
import { ledgerLogErrors } from "./ledger-errors.ts";
import type { SqlExecutor, SqlParam } from "./storage-port.ts";
import { decodeTile, type EdgeTile, encodeEdge, TILE_WIDTH, type TileData, type TileId } from "./tiles.ts";

/** An entry row as stored. */
export interface EntryRow {
  readonly index: bigint;
  readonly bytes: Uint8Array;
  readonly leafHash: Uint8Array;
}

/** Rows per multi-row INSERT, largest first (few distinct statements, each cached by the driver). */
const INSERT_CHUNKS = [256, 64, 16, 4, 1] as const;

function insertEntriesSql(rows: number): string {
  return "INSERT INTO ledger_entries (idx, bytes, leaf_hash) VALUES " + Array(rows).fill("(?, ?, ?)").join(", ");
}
const INSERT_SQL = new Map<number, string>(INSERT_CHUNKS.map((n) => [n, insertEntriesSql(n)]));

/** Inserts entries with multi-row statements. */
export async function insertEntries(tx: SqlExecutor, rows: readonly EntryRow[]): Promise<void> {
  let at = 0;
  for (const chunk of INSERT_CHUNKS) {
    const sql = INSERT_SQL.get(chunk) ?? insertEntriesSql(chunk);
    while (rows.length - at >= chunk) {
      const params: SqlParam[] = [];
      for (let i = at; i < at + chunk; i++) {
        const r = rows[i];
        if (r !== undefined) params.push(r.index, r.bytes, r.leafHash);
      }
      await tx.run(sql, params);
      at += chunk;
    }
  }
}

/** Stores tiles that just became full (each is written once, never updated). */
export async function insertTiles(tx: SqlExecutor, tiles: readonly EdgeTile[]): Promise<void> {
  for (const t of tiles) {
    const data = encodeEdge(t);
    await tx.run("INSERT INTO ledger_tiles (level, idx, width, hashes) VALUES (?, ?, ?, ?)", [t.id.level, t.id.index, data.width, data.bytes]);
  }
}

function fullTile(width: unknown, hashes: unknown, what: string): TileData {
  const t = decodeTile(width, hashes);
  if (t === undefined || t.width !== TILE_WIDTH) throw ledgerLogErrors.make("LEDGER_STORAGE_CORRUPT", `tile ${what} is malformed`);
  return t;
}

/** Reads one (full) tile; undefined when absent, LEDGER_STORAGE_CORRUPT when malformed. */
export async function readTile(db: SqlExecutor, id: TileId): Promise<TileData | undefined> {
  const row = await db.get<{ width: unknown; hashes: unknown }>(
    "SELECT width, hashes FROM ledger_tiles WHERE level = ? AND idx = ?",
    [id.level, id.index],
  );
  return row === undefined ? undefined : fullTile(row.width, row.hashes, `${id.level}/${id.index}`);
}

/** Most tiles read by one query (a proof needs at most two per tile level). */
export const TILES_PER_QUERY_MAX = 2 * 8;

/** Reads several (full) tiles in one query; absent ones are missing from the map (key "level/idx"). */
export async function readTiles(db: SqlExecutor, ids: readonly TileId[]): Promise<Map<string, TileData>> {
  const out = new Map<string, TileData>();
  for (let at = 0; at < ids.length; at += TILES_PER_QUERY_MAX) {
    const part = ids.slice(at, at + TILES_PER_QUERY_MAX);
    const where = part.map(() => "(level = ? AND idx = ?)").join(" OR ");
    const rows = await db.all<{ level: unknown; idx: unknown; width: unknown; hashes: unknown }>(
      `SELECT level, idx, width, hashes FROM ledger_tiles WHERE ${where}`,
      part.flatMap((t) => [t.level, t.index]),
    );
    for (const r of rows) out.set(`${String(r.level)}/${String(r.idx)}`, fullTile(r.width, r.hashes, `${String(r.level)}/${String(r.idx)}`));
  }
  return out;
}

/** Full tiles [from, to) of a tile level, all present, else LEDGER_STORAGE_CORRUPT. */
export async function readTileRange(db: SqlExecutor, level: number, from: bigint, to: bigint): Promise<TileData[]> {
  const rows = await db.all<{ idx: unknown; width: unknown; hashes: unknown }>(
    "SELECT idx, width, hashes FROM ledger_tiles WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx",
    [level, from, to],
  );
  if (BigInt(rows.length) !== to - from || rows.some((r, i) => r.idx !== from + BigInt(i))) {
    throw ledgerLogErrors.make("LEDGER_STORAGE_CORRUPT", `tiles ${level}/${from}..${to} are missing`);
  }
  return rows.map((r) => fullTile(r.width, r.hashes, `${level}/${String(r.idx)}`));
}

/** Leaf hashes of entries [from, to), all present, else LEDGER_STORAGE_CORRUPT. */
export async function readLeafHashes(db: SqlExecutor, from: bigint, to: bigint): Promise<Uint8Array[]> {
  const rows = await db.all<{ idx: unknown; leaf_hash: unknown }>(
    "SELECT idx, leaf_hash FROM ledger_entries WHERE idx >= ? AND idx < ? ORDER BY idx",
    [from, to],
  );
  const out: Uint8Array[] = [];
  for (const r of rows) {
    const at = from + BigInt(out.length);
    if (r.idx !== at || !(r.leaf_hash instanceof Uint8Array)) {
      throw ledgerLogErrors.make("LEDGER_STORAGE_CORRUPT", `entry ${at} is missing or malformed`);
    }
    out.push(r.leaf_hash);
  }
  if (BigInt(out.length) !== to - from) throw ledgerLogErrors.make("LEDGER_STORAGE_CORRUPT", `entries ${from}..${to} are missing`);
  return out;
}

/** Stores a batch's signed checkpoint. */
export async function insertCheckpoint(tx: SqlExecutor, size: bigint, note: string): Promise<void> {
  await tx.run("INSERT INTO ledger_checkpoints (size, note) VALUES (?, ?)", [size, note]);
}

/** A checkpoint row as stored (the note is checked by the caller). */
export interface CheckpointRow {
  readonly size: bigint;
  readonly note: string;
}

function checkpointRow(r: { size: unknown; note: unknown }): CheckpointRow {
  if (typeof r.size !== "bigint" || typeof r.note !== "string") {
    throw ledgerLogErrors.make("LEDGER_STORAGE_CORRUPT", "a checkpoint row is malformed");
  }
  return { size: r.size, note: r.note };
}

/** The checkpoint of the largest size, if any. */
export async function latestCheckpoint(db: SqlExecutor): Promise<CheckpointRow | undefined> {
  const r = await db.get<{ size: unknown; note: unknown }>("SELECT size, note FROM ledger_checkpoints ORDER BY size DESC LIMIT 1");
  return r === undefined ? undefined : checkpointRow(r);
}

/** The checkpoint stored for exactly `size`, if any. */
export async function checkpointAt(db: SqlExecutor, size: bigint): Promise<CheckpointRow | undefined> {
  const r = await db.get<{ size: unknown; note: unknown }>("SELECT size, note FROM ledger_checkpoints WHERE size = ?", [size]);
  return r === undefined ? undefined : checkpointRow(r);
}

/** Checkpoints with size above `after`, ascending, at most `limit` (raw: the verifier judges them). */
export async function checkpointPage(db: SqlExecutor, after: bigint, limit: number): Promise<{ size: unknown; note: unknown }[]> {
  return db.all("SELECT size, note FROM ledger_checkpoints WHERE size > ? ORDER BY size LIMIT ?", [after, limit]);
}

/** The largest entry index stored, or -1 when the table is empty. */
export async function maxEntryIndex(db: SqlExecutor): Promise<bigint> {
  const r = await db.get<{ m: unknown }>("SELECT max(idx) AS m FROM ledger_entries");
  return typeof r?.m === "bigint" ? r.m : -1n;
}

/** Raw entry rows with from <= idx < to, ascending, at most `limit` (the verifier judges them). */
export async function entryPage(db: SqlExecutor, from: bigint, to: bigint, limit: number): Promise<{ idx: unknown; bytes: unknown; leaf_hash: unknown }[]> {
  return db.all("SELECT idx, bytes, leaf_hash FROM ledger_entries WHERE idx >= ? AND idx < ? ORDER BY idx LIMIT ?", [from, to, limit]);
}

/** Entry rows [from, to) which must all be present and well formed, else LEDGER_STORAGE_CORRUPT. */
export async function readEntries(db: SqlExecutor, from: bigint, to: bigint): Promise<EntryRow[]> {
  const rows = await entryPage(db, from, to, Number(to - from));
  const out: EntryRow[] = [];
  let expect = from;
  for (const r of rows) {
    if (r.idx !== expect || !(r.bytes instanceof Uint8Array) || !(r.leaf_hash instanceof Uint8Array)) {
      throw ledgerLogErrors.make("LEDGER_STORAGE_CORRUPT", `entry ${expect} is missing or malformed`);
    }
    out.push({ index: expect, bytes: r.bytes, leafHash: r.leaf_hash });
    expect++;
  }
  if (expect !== to) throw ledgerLogErrors.make("LEDGER_STORAGE_CORRUPT", `entry ${expect} is missing`);
  return out;
}
