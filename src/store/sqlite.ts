/**
 * The embedded driver: one SQLite file through Node's built-in node:sqlite (no native build).
 *
 * - WAL journal with synchronous=FULL: COMMIT fsyncs the WAL, so a resolved transaction is
 *   durable (https://sqlite.org/pragma.html#pragma_synchronous).
 * - Two connections: the writer (every transaction and every non-SELECT statement, serialised by
 *   one in-process lane) and a query-only reader for SELECTs, which in WAL mode sees the last
 *   committed state without waiting for a transaction in flight on the writer.
 * - node:sqlite calls are synchronous; the port is async, so each call is wrapped in a promise.
 *   A transaction spans awaits, which is why non-SELECT statements outside it queue on the lane
 *   instead of blocking on SQLite's busy handler (that would stall the event loop).
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import { isNexusError, type NexusError } from "../core/errors.ts";
import type { Migration, SqlExecutor, SqlParam, Store } from "../core/ledger/storage-port.ts";
import { storeErrors } from "./errors.ts";
import { runMigrations } from "./migrations.ts";
import { Lane, StatementCache, isSelect } from "./shared.ts";

/** How long SQLite waits for another process's lock before STORE_BUSY (busy_timeout). */
export const SQLITE_BUSY_TIMEOUT_MS = 5_000;
/** Longest pause between two attempts to take the write lock. */
const BUSY_POLL_MS_MAX = 25;
/** Prepared statements kept per connection. */
export const SQLITE_STATEMENTS_MAX = 256;

const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
const SQLITE_CORRUPT = 11;
const SQLITE_CONSTRAINT = 19;
const SQLITE_NOTADB = 26;

interface SqliteFailure {
  readonly code?: unknown;
  readonly errcode?: unknown;
  readonly errstr?: unknown;
  readonly message?: unknown;
}

/** Maps a node:sqlite error to a STORE_ error (the SQL text is kept in details, never params). */
export function mapSqliteError(e: unknown, sql: string): NexusError {
  const f = (typeof e === "object" && e !== null ? e : {}) as SqliteFailure;
  const message = typeof f.message === "string" ? f.message : String(e);
  const details = { sql: sql.slice(0, 200), errcode: f.errcode, errstr: f.errstr };
  if (f.code !== "ERR_SQLITE_ERROR" || typeof f.errcode !== "number") {
    return storeErrors.make("STORE_QUERY_FAILED", message, { sql: details.sql });
  }
  switch (f.errcode & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return storeErrors.make("STORE_BUSY", message, details);
    case SQLITE_CONSTRAINT:
      return storeErrors.make("STORE_CONSTRAINT", message, details);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return storeErrors.make("STORE_CORRUPT", message, details);
    default:
      return storeErrors.make("STORE_QUERY_FAILED", message, details);
  }
}

/** One node:sqlite connection with its statement cache. */
class Connection {
  readonly db: DatabaseSync;
  private readonly cache: StatementCache<StatementSync>;

  constructor(path: string, readOnly: boolean) {
    try {
      this.db = new DatabaseSync(path, {
        timeout: SQLITE_BUSY_TIMEOUT_MS,
        readBigInts: true,
        enableForeignKeyConstraints: true,
      });
      this.db.exec("PRAGMA journal_mode = WAL");
      this.db.exec("PRAGMA synchronous = FULL");
      if (readOnly) this.db.exec("PRAGMA query_only = ON");
      // The writer never blocks the event loop in SQLite's busy handler: it polls for the write
      // lock asynchronously in beginImmediate() instead (another handle of this very process may
      // be the holder, and it can only finish if the event loop keeps turning).
      else this.db.exec("PRAGMA busy_timeout = 0");
    } catch (e) {
      throw mapSqliteError(e, "open");
    }
    this.cache = new StatementCache(SQLITE_STATEMENTS_MAX);
  }

  private statement(sql: string): StatementSync {
    const hit = this.cache.get(sql);
    if (hit) return hit;
    const st = this.db.prepare(sql);
    this.cache.set(sql, st);
    return st;
  }

  run(sql: string, params: readonly SqlParam[]): { changes: number } {
    try {
      const r = this.statement(sql).run(...(params as SQLInputValue[]));
      return { changes: Number(r.changes) };
    } catch (e) {
      throw mapSqliteError(e, sql);
    }
  }

  all<T>(sql: string, params: readonly SqlParam[]): T[] {
    try {
      return this.statement(sql).all(...(params as SQLInputValue[])) as T[];
    } catch (e) {
      throw mapSqliteError(e, sql);
    }
  }

  get<T>(sql: string, params: readonly SqlParam[]): T | undefined {
    try {
      return this.statement(sql).get(...(params as SQLInputValue[])) as T | undefined;
    } catch (e) {
      throw mapSqliteError(e, sql);
    }
  }

  exec(sql: string): void {
    try {
      this.db.exec(sql);
    } catch (e) {
      throw mapSqliteError(e, sql);
    }
  }

  /** BEGIN IMMEDIATE, retrying on SQLITE_BUSY with backoff until the busy timeout. */
  async beginImmediate(): Promise<void> {
    const deadline = Date.now() + SQLITE_BUSY_TIMEOUT_MS;
    for (let waitMs = 1; ; waitMs = Math.min(waitMs * 2, BUSY_POLL_MS_MAX)) {
      try {
        this.exec("BEGIN IMMEDIATE");
        return;
      } catch (e) {
        if (!isNexusError(e, "STORE_BUSY") || Date.now() + waitMs > deadline) throw e;
      }
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
  }

  close(): void {
    this.cache.clear();
    if (this.db.isOpen) this.db.close();
  }
}

/** Creates the file (mode 0600) and its folder, so the WAL and SHM files inherit the mode. */
function prepareFile(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  if (!existsSync(path)) {
    closeSync(openSync(path, "a", 0o600));
    chmodSync(path, 0o600);
  }
}

/** The SQLite driver behind the Store port. */
export class SqliteStore implements Store {
  readonly dialect = "sqlite" as const;
  readonly path: string;
  private readonly writer: Connection;
  private readonly reader: Connection;
  private readonly lane = new Lane();
  private closed = false;

  private constructor(path: string, writer: Connection, reader: Connection) {
    this.path = path;
    this.writer = writer;
    this.reader = reader;
  }

  /** Opens (creating when absent) the database file at `path`. */
  static open(path: string): SqliteStore {
    prepareFile(path);
    const writer = new Connection(path, false);
    let reader: Connection;
    try {
      reader = new Connection(path, true);
    } catch (e) {
      writer.close();
      throw e;
    }
    return new SqliteStore(path, writer, reader);
  }

  private live(): void {
    if (this.closed) throw storeErrors.make("STORE_CLOSED");
  }

  /** Runs a write outside a transaction, queued on the writer lane. */
  async run(sql: string, params: readonly SqlParam[] = []): Promise<{ changes: number }> {
    this.live();
    return this.lane.run(async () => this.autocommit(() => this.writer.run(sql, params)));
  }

  /** One statement in its own IMMEDIATE transaction (so the lock wait never blocks the loop). */
  private async autocommit<T>(job: () => T): Promise<T> {
    this.live();
    await this.writer.beginImmediate();
    try {
      const value = job();
      this.writer.exec("COMMIT");
      return value;
    } catch (e) {
      if (this.writer.db.isTransaction) this.writer.exec("ROLLBACK");
      throw e;
    }
  }

  /** SELECTs read the committed state on the reader; other statements queue on the writer lane. */
  async all<T>(sql: string, params: readonly SqlParam[] = []): Promise<T[]> {
    this.live();
    if (isSelect(sql)) return this.reader.all<T>(sql, params);
    return this.lane.run(async () => this.autocommit(() => this.writer.all<T>(sql, params)));
  }

  /** Like `all`, first row only. */
  async get<T>(sql: string, params: readonly SqlParam[] = []): Promise<T | undefined> {
    this.live();
    if (isSelect(sql)) return this.reader.get<T>(sql, params);
    return this.lane.run(async () => this.autocommit(() => this.writer.get<T>(sql, params)));
  }

  /** BEGIN IMMEDIATE (takes the write lock now), run `fn`, COMMIT (fsynced) or ROLLBACK. */
  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    this.live();
    return this.lane.run(async () => {
      this.live();
      await this.writer.beginImmediate();
      const tx = new SqliteTx(this.writer);
      try {
        const value = await fn(tx);
        tx.end();
        this.writer.exec("COMMIT");
        return value;
      } catch (e) {
        tx.end();
        if (this.writer.db.isTransaction) this.writer.exec("ROLLBACK");
        throw e;
      }
    });
  }

  /** Applies `part`'s pending migrations. */
  async migrate(part: string, migrations: readonly Migration[]): Promise<number> {
    return runMigrations(this, part, migrations);
  }

  /** Waits for the writer lane to drain, then closes both connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.lane.drain();
    this.reader.close();
    this.writer.close();
  }
}

/** The executor handed to a transaction's function; unusable once the transaction ended. */
class SqliteTx implements SqlExecutor {
  private readonly conn: Connection;
  private ended = false;

  constructor(conn: Connection) {
    this.conn = conn;
  }

  end(): void {
    this.ended = true;
  }

  private live(): void {
    if (this.ended) throw storeErrors.make("STORE_CLOSED", "the transaction has ended");
  }

  async run(sql: string, params: readonly SqlParam[] = []): Promise<{ changes: number }> {
    this.live();
    return this.conn.run(sql, params);
  }

  async all<T>(sql: string, params: readonly SqlParam[] = []): Promise<T[]> {
    this.live();
    return this.conn.all<T>(sql, params);
  }

  async get<T>(sql: string, params: readonly SqlParam[] = []): Promise<T | undefined> {
    this.live();
    return this.conn.get<T>(sql, params);
  }
}
