/**
 * The command pipeline: the only write path (ARCHITECTURE.md). decode → schema → signature, actor,
 * nonce, time → gates → append the entry → apply the projection, all inside one ledger
 * transaction; the answer is a receipt. Commands queue and are sequenced in batches (group
 * commit); each batch is one transaction, so a failure applies nothing of it.
 */
import { canonicalize, parseJsonStrict } from "../crypto/index.ts";
import { toHex, utf8 } from "../crypto/bytes.ts";
import { commonErrors } from "../common-errors.ts";
import { NexusError } from "../errors.ts";
import type { Verdict } from "../policy/context.ts";
import type { AppendContext, Ledger } from "../ledger/ledger.ts";
import type { SqlExecutor } from "../ledger/storage-port.ts";
import { authenticate, type KeyEventVerifiers } from "./authenticate.ts";
import { decide } from "./decide.ts";
import { pipelineErrors as E } from "./errors.ts";
import { MemoryState, OverlayState, type Change, type StateReader } from "./state.ts";

/** Projection rows per INSERT statement (3 parameters each: under SQLite's and PostgreSQL's limits). */
export const PROJECTION_ROWS_PER_STATEMENT = 500;
/** Commands sequenced in one transaction at most. */
export const BATCH_COMMANDS_MAX = 256;
/** Commands waiting at most before new ones are refused with PIPELINE_OVERLOADED. */
export const QUEUE_COMMANDS_MAX = 10_000;

/** What the caller gets back for a recorded command (applied or denied). */
export interface Receipt {
  readonly index: string;
  readonly leafHash: string;
  readonly outcome: "applied" | "denied";
  readonly gates: readonly Verdict[];
  readonly digest: string;
  readonly treeSize: string;
  readonly checkpoint: string;
  readonly inclusionProof: readonly string[];
}

/** Cumulative time (nanoseconds) the pipeline spent in each step, and commands sequenced (for benchmarks and metrics). */
export interface PipelineStats {
  commands: number;
  /** Decode, schema, signature, nonce, time window. */
  authNs: bigint;
  /** The gates and the reducers (pure). */
  gatesNs: bigint;
  /** Serialising the entry and appending it (in the transaction). */
  appendNs: bigint;
  /** Writing the projection rows (in the transaction). */
  projectNs: bigint;
  /** Building receipts (checkpoint, inclusion proofs) after commit. */
  receiptNs: bigint;
  /** Whole batches, from the ledger submit to the last answer (commit and queueing included). */
  batchNs: bigint;
}

/** An applied or denied command, as services see it on the bus. */
export interface RecordedCommand {
  readonly index: bigint;
  readonly entry: LedgerEntry;
  readonly changes: readonly Change[];
}

/** The JSON of a ledger entry (ARCHITECTURE.md, "Commands and the ledger"). */
export interface LedgerEntry {
  readonly index: string;
  readonly time: string;
  readonly envelope: unknown;
  readonly outcome: "applied" | "denied";
  readonly gates: readonly Verdict[];
}

interface Pending {
  readonly raw: string;
  readonly resolve: (r: Receipt) => void;
  readonly reject: (e: unknown) => void;
}

type Outcome =
  | { kind: "rejected"; error: NexusError }
  | { kind: "recorded"; index: bigint; leafHash: Uint8Array; entry: LedgerEntry; digest: string; changes: Change[] };

/** Options of a pipeline. */
export interface PipelineOptions {
  readonly ledger: Ledger;
  readonly db: SqlExecutor;
  readonly verifiers: KeyEventVerifiers;
  readonly clock?: () => Date;
}

/** The write path. Construct with `Pipeline.open`. */
export class Pipeline {
  private readonly memory = new MemoryState();
  private readonly queue: Pending[] = [];
  private readonly listeners = new Set<(r: RecordedCommand) => void>();
  private running = false;
  private readonly opts: PipelineOptions;
  private readonly clock: () => Date;
  /** The latest entry time (ms): entry times never go backwards, even if the clock does. */
  private lastTimeMs = 0;
  private readonly timing: PipelineStats = { commands: 0, authNs: 0n, gatesNs: 0n, appendNs: 0n, projectNs: 0n, receiptNs: 0n, batchNs: 0n };

  private constructor(opts: PipelineOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? (() => new Date());
  }

  /** Opens the pipeline: creates the projection table if needed and loads it. */
  static async open(opts: PipelineOptions): Promise<Pipeline> {
    const p = new Pipeline(opts);
    await opts.db.run(
      "CREATE TABLE IF NOT EXISTS projection (tbl TEXT NOT NULL, k TEXT NOT NULL, v TEXT NOT NULL, PRIMARY KEY (tbl, k))",
    );
    p.memory.loadAll(await readProjection(opts.db));
    if (opts.ledger.size > 0n) {
      // The floor of entry times; an entry that is not the pipeline's (unparseable) sets none.
      let last = Number.NaN;
      try {
        last = Date.parse(String(parseEntry(await opts.ledger.entry(opts.ledger.size - 1n)).time));
      } catch {
        // replay reports such an entry; the sequencer only loses its time floor
      }
      if (Number.isFinite(last)) p.lastTimeMs = last;
    }
    return p;
  }

  /** The committed projection. */
  get state(): StateReader {
    return this.memory;
  }

  /** Digest of the committed projection (compared by `ledger replay --verify`). */
  stateDigest(): string {
    return this.memory.digest();
  }

  /** A copy of the cumulative step timings. */
  stats(): PipelineStats {
    return { ...this.timing };
  }

  /** Follows every recorded command after it commits. Returns an unsubscribe function. */
  onRecorded(listener: (r: RecordedCommand) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Submits a DSSE command envelope (JSON text); resolves with its receipt or rejects with a NexusError. */
  submit(raw: string | Uint8Array): Promise<Receipt> {
    if (this.queue.length >= QUEUE_COMMANDS_MAX) return Promise.reject(E.make("PIPELINE_OVERLOADED"));
    const text = typeof raw === "string" ? raw : Buffer.from(raw).toString("utf8");
    return new Promise<Receipt>((resolve, reject) => {
      this.queue.push({ raw: text, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) await this.runBatch(this.queue.splice(0, BATCH_COMMANDS_MAX));
    } finally {
      this.running = false;
    }
  }

  private async runBatch(batch: Pending[]): Promise<void> {
    const t0 = process.hrtime.bigint();
    try {
      await this.runBatchTimed(batch);
    } finally {
      this.timing.batchNs += process.hrtime.bigint() - t0;
    }
  }

  private async runBatchTimed(batch: Pending[]): Promise<void> {
    const overlay = new OverlayState(this.memory);
    let outcomes: Outcome[];
    try {
      outcomes = await this.opts.ledger.submit(async (ctx) => {
        const out: Outcome[] = [];
        for (const item of batch) out.push(await this.sequence(item.raw, ctx, overlay));
        // The batch's projection rows, in the same transaction as its entries (one write per row, batched).
        const t = process.hrtime.bigint();
        await writeChanges(ctx.tx, overlay.changes);
        this.timing.projectNs += process.hrtime.bigint() - t;
        return out;
      });
    } catch (e) {
      // Nothing of the batch was committed. A NexusError (ledger overloaded, store down) is the
      // caller's answer; anything else is a broken invariant: INTERNAL, never "retry later".
      for (const item of batch) item.reject(e instanceof NexusError ? e : commonErrors.make("INTERNAL", `batch failed: ${String(e)}`));
      return;
    }
    this.memory.apply(overlay.changes);
    const t = process.hrtime.bigint();
    await this.answer(batch, outcomes);
    this.timing.receiptNs += process.hrtime.bigint() - t;
  }

  /** Sequences one command inside the transaction: authenticate, decide, append, project. */
  private async sequence(raw: string, ctx: AppendContext, overlay: OverlayState): Promise<Outcome> {
    // Statements need non-decreasing entry times (core/handshake): a clock stepping back is clamped.
    // Only a recorded entry moves the floor, so a rejected command from a skewed clock cannot.
    const now = new Date(Math.max(this.lastTimeMs, this.clock().getTime()));
    const t0 = process.hrtime.bigint();
    const auth = authenticate(overlay, raw, now, this.opts.verifiers);
    const t1 = process.hrtime.bigint();
    this.timing.authNs += t1 - t0;
    this.timing.commands += 1;
    if (!auth.ok) return { kind: "rejected", error: auth.error };
    const index = ctx.nextIndex;
    const time = now.toISOString();
    const decision = decide(overlay, auth.value, index, time, Buffer.byteLength(canonicalize(auth.value.envelope)));
    const t2 = process.hrtime.bigint();
    this.timing.gatesNs += t2 - t1;
    const entry: LedgerEntry = {
      index: index.toString(),
      time,
      envelope: auth.value.envelope,
      outcome: decision.outcome,
      gates: decision.verdicts,
    };
    const appended = await ctx.append(utf8(canonicalize(entry)));
    if (appended.index !== index) throw new Error(`invariant: ledger assigned ${appended.index}, expected ${index}`);
    this.lastTimeMs = now.getTime();
    const t3 = process.hrtime.bigint();
    this.timing.appendNs += t3 - t2;
    // Visible to the next command of the batch now; written to SQL once the batch is sequenced.
    overlay.write(decision.changes);
    this.timing.projectNs += process.hrtime.bigint() - t3;
    return { kind: "recorded", index, leafHash: appended.leafHash, entry, digest: auth.value.digest, changes: [...decision.changes] };
  }

  private async answer(batch: Pending[], outcomes: Outcome[]): Promise<void> {
    const recorded = outcomes.some((o) => o.kind === "recorded");
    const cp = recorded ? await this.opts.ledger.checkpoint() : undefined;
    for (let i = 0; i < batch.length; i++) {
      const item = batch[i];
      const o = outcomes[i];
      if (!item || !o) continue;
      if (o.kind === "rejected") {
        item.reject(o.error);
        continue;
      }
      for (const l of this.listeners) {
        // A failing subscriber must not leave the other callers of the batch without an answer.
        try {
          l({ index: o.index, entry: o.entry, changes: o.changes });
        } catch (e) {
          process.emitWarning(`a pipeline subscriber failed on entry ${o.index}: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
      if (!cp) continue;
      try {
        const proof = await this.opts.ledger.inclusionProof(o.index, cp.checkpoint.size);
        item.resolve({
          index: o.index.toString(),
          leafHash: toHex(o.leafHash),
          outcome: o.entry.outcome,
          gates: o.entry.gates,
          digest: o.digest,
          treeSize: cp.checkpoint.size.toString(),
          checkpoint: cp.note,
          inclusionProof: proof.map(toHex),
        });
      } catch (e) {
        item.reject(e);
      }
    }
  }
}

/**
 * Writes projection changes into the ledger's transaction (portable SQL for SQLite and
 * PostgreSQL), batched: one upsert per PROJECTION_ROWS_PER_STATEMENT rows. Deliberately not
 * exported: the only caller is the ledger work of `runBatchTimed`, after the batch's entries were
 * appended in that same transaction, so nothing else can write the projection
 * (test/pipeline/structure.test.ts).
 */
async function writeChanges(tx: SqlExecutor, changes: readonly Change[]): Promise<void> {
  // The last change of each row wins (a batch may touch a row several times; PostgreSQL refuses
  // an upsert naming one row twice).
  const last = new Map<string, Change>();
  for (const c of changes) {
    const id = `${c.table}\t${c.key}`;
    last.delete(id);
    last.set(id, c);
  }
  const puts: Change[] = [];
  for (const c of last.values()) {
    if (c.value === undefined) await tx.run("DELETE FROM projection WHERE tbl = ? AND k = ?", [c.table, c.key]);
    else puts.push(c);
  }
  for (let i = 0; i < puts.length; i += PROJECTION_ROWS_PER_STATEMENT) {
    const chunk = puts.slice(i, i + PROJECTION_ROWS_PER_STATEMENT);
    await tx.run(
      `INSERT INTO projection (tbl, k, v) VALUES ${chunk.map(() => "(?, ?, ?)").join(", ")} ON CONFLICT (tbl, k) DO UPDATE SET v = excluded.v`,
      chunk.flatMap((c) => [c.table, c.key, JSON.stringify(c.value)]),
    );
  }
}

/** The stored projection rows, as the pipeline last committed them (read-only; `ledger replay --verify` compares them). */
export async function readProjection(db: SqlExecutor): Promise<MemoryState> {
  const state = new MemoryState();
  const rows = await db.all<{ tbl: string; k: string; v: string }>("SELECT tbl, k, v FROM projection");
  for (const r of rows) state.load(r.tbl, r.k, JSON.parse(r.v));
  return state;
}

/** Parses a stored ledger entry (hostile bytes: strict JSON). */
export function parseEntry(bytes: Uint8Array): LedgerEntry {
  return parseJsonStrict(Buffer.from(bytes).toString("utf8")) as LedgerEntry;
}
