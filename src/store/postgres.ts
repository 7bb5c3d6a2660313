/**
 * The scale-out driver: PostgreSQL through `pg`.
 *
 * - A pool serves autocommit statements; one dedicated connection (not taken from the pool, so
 *   readers can never starve it) runs the writer's transactions, serialised by one lane.
 * - Portable `?` placeholders are rewritten to `$1..$n`, skipping string literals, quoted
 *   identifiers, comments and dollar-quoted bodies. (So the jsonb `?` operators are unavailable:
 *   use jsonb_exists() instead.)
 * - int2/int4/int8 are parsed to bigint and bytea to a plain Uint8Array, as SQLite returns them.
 * - COMMIT returns only once PostgreSQL has flushed the commit record (synchronous_commit=on, the
 *   default); a COMMIT that PostgreSQL turned into ROLLBACK (aborted transaction) is an error.
 */
import pg from "pg";
import type { NexusError } from "../core/errors.ts";
import { isNexusError } from "../core/errors.ts";
import type { Migration, SqlExecutor, SqlParam, Store } from "../core/ledger/storage-port.ts";
import { storeErrors } from "./errors.ts";
import { runMigrations } from "./migrations.ts";
import { Lane, StatementCache } from "./shared.ts";

/** Connections in the read pool. */
export const PG_POOL_SIZE = 8;
/** Longest wait for a connection. */
export const PG_CONNECT_TIMEOUT_MS = 10_000;
/** Server-side limit on one statement. */
export const PG_STATEMENT_TIMEOUT_MS = 60_000;
/** Rewritten statements remembered. */
export const PG_REWRITES_MAX = 512;
/** Longest SQL text accepted by the rewriter. */
export const PG_SQL_CHARS_MAX = 1_000_000;

const OID_BYTEA = 17;
const OID_INT8 = 20;
const OID_INT2 = 21;
const OID_INT4 = 23;
const SCHEMA_RE = /^[a-z_][a-z0-9_]{0,62}$/;

/** A rewritten statement: `$n` text and how many placeholders it has. */
export interface Rewritten {
  readonly text: string;
  readonly count: number;
}

/** Length of the dollar-quote tag starting at `i` (`$tag$`), or 0 when none starts there. */
function dollarTag(sql: string, i: number): number {
  const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i, i + 66));
  return m ? m[0].length : 0;
}

/** Index just past the quoted run opening at `i` with `quote` ('' and "" escape themselves). */
function skipQuoted(sql: string, i: number, quote: string, backslash: boolean): number {
  let j = i + 1;
  while (j < sql.length) {
    const c = sql[j];
    if (backslash && c === "\\") j += 2;
    else if (c === quote && sql[j + 1] === quote) j += 2;
    else if (c === quote) return j + 1;
    else j++;
  }
  return j;
}

/** Index just past the (nestable, per PostgreSQL) block comment opening at `i`. */
function skipBlockComment(sql: string, i: number): number {
  let depth = 0;
  let j = i;
  while (j < sql.length) {
    if (sql.startsWith("/*", j)) {
      depth++;
      j += 2;
    } else if (sql.startsWith("*/", j)) {
      depth--;
      j += 2;
      if (depth === 0) return j;
    } else j++;
  }
  return j;
}

/** Index just past the lexical run starting at `i` that may not hold placeholders, or `i`. */
function skipInert(sql: string, i: number): number {
  const c = sql[i];
  if (c === "'") {
    const prev = sql[i - 1];
    const escaped = (prev === "E" || prev === "e") && !/[A-Za-z0-9_]/.test(sql[i - 2] ?? "");
    return skipQuoted(sql, i, "'", escaped);
  }
  if (c === '"') return skipQuoted(sql, i, '"', false);
  if (c === "-" && sql[i + 1] === "-") {
    const nl = sql.indexOf("\n", i);
    return nl < 0 ? sql.length : nl + 1;
  }
  if (c === "/" && sql[i + 1] === "*") return skipBlockComment(sql, i);
  if (c === "$" && !/[A-Za-z0-9_]/.test(sql[i - 1] ?? "")) {
    const tagLen = dollarTag(sql, i);
    if (tagLen > 0) {
      const end = sql.indexOf(sql.slice(i, i + tagLen), i + tagLen);
      return end < 0 ? sql.length : end + tagLen;
    }
  }
  return i;
}

/** Rewrites `?` placeholders to `$1..$n` outside literals, identifiers and comments. */
export function rewritePlaceholders(sql: string): Rewritten {
  if (sql.length > PG_SQL_CHARS_MAX) throw storeErrors.make("STORE_QUERY_FAILED", "statement text too long");
  let out = "";
  let count = 0;
  let i = 0;
  let from = 0;
  while (i < sql.length) {
    const next = skipInert(sql, i);
    if (next !== i) {
      i = next;
      continue;
    }
    if (sql[i] === "?") {
      out += sql.slice(from, i) + "$" + String(++count);
      from = i + 1;
    }
    i++;
  }
  return { text: out + sql.slice(from), count };
}

/** bytea in hex output format (PostgreSQL 9.0+ default) to a plain Uint8Array. */
function parseBytea(text: string): Uint8Array {
  if (text.startsWith("\\x")) return new Uint8Array(Buffer.from(text.slice(2), "hex"));
  const legacy = pg.types.getTypeParser(OID_BYTEA, "text") as (s: string) => Buffer;
  return new Uint8Array(legacy(text));
}

const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") => {
    if (format === "binary") return pg.types.getTypeParser(oid, "binary");
    if (oid === OID_INT8 || oid === OID_INT4 || oid === OID_INT2) return (v: string) => BigInt(v);
    if (oid === OID_BYTEA) return parseBytea;
    return pg.types.getTypeParser(oid, "text");
  }) as pg.CustomTypesConfig["getTypeParser"],
};

function toPgParam(p: SqlParam): unknown {
  if (p instanceof Uint8Array) return Buffer.from(p.buffer, p.byteOffset, p.byteLength);
  if (typeof p === "bigint") return p.toString();
  return p;
}

interface PgFailure {
  readonly code?: unknown;
  readonly message?: unknown;
}

const NET_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH"]);

/** Maps a `pg` or socket error to a STORE_ error by SQLSTATE class. */
export function mapPgError(e: unknown, sql: string): NexusError {
  if (isNexusError(e)) return e;
  const f = (typeof e === "object" && e !== null ? e : {}) as PgFailure;
  const message = typeof f.message === "string" ? f.message : String(e);
  const code = typeof f.code === "string" ? f.code : "";
  const details = { sql: sql.slice(0, 200), sqlstate: code };
  if (NET_CODES.has(code) || /Connection terminated|timeout exceeded when trying to connect/i.test(message)) {
    return storeErrors.make("STORE_UNAVAILABLE", message, details);
  }
  if (code.startsWith("23")) return storeErrors.make("STORE_CONSTRAINT", message, details);
  if (code === "40001" || code === "40P01") return storeErrors.make("STORE_CONFLICT", message, details);
  if (code === "55P03" || code === "57014") return storeErrors.make("STORE_BUSY", message, details);
  if (/^(08|28|3D|53|57P)/.test(code)) return storeErrors.make("STORE_UNAVAILABLE", message, details);
  if (code === "XX001" || code === "XX002") return storeErrors.make("STORE_CORRUPT", message, details);
  return storeErrors.make("STORE_QUERY_FAILED", message, details);
}

/** Options of the PostgreSQL driver. */
export interface PostgresOptions {
  readonly url: string;
  /** Schema to create (when absent) and put first on search_path, e.g. one per test run. */
  readonly schema?: string;
}

function clientConfig(opts: PostgresOptions): pg.ClientConfig {
  let parsed: URL;
  try {
    parsed = new URL(opts.url);
  } catch {
    throw storeErrors.make("STORE_URL_INVALID", "not a URL");
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    throw storeErrors.make("STORE_URL_INVALID", `scheme ${parsed.protocol}`);
  }
  if (opts.schema !== undefined && !SCHEMA_RE.test(opts.schema)) {
    throw storeErrors.make("STORE_URL_INVALID", "schema must match [a-z_][a-z0-9_]*");
  }
  return {
    connectionString: opts.url,
    types: TYPES,
    connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS,
    statement_timeout: PG_STATEMENT_TIMEOUT_MS,
    ...(opts.schema === undefined ? {} : { options: `-c search_path=${opts.schema}` }),
  };
}

/** Runs one statement on a `pg` client or pool, with rewriting and error mapping. */
async function query(db: pg.Pool | pg.Client, rewrites: StatementCache<Rewritten>, sql: string, params: readonly SqlParam[]): Promise<pg.QueryResult> {
  let rw = rewrites.get(sql);
  if (!rw) {
    rw = rewritePlaceholders(sql);
    rewrites.set(sql, rw);
  }
  if (rw.count !== params.length) {
    throw storeErrors.make("STORE_QUERY_FAILED", `${rw.count} placeholders but ${params.length} parameters`, {
      sql: sql.slice(0, 200),
    });
  }
  try {
    return await db.query({ text: rw.text, values: params.map(toPgParam) });
  } catch (e) {
    throw mapPgError(e, sql);
  }
}

/** The PostgreSQL driver behind the Store port. */
export class PostgresStore implements Store {
  readonly dialect = "postgres" as const;
  private readonly config: pg.ClientConfig;
  private readonly pool: pg.Pool;
  private readonly lane = new Lane();
  private readonly rewrites = new StatementCache<Rewritten>(PG_REWRITES_MAX);
  private writer: pg.Client | undefined;
  private closed = false;

  private constructor(config: pg.ClientConfig) {
    this.config = config;
    this.pool = new pg.Pool({ ...config, max: PG_POOL_SIZE });
    // An idle client losing its server must not crash the process; the next query reconnects.
    this.pool.on("error", () => undefined);
  }

  /** Connects (failing fast with STORE_UNAVAILABLE) and creates `schema` when asked. */
  static async open(opts: PostgresOptions): Promise<PostgresStore> {
    const config = clientConfig(opts);
    if (opts.schema !== undefined) {
      const boot = new pg.Client({ ...config, options: undefined });
      boot.on("error", () => undefined);
      try {
        await boot.connect();
        await boot.query(`CREATE SCHEMA IF NOT EXISTS "${opts.schema}"`);
      } catch (e) {
        throw mapPgError(e, "CREATE SCHEMA");
      } finally {
        await boot.end().catch(() => undefined);
      }
    }
    const store = new PostgresStore(config);
    try {
      await store.get("SELECT 1 AS one");
    } catch (e) {
      await store.close();
      throw e;
    }
    return store;
  }

  private live(): void {
    if (this.closed) throw storeErrors.make("STORE_CLOSED");
  }

  async run(sql: string, params: readonly SqlParam[] = []): Promise<{ changes: number }> {
    this.live();
    const r = await query(this.pool, this.rewrites, sql, params);
    return { changes: r.rowCount ?? 0 };
  }

  async all<T>(sql: string, params: readonly SqlParam[] = []): Promise<T[]> {
    this.live();
    return (await query(this.pool, this.rewrites, sql, params)).rows as T[];
  }

  async get<T>(sql: string, params: readonly SqlParam[] = []): Promise<T | undefined> {
    this.live();
    return (await query(this.pool, this.rewrites, sql, params)).rows[0] as T | undefined;
  }

  private async writerClient(): Promise<pg.Client> {
    if (this.writer) return this.writer;
    const c = new pg.Client(this.config);
    c.on("error", () => {
      if (this.writer === c) this.writer = undefined;
    });
    try {
      await c.connect();
    } catch (e) {
      throw mapPgError(e, "connect");
    }
    this.writer = c;
    return c;
  }

  private dropWriter(): void {
    const c = this.writer;
    this.writer = undefined;
    void c?.end().catch(() => undefined);
  }

  /** BEGIN, run `fn` on the writer connection, COMMIT (flushed) or ROLLBACK. */
  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    this.live();
    return this.lane.run(async () => {
      this.live();
      const c = await this.writerClient();
      try {
        await query(c, this.rewrites, "BEGIN", []);
      } catch (e) {
        this.dropWriter();
        throw e;
      }
      const tx = new PostgresTx(c, this.rewrites);
      try {
        const value = await fn(tx);
        tx.end();
        const r = await query(c, this.rewrites, "COMMIT", []);
        if (r.command !== "COMMIT") throw storeErrors.make("STORE_CONFLICT", "the transaction was aborted by an earlier error");
        return value;
      } catch (e) {
        tx.end();
        await query(c, this.rewrites, "ROLLBACK", []).catch(() => this.dropWriter());
        throw e;
      }
    });
  }

  async migrate(part: string, migrations: readonly Migration[]): Promise<number> {
    return runMigrations(this, part, migrations);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.lane.drain();
    const w = this.writer;
    this.writer = undefined;
    await w?.end().catch(() => undefined);
    await this.pool.end().catch(() => undefined);
  }
}

/** The executor handed to a transaction's function; unusable once the transaction ended. */
class PostgresTx implements SqlExecutor {
  private readonly client: pg.Client;
  private readonly rewrites: StatementCache<Rewritten>;
  private ended = false;

  constructor(client: pg.Client, rewrites: StatementCache<Rewritten>) {
    this.client = client;
    this.rewrites = rewrites;
  }

  end(): void {
    this.ended = true;
  }

  private live(): void {
    if (this.ended) throw storeErrors.make("STORE_CLOSED", "the transaction has ended");
  }

  async run(sql: string, params: readonly SqlParam[] = []): Promise<{ changes: number }> {
    this.live();
    const r = await query(this.client, this.rewrites, sql, params);
    return { changes: r.rowCount ?? 0 };
  }

  async all<T>(sql: string, params: readonly SqlParam[] = []): Promise<T[]> {
    this.live();
    return (await query(this.client, this.rewrites, sql, params)).rows as T[];
  }

  async get<T>(sql: string, params: readonly SqlParam[] = []): Promise<T | undefined> {
    this.live();
    return (await query(this.client, this.rewrites, sql, params)).rows[0] as T | undefined;
  }
}
