/**
 * The ledger: an append-only log on a Store, with RFC 9162 hashing, tiles of subtree hashes,
 * a signed C2SP checkpoint per committed batch, proofs, full verification and tailing.
 *
 * One sequencer per store. `submit` queues a work; the sequencer runs every queued work one after
 * another inside ONE store transaction (group commit), each in its own savepoint, then writes the
 * entries, the changed tiles and a new signed checkpoint, commits durably, and only then resolves
 * the works' promises and feeds subscribers. Duties are in docs/ledger.md ("Storage").
 */
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { bytesEqual } from "../crypto/bytes.ts";
import { appendLeaves, type CompactRange, consistencyPlan, EMPTY_ROOT, emptyRange, inclusionPlan, leafHash, type NodeId, rangeRoot, rootPlan } from "./merkle.ts";
import { type Checkpoint, formatCheckpoint, type NoteSigner, openNote, parseCheckpoint, signNote } from "./note.ts";
import { type AppendContext, Batch, WorkScope } from "./ledger-batch.ts";
import { isNexusError } from "../errors.ts";
import { ledgerErrors } from "./errors.ts";
import { ledgerLogErrors } from "./ledger-errors.ts";
import { LEDGER_MIGRATIONS } from "./ledger-schema.ts";
import { checkpointAt, type EntryRow, insertCheckpoint, insertEntries, insertTiles, latestCheckpoint, maxEntryIndex, readEntries, readLeafHashes, readTile, readTileRange, readTiles } from "./ledger-storage.ts";
import { type NoteCheck, verifyLedgerStorage, type VerifyReport } from "./ledger-verify.ts";
import type { SqlExecutor, Store } from "./storage-port.ts";
import { type EdgeTile, edgeFromBottomRow, edgeTileIds, fileNodes, placeOf, rangeNodeIds, TILE_WIDTH, type TileData, type TileId, tileNode, tileRoot } from "./tiles.ts";

export type { AppendContext } from "./ledger-batch.ts";
export { APPENDS_PER_WORK_MAX, ENTRY_BYTES_MAX } from "./ledger-batch.ts";
export type { NoteCheck, VerifyProblemKind, VerifyReport } from "./ledger-verify.ts";

/** Works waiting for the sequencer before submit refuses with LEDGER_OVERLOADED. */
export const QUEUED_WORKS_MAX = 65_536;
/** Most works in one batch. */
export const BATCH_WORKS_MAX = 4096;
/** A batch stops taking works once it holds this many entries (a batch's memory is ~1 KiB per entry)... */
export const BATCH_ENTRIES_MAX = 16_384;
/** ...or this many entry bytes. */
export const BATCH_BYTES_MAX = 32 * 1024 * 1024;
/** Longest a work may run before it is rolled back and rejected. */
export const WORK_TIMEOUT_MS = 10_000;
/** Entries read per query by `entries` and by subscribers. */
export const ENTRIES_PAGE_MAX = 1000;
/** Concurrent subscribers. */
export const SUBSCRIBERS_MAX = 1024;
/** Full tiles (immutable) kept in memory for proofs. */
export const TILE_CACHE_MAX = 256;

/** The latest signed note and its parsed form. */
export interface SignedCheckpoint {
  readonly note: string;
  readonly checkpoint: Checkpoint;
}

/** How to open the ledger. */
export interface LedgerOptions {
  /** The log's origin line (C2SP tlog-checkpoint), e.g. "nexus.local/ledger". */
  readonly origin: string;
  /** Signs each new checkpoint (the platform key). */
  readonly signer: NoteSigner;
  /**
   * The signer's verifier key ("name+hash+base64"), to check stored checkpoints. Without it the
   * ledger checks a stored note by signing its text again and comparing (Ed25519 is deterministic).
   */
  readonly verifierKey?: string;
  /** Time limit of one work (default and maximum WORK_TIMEOUT_MS). */
  readonly workTimeoutMs?: number;
}

/** The committed tree, swapped whole after each commit. */
interface TreeState {
  readonly range: CompactRange;
  readonly edge: ReadonlyMap<number, EdgeTile>;
  readonly latest: SignedCheckpoint;
  /** The last committed batch's entries (served to subscribers without a read). */
  readonly recent: readonly EntryRow[];
}

interface Job {
  readonly work: (ctx: AppendContext) => Promise<unknown>;
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

interface Subscriber {
  cursor: bigint;
  closed: boolean;
  pumping: boolean;
  readonly onEntry: (index: bigint, entry: Uint8Array) => void | Promise<void>;
  readonly onError: ((e: unknown) => void) | undefined;
}

const corrupt = (detail: string): Error => ledgerLogErrors.make("LEDGER_STORAGE_CORRUPT", detail);
const fail = (detail: string): never => {
  throw corrupt(detail);
};

/** Builds the note checker for stored checkpoints (see LedgerOptions.verifierKey). */
function noteChecker(opts: LedgerOptions): (note: string) => NoteCheck {
  return (note) => {
    let text: string;
    try {
      if (opts.verifierKey !== undefined) {
        text = openNote(note, [opts.verifierKey]).text;
      } else {
        const cut = note.lastIndexOf("\n\n");
        text = cut < 0 ? note : note.slice(0, cut + 1);
        if (signNote(text, [opts.signer]) !== note) return { ok: false, problem: "signature does not verify" };
      }
    } catch {
      return { ok: false, problem: "signature does not verify" };
    }
    try {
      const checkpoint = parseCheckpoint(text);
      if (checkpoint.origin !== opts.origin) return { ok: false, problem: `origin is ${JSON.stringify(checkpoint.origin)}` };
      return { ok: true, checkpoint };
    } catch {
      return { ok: false, problem: "the note is not a checkpoint" };
    }
  };
}

function sign(opts: LedgerOptions, size: bigint, root: Uint8Array): SignedCheckpoint {
  const checkpoint: Checkpoint = { origin: opts.origin, size, root, extensions: [] };
  return { note: signNote(formatCheckpoint(checkpoint), [opts.signer]), checkpoint };
}

/**
 * Rebuilds the partial tile of each tile level (never stored) from the level below: entry leaf
 * hashes for level 0, the roots of full tiles of level T-1 for level T (at most 255 rows each).
 */
async function loadEdge(store: SqlExecutor, size: bigint): Promise<Map<number, EdgeTile>> {
  const edge = new Map<number, EdgeTile>();
  for (const { id, width } of edgeTileIds(size)) {
    const from = id.index * BigInt(TILE_WIDTH);
    const to = from + BigInt(width);
    const bottom =
      id.level === 0
        ? await readLeafHashes(store, from, to)
        : (await readTileRange(store, id.level - 1, from, to)).map((t) => tileRoot(t) ?? fail(`tile ${id.level - 1} has no root`));
    edge.set(id.level, edgeFromBottomRow(id, bottom));
  }
  return edge;
}

/** Reads the committed tree back from storage: size, right-edge tiles and compact range. */
async function loadState(store: SqlExecutor, opts: LedgerOptions, check: (note: string) => NoteCheck): Promise<TreeState> {
  const row = await latestCheckpoint(store);
  const maxIndex = await maxEntryIndex(store);
  if (row === undefined) {
    if (maxIndex >= 0n) throw corrupt("entries are stored but no checkpoint");
    return { range: emptyRange(), edge: new Map(), latest: sign(opts, 0n, EMPTY_ROOT), recent: [] };
  }
  const c = check(row.note);
  if (!c.ok) {
    if (c.problem.startsWith("origin")) throw ledgerLogErrors.make("LEDGER_ORIGIN_MISMATCH", c.problem);
    throw corrupt(`latest checkpoint: ${c.problem}`);
  }
  const size = c.checkpoint.size;
  if (size !== row.size || maxIndex + 1n !== size) throw corrupt(`the latest checkpoint (size ${size}) does not match the entries`);
  const edge = await loadEdge(store, size);
  const hashes: Uint8Array[] = [];
  for (const id of rangeNodeIds(size)) {
    const p = placeOf(id);
    const e = edge.get(p.tile.level);
    const stored = e !== undefined && e.id.index === p.tile.index ? undefined : await readTile(store, p.tile);
    const h = stored === undefined ? e?.rows[p.row]?.[p.offset] : tileNode(stored, p.row, p.offset);
    if (h === undefined) throw corrupt(`node ${id.level}/${id.index} is missing`);
    hashes.push(h);
  }
  const range: CompactRange = { size, hashes };
  if (!bytesEqual(rangeRoot(range), c.checkpoint.root)) throw corrupt("the stored tree does not match the latest signed checkpoint");
  return { range, edge, latest: { note: row.note, checkpoint: c.checkpoint }, recent: [] };
}

/** Runs `p` with a time limit; on expiry calls `onTimeout` and rejects with LEDGER_WORK_TIMEOUT. */
async function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expiry = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(ledgerLogErrors.make("LEDGER_WORK_TIMEOUT", `${ms} ms`));
    }, ms);
  });
  p.catch(() => undefined);
  try {
    return await Promise.race([p, expiry]);
  } finally {
    clearTimeout(timer);
  }
}

/** The log on a Store (see the module comment). */
export class Ledger {
  private readonly store: Store;
  private readonly opts: LedgerOptions;
  private readonly check: (note: string) => NoteCheck;
  private state: TreeState;
  private readonly queue: Job[] = [];
  private running = false;
  private closed = false;
  private failure: Error | undefined;
  private idle: (() => void)[] = [];
  private readonly subscribers = new Set<Subscriber>();
  private readonly tileCache = new Map<string, TileData>();
  private readonly workTimeoutMs: number;

  private constructor(store: Store, opts: LedgerOptions, check: (note: string) => NoteCheck, state: TreeState) {
    this.store = store;
    this.opts = opts;
    this.workTimeoutMs = Math.max(1, Math.min(WORK_TIMEOUT_MS, opts.workTimeoutMs ?? WORK_TIMEOUT_MS));
    this.check = check;
    this.state = state;
  }

  /** Migrates the ledger's tables, then restores the committed tree from storage. */
  static async open(store: Store, opts: LedgerOptions): Promise<Ledger> {
    await store.migrate("ledger", LEDGER_MIGRATIONS);
    const check = noteChecker(opts);
    return new Ledger(store, opts, check, await loadState(store, opts, check));
  }

  /** The committed tree size. */
  get size(): bigint {
    return this.state.range.size;
  }

  /** The log's origin line. */
  get origin(): string {
    return this.opts.origin;
  }

  /** Queues a work for the next group commit; resolves with its value once durably committed. */
  submit<T>(work: (ctx: AppendContext) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(ledgerLogErrors.make("LEDGER_CLOSED"));
    if (this.failure) return Promise.reject(this.failure);
    if (this.queue.length >= QUEUED_WORKS_MAX) return Promise.reject(ledgerLogErrors.make("LEDGER_OVERLOADED", "queue full"));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ work, resolve: resolve as (v: unknown) => void, reject });
      if (!this.running) {
        this.running = true;
        void this.sequence();
      }
    });
  }

  /** Appends one entry in its own work (convenience over `submit`). */
  append(entry: Uint8Array): Promise<{ index: bigint; leafHash: Uint8Array }> {
    return this.submit((ctx) => ctx.append(entry));
  }

  private async sequence(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        // Yield to the event loop between batches: with a synchronous driver (node:sqlite) the
        // whole batch runs on microtasks, and writers resubmitting at once would otherwise starve
        // I/O and timers forever. The pause also lets concurrent submits join the next batch.
        await yieldToEventLoop();
        await this.runBatch();
      }
    } finally {
      this.running = false;
      const waiters = this.idle;
      this.idle = [];
      for (const w of waiters) w();
    }
  }

  /** One group commit (see the module comment). */
  private async runBatch(): Promise<void> {
    const before = this.state;
    const batch = new Batch(before.range.size);
    const done: { job: Job; value: unknown }[] = [];
    let next: TreeState | undefined;
    try {
      await this.store.transaction(async (tx) => {
        const stored = await latestCheckpoint(tx);
        if ((stored?.size ?? 0n) !== before.range.size) {
          throw ledgerLogErrors.make("LEDGER_SEQUENCER_CONFLICT", `stored size ${stored?.size ?? 0n}, mine ${before.range.size}`);
        }
        for (let works = 0; works < BATCH_WORKS_MAX && batch.rows.length < BATCH_ENTRIES_MAX && batch.bytes < BATCH_BYTES_MAX; works++) {
          const job = this.queue.shift();
          if (job === undefined) break;
          const r = await this.runWork(tx, batch, job).catch((e: unknown) => {
            job.reject(e); // its savepoint could not be undone: the whole batch fails below
            throw e;
          });
          if (r.ok) done.push({ job, value: r.value });
          else job.reject(r.error);
        }
        if (batch.rows.length > 0) next = await this.writeBatch(tx, before, batch);
      });
    } catch (e) {
      // Reload first, so a caller hearing of the failure sees the tree as it now is.
      await this.recover();
      for (const d of done) d.job.reject(e);
      // Works queued against a tree another writer has moved on from are refused, not replayed:
      // two sequencers on one store is a misconfiguration the caller must hear about.
      if (isNexusError(e, "LEDGER_SEQUENCER_CONFLICT")) for (const j of this.queue.splice(0)) j.reject(e);
      return;
    }
    if (next !== undefined) this.state = next;
    for (const d of done) d.job.resolve(d.value);
    if (next !== undefined) for (const s of this.subscribers) this.pump(s);
  }

  /** Runs one work in its savepoint; a throwing work rolls back only itself. */
  private async runWork(tx: SqlExecutor, batch: Batch, job: Job): Promise<{ ok: true; value: unknown } | { ok: false; error: unknown }> {
    const scope = new WorkScope(tx);
    const mark = batch.rows.length;
    try {
      const ctx = scope.context(batch);
      const value = await withTimeout(Promise.resolve().then(() => job.work(ctx)), this.workTimeoutMs, () => scope.close());
      scope.close();
      await scope.release();
      return { ok: true, value };
    } catch (error) {
      scope.close();
      batch.truncate(mark);
      await scope.rollback();
      return { ok: false, error };
    }
  }

  /** Writes the batch's entries, tiles and signed checkpoint; returns the tree it commits. */
  private async writeBatch(tx: SqlExecutor, before: TreeState, batch: Batch): Promise<TreeState> {
    await insertEntries(tx, batch.rows);
    const leaves = batch.rows.map((r) => r.leafHash);
    const { range, created } = appendLeaves(before.range, leaves);
    // appendLeaves reports the leaves among the created nodes; file them ourselves if it did not.
    const withLeaves = created[0]?.id.level === 0;
    const leafNodes = withLeaves ? [] : batch.rows.map((r) => ({ id: { level: 0, index: r.index }, hash: r.leafHash }));
    const { edge, completed } = fileNodes(before.edge, withLeaves ? created : [...leafNodes, ...created]);
    await insertTiles(tx, completed);
    const latest = sign(this.opts, range.size, rangeRoot(range));
    await insertCheckpoint(tx, range.size, latest.note);
    return { range, edge, latest, recent: batch.rows };
  }

  /** After a failed commit the outcome may be unknown: reload the committed tree from storage. */
  private async recover(): Promise<void> {
    this.tileCache.clear();
    try {
      this.state = await loadState(this.store, this.opts, this.check);
    } catch (e) {
      this.failure = e instanceof Error ? e : new Error(String(e));
      for (const j of this.queue.splice(0)) j.reject(this.failure);
    }
  }

  /** The latest signed checkpoint. */
  async checkpoint(): Promise<SignedCheckpoint> {
    return this.state.latest;
  }

  /** The stored signed checkpoint of exactly `size`, if a batch ended there. */
  async checkpointAt(size: bigint): Promise<SignedCheckpoint | undefined> {
    if (size === this.size) return this.state.latest;
    const row = size > 0n && size < this.size ? await checkpointAt(this.store, size) : undefined;
    if (row === undefined) return undefined;
    const c = this.check(row.note);
    if (!c.ok || c.checkpoint.size !== size) throw corrupt(`checkpoint at ${size}: ${c.ok ? "wrong size" : c.problem}`);
    return { note: row.note, checkpoint: c.checkpoint };
  }

  private checkIndex(index: bigint, size: bigint): void {
    if (typeof index !== "bigint" || index < 0n) throw ledgerErrors.make("LEDGER_RANGE", `index ${String(index)}`);
    if (index >= size) throw ledgerLogErrors.make("LEDGER_INDEX_OUT_OF_RANGE", `index ${index}, size ${size}`);
  }

  private checkSize(size: bigint): void {
    if (typeof size !== "bigint" || size < 0n) throw ledgerErrors.make("LEDGER_RANGE", `size ${String(size)}`);
    if (size > this.size) throw ledgerLogErrors.make("LEDGER_SIZE_OUT_OF_RANGE", `size ${size}, log ${this.size}`);
  }

  /** Entries [from, from+count) with their leaf hashes (count at most ENTRIES_PAGE_MAX, cut at the size). */
  async entries(from: bigint, count: number): Promise<EntryRow[]> {
    const state = this.state;
    this.checkIndex(from, state.range.size);
    const want = BigInt(Math.max(1, Math.min(ENTRIES_PAGE_MAX, Math.floor(count))));
    const to = from + want < state.range.size ? from + want : state.range.size;
    const first = state.recent[0];
    if (first !== undefined && from >= first.index) return state.recent.slice(Number(from - first.index), Number(to - first.index));
    const rows = await readEntries(this.store, from, to);
    for (const r of rows) if (!bytesEqual(leafHash(r.bytes), r.leafHash)) throw corrupt(`entry ${r.index} does not match its leaf hash`);
    return rows;
  }

  /** The bytes of entry `index`. */
  async entry(index: bigint): Promise<Uint8Array> {
    const [row] = await this.entries(index, 1);
    if (row === undefined) throw corrupt(`entry ${index} is missing`);
    return row.bytes.slice();
  }

  /**
   * Reads complete-subtree hashes: from the in-memory edge tiles, the cache of full tiles, or the
   * stored full tiles, all fetched in one query (at most two tiles per tile level: O(log n) rows).
   */
  private async readNodes(ids: readonly NodeId[], state: TreeState): Promise<Uint8Array[]> {
    const places = ids.map(placeOf);
    const tiles = new Map<string, TileData>();
    const wanted = new Map<string, TileId>();
    for (const p of places) {
      const key = `${p.tile.level}/${p.tile.index}`;
      const e = state.edge.get(p.tile.level);
      if ((e !== undefined && e.id.index === p.tile.index) || tiles.has(key) || wanted.has(key)) continue;
      const hit = this.tileCache.get(key);
      if (hit !== undefined) tiles.set(key, hit);
      else wanted.set(key, p.tile);
    }
    if (wanted.size > 0) {
      for (const [key, t] of await readTiles(this.store, [...wanted.values()])) {
        tiles.set(key, t);
        this.cacheTile(key, t);
      }
    }
    return places.map((p, i) => {
      const e = state.edge.get(p.tile.level);
      const t = tiles.get(`${p.tile.level}/${p.tile.index}`);
      const h = e !== undefined && e.id.index === p.tile.index ? e.rows[p.row]?.[p.offset] : t === undefined ? undefined : tileNode(t, p.row, p.offset);
      return h ?? fail(`node ${ids[i]?.level}/${ids[i]?.index} is missing`);
    });
  }

  /** Keeps a full tile (immutable) in the bounded LRU cache. */
  private cacheTile(key: string, t: TileData): void {
    this.tileCache.delete(key);
    this.tileCache.set(key, t);
    if (this.tileCache.size > TILE_CACHE_MAX) this.tileCache.delete(this.tileCache.keys().next().value ?? key);
  }

  /** The root of the tree of `size` (≤ the current size). */
  async rootAt(size: bigint): Promise<Uint8Array> {
    const state = this.state;
    this.checkSize(size);
    if (size === state.range.size) return state.latest.checkpoint.root;
    if (size === 0n) return EMPTY_ROOT;
    const plan = rootPlan(size);
    const [root] = plan.assemble(await this.readNodes(plan.nodes, state));
    if (root === undefined) throw corrupt(`no root for size ${size}`);
    return root;
  }

  /** The RFC 9162 inclusion proof of entry `index` in the tree of `size` (default: current). */
  async inclusionProof(index: bigint, size?: bigint): Promise<Uint8Array[]> {
    const state = this.state;
    const s = size ?? state.range.size;
    this.checkSize(s);
    this.checkIndex(index, s);
    const plan = inclusionPlan(index, s);
    return plan.assemble(await this.readNodes(plan.nodes, state));
  }

  /** The RFC 9162 consistency proof from the tree of `size1` to the tree of `size2` (default: current). */
  async consistencyProof(size1: bigint, size2?: bigint): Promise<Uint8Array[]> {
    const state = this.state;
    const s2 = size2 ?? state.range.size;
    this.checkSize(s2);
    this.checkSize(size1);
    if (size1 > s2) throw ledgerErrors.make("LEDGER_RANGE", `size1 ${size1} > size2 ${s2}`);
    const plan = consistencyPlan(size1, s2);
    return plan.assemble(await this.readNodes(plan.nodes, state));
  }

  /** Recomputes and checks everything stored up to the current size (see ledger-verify.ts). */
  async verifyAll(): Promise<VerifyReport> {
    return verifyLedgerStorage(this.store, { checkNote: this.check, size: this.size });
  }

  /**
   * Calls `onEntry` for every entry from `fromIndex` on, in order, then for each new one as it
   * commits. A returned promise is awaited before the next call (backpressure). A throwing
   * `onEntry` ends the subscription and is passed to `onError`. Returns the unsubscribe function.
   */
  subscribe(
    fromIndex: bigint,
    onEntry: (index: bigint, entry: Uint8Array) => void | Promise<void>,
    onError?: (e: unknown) => void,
  ): () => void {
    if (typeof fromIndex !== "bigint" || fromIndex < 0n) throw ledgerErrors.make("LEDGER_RANGE", `from ${String(fromIndex)}`);
    if (this.subscribers.size >= SUBSCRIBERS_MAX) throw ledgerLogErrors.make("LEDGER_OVERLOADED", "too many subscribers");
    const sub: Subscriber = { cursor: fromIndex, closed: false, pumping: false, onEntry, onError };
    this.subscribers.add(sub);
    this.pump(sub);
    return () => {
      sub.closed = true;
      this.subscribers.delete(sub);
    };
  }

  private pump(sub: Subscriber): void {
    if (sub.pumping || sub.closed || sub.cursor >= this.size) return;
    sub.pumping = true;
    void (async () => {
      try {
        while (!sub.closed && sub.cursor < this.size) {
          for (const row of await this.entries(sub.cursor, ENTRIES_PAGE_MAX)) {
            if (sub.closed) break;
            const r = sub.onEntry(row.index, row.bytes);
            if (r instanceof Promise) await r;
            sub.cursor = row.index + 1n;
          }
        }
      } catch (e) {
        sub.closed = true;
        this.subscribers.delete(sub);
        sub.onError?.(e);
      } finally {
        sub.pumping = false;
      }
      this.pump(sub);
    })();
  }

  /** Refuses new works, waits for the queued ones to commit, ends every subscription. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.running) await new Promise<void>((resolve) => this.idle.push(resolve));
    for (const s of this.subscribers) s.closed = true;
    this.subscribers.clear();
  }
}
