/**
 * The pieces of one group commit: the entries a batch has appended so far, and the scope a work
 * runs in (its own lazily opened savepoint inside the batch's transaction).
 */
import { leafHash } from "./merkle.ts";
import { ledgerLogErrors } from "./ledger-errors.ts";
import type { EntryRow } from "./ledger-storage.ts";
import type { SqlExecutor, SqlParam } from "./storage-port.ts";

/** Largest entry the ledger accepts. */
export const ENTRY_BYTES_MAX = 256 * 1024;
/** Most entries one work may append. */
export const APPENDS_PER_WORK_MAX = 16_384;

/** What a work gets: the batch's transaction and the append operation. */
export interface AppendContext {
  /** The same transaction as the batch: projections are written here. */
  readonly tx: SqlExecutor;
  /** The index the next append gets. */
  readonly nextIndex: bigint;
  /** Appends an entry (written at the end of the batch, in the same transaction). */
  append(entry: Uint8Array): Promise<{ index: bigint; leafHash: Uint8Array }>;
}

/** The entries appended by the works of one batch, in index order. */
export class Batch {
  readonly base: bigint;
  readonly rows: EntryRow[] = [];
  bytes = 0;

  constructor(base: bigint) {
    this.base = base;
  }

  /** The index the next append gets. */
  get next(): bigint {
    return this.base + BigInt(this.rows.length);
  }

  /** Forgets the entries appended after `mark` (a work that threw). */
  truncate(mark: number): void {
    for (let i = mark; i < this.rows.length; i++) this.bytes -= this.rows[i]?.bytes.length ?? 0;
    this.rows.length = mark;
  }
}

const SAVEPOINT = "ledger_work";

/**
 * A work's view of the transaction: the savepoint is opened on the work's first statement (works
 * that only append cost no round trip), and every call fails once the work has ended.
 */
export class WorkScope implements SqlExecutor {
  private readonly tx: SqlExecutor;
  private savepoint: Promise<unknown> | undefined;
  private open = true;

  constructor(tx: SqlExecutor) {
    this.tx = tx;
  }

  private async enter(): Promise<void> {
    if (!this.open) throw ledgerLogErrors.make("LEDGER_CONTEXT_CLOSED");
    this.savepoint ??= this.tx.run(`SAVEPOINT ${SAVEPOINT}`);
    await this.savepoint;
    if (!this.open) throw ledgerLogErrors.make("LEDGER_CONTEXT_CLOSED");
  }

  async run(sql: string, params?: readonly SqlParam[]): Promise<{ changes: number }> {
    await this.enter();
    return this.tx.run(sql, params);
  }

  async all<T>(sql: string, params?: readonly SqlParam[]): Promise<T[]> {
    await this.enter();
    return this.tx.all<T>(sql, params);
  }

  async get<T>(sql: string, params?: readonly SqlParam[]): Promise<T | undefined> {
    await this.enter();
    return this.tx.get<T>(sql, params);
  }

  /** Ends the work: later calls fail. */
  close(): void {
    this.open = false;
  }

  /** Keeps the work's writes. */
  async release(): Promise<void> {
    if (this.savepoint === undefined) return;
    await this.savepoint;
    await this.tx.run(`RELEASE SAVEPOINT ${SAVEPOINT}`);
  }

  /** Undoes the work's writes (the batch's other writes stay). */
  async rollback(): Promise<void> {
    if (this.savepoint === undefined) return;
    await this.savepoint;
    await this.tx.run(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`);
    await this.tx.run(`RELEASE SAVEPOINT ${SAVEPOINT}`);
  }

  /** The append context handed to the work. */
  context(batch: Batch): AppendContext {
    let appended = 0;
    const append = async (entry: Uint8Array): Promise<{ index: bigint; leafHash: Uint8Array }> => {
      if (!this.open) throw ledgerLogErrors.make("LEDGER_CONTEXT_CLOSED");
      if (!(entry instanceof Uint8Array)) throw ledgerLogErrors.make("LEDGER_ENTRY_TOO_LARGE", "an entry is bytes");
      if (entry.length > ENTRY_BYTES_MAX) {
        throw ledgerLogErrors.make("LEDGER_ENTRY_TOO_LARGE", `${entry.length} > ${ENTRY_BYTES_MAX} bytes`);
      }
      if (++appended > APPENDS_PER_WORK_MAX) throw ledgerLogErrors.make("LEDGER_WORK_TOO_LARGE", `more than ${APPENDS_PER_WORK_MAX}`);
      const bytes = entry.slice();
      const row = { index: batch.next, bytes, leafHash: leafHash(bytes) };
      batch.rows.push(row);
      batch.bytes += bytes.length;
      return { index: row.index, leafHash: row.leafHash };
    };
    return {
      tx: this,
      get nextIndex(): bigint {
        return batch.next;
      },
      append,
    };
  }
}
