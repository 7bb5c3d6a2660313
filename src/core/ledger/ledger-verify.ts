/**
 * Full verification of a stored log: recompute every leaf hash from the entry bytes, rebuild the
 * tree and compare every stored tile node with it, check every stored checkpoint (signature,
 * origin, size, root), and name the first bad index when rows were edited, deleted, inserted or
 * reordered behind the ledger's back. Streams in pages: memory stays flat as the log grows.
 */
import { bytesEqual } from "../crypto/bytes.ts";
import { isNexusError } from "../errors.ts";
import { appendLeaves, type CompactRange, emptyRange, leafHash, type NodeId, rangeRoot } from "./merkle.ts";
import type { Checkpoint } from "./note.ts";
import { checkpointPage, entryPage, latestCheckpoint, readTile } from "./ledger-storage.ts";
import type { SqlExecutor } from "./storage-port.ts";
import { firstLeafOf, fullTiles, placeOf, TILE_LEVELS_MAX, type TileData, tileNode } from "./tiles.ts";

/** Entry rows read per query while verifying. */
export const VERIFY_PAGE_ENTRIES = 512;
/** Checkpoint rows read per query while verifying. */
export const VERIFY_PAGE_CHECKPOINTS = 256;
/** Times the end-of-scan checks are retried when the live log grew meanwhile. */
const LIVE_RETRIES_MAX = 3;

/** What is wrong, when something is. */
export type VerifyProblemKind =
  | "entry-missing"
  | "entry-extra"
  | "entry-malformed"
  | "entry-hash"
  | "tile-missing"
  | "tile-malformed"
  | "tile-mismatch"
  | "tile-extra"
  | "checkpoint-missing"
  | "checkpoint-malformed"
  | "checkpoint-signature"
  | "checkpoint-root";

/** The outcome of a full verification. */
export interface VerifyReport {
  readonly ok: boolean;
  /** The tree size verified. */
  readonly size: bigint;
  readonly entriesChecked: bigint;
  readonly checkpointsChecked: number;
  /** The first entry index that is not what the signed tree says (when an entry is implicated). */
  readonly firstBadIndex?: bigint;
  readonly kind?: VerifyProblemKind;
  /** One line saying what is wrong. */
  readonly problem?: string;
}

/** A stored note judged: its checkpoint, or why it is refused. */
export type NoteCheck = { readonly ok: true; readonly checkpoint: Checkpoint } | { readonly ok: false; readonly problem: string };

/** How to verify. */
export interface VerifyOptions {
  /** Checks a stored note's signature and origin, and parses it. */
  readonly checkNote: (note: string) => NoteCheck;
  /** Verify the tree of this size (a live ledger's size); default: the latest stored checkpoint's. */
  readonly size?: bigint;
}

interface Problem {
  readonly kind: VerifyProblemKind;
  readonly problem: string;
  readonly firstBadIndex?: bigint;
}

const problemAt = (kind: VerifyProblemKind, problem: string, firstBadIndex?: bigint): Problem =>
  firstBadIndex === undefined ? { kind, problem } : { kind, problem, firstBadIndex };

/** The streaming state of one verification. */
class Scan {
  private readonly db: SqlExecutor;
  private readonly checkNote: VerifyOptions["checkNote"];
  readonly target: bigint;
  range: CompactRange = emptyRange();
  checkpointsChecked = 0;
  /** The size of the last checkpoint found good (0 before any). */
  lastGoodCheckpoint = 0n;
  private cps: { size: unknown; note: unknown }[] = [];
  private cpAfter = -1n;
  private readonly tiles = new Map<number, { index: bigint; data: TileData | undefined }>();

  constructor(db: SqlExecutor, checkNote: VerifyOptions["checkNote"], target: bigint) {
    this.db = db;
    this.checkNote = checkNote;
    this.target = target;
  }

  /** The next stored checkpoint (ascending size), or undefined. */
  private async peekCheckpoint(): Promise<{ size: unknown; note: unknown } | undefined> {
    if (this.cps.length === 0) {
      this.cps = await checkpointPage(this.db, this.cpAfter, VERIFY_PAGE_CHECKPOINTS);
      const last = this.cps[this.cps.length - 1];
      if (last !== undefined && typeof last.size === "bigint") this.cpAfter = last.size;
    }
    return this.cps[0];
  }

  /** Checks the stored checkpoints due at the current size. */
  private async checkDueCheckpoints(): Promise<Problem | undefined> {
    for (let cp = await this.peekCheckpoint(); cp !== undefined; cp = await this.peekCheckpoint()) {
      if (typeof cp.size !== "bigint") return problemAt("checkpoint-malformed", "a checkpoint row has no integer size");
      if (cp.size > this.range.size || cp.size > this.target) return undefined;
      this.cps.shift();
      const p = this.judgeCheckpoint(cp.size, cp.note);
      if (p) return p;
    }
    return undefined;
  }

  private judgeCheckpoint(size: bigint, note: unknown): Problem | undefined {
    this.checkpointsChecked++;
    if (size !== this.range.size || typeof note !== "string") {
      return problemAt("checkpoint-malformed", `checkpoint row ${size} is malformed`);
    }
    const c = this.checkNote(note);
    if (!c.ok) return problemAt("checkpoint-signature", `checkpoint at size ${size}: ${c.problem}`);
    if (c.checkpoint.size !== size) {
      return problemAt("checkpoint-malformed", `checkpoint row ${size} holds a note for size ${c.checkpoint.size}`);
    }
    if (!bytesEqual(c.checkpoint.root, rangeRoot(this.range))) {
      const from = this.lastGoodCheckpoint;
      return problemAt("checkpoint-root", `the signed root at size ${size} differs from the stored tree: a change lies in [${from}, ${size})`, from);
    }
    this.lastGoodCheckpoint = size;
    return undefined;
  }

  /** The stored tile holding node `id`'s place, cached per tile level. */
  private async tile(level: number, index: bigint): Promise<TileData | undefined> {
    const hit = this.tiles.get(level);
    if (hit !== undefined && hit.index === index) return hit.data;
    const data = await readTile(this.db, { level, index });
    this.tiles.set(level, { index, data });
    return data;
  }

  /** Compares one recomputed node with the stored tiles (only full tiles are stored). */
  private async compareNode(id: NodeId, hash: Uint8Array): Promise<Problem | undefined> {
    const p = placeOf(id);
    if (p.tile.index >= fullTiles(this.target, p.tile.level)) return undefined;
    let data: TileData | undefined;
    try {
      data = await this.tile(p.tile.level, p.tile.index);
    } catch (e) {
      if (isNexusError(e, "LEDGER_STORAGE_CORRUPT")) return problemAt("tile-malformed", e.message, firstLeafOf(id));
      throw e;
    }
    const stored = data === undefined ? undefined : tileNode(data, p.row, p.offset);
    const what = id.level === 0 ? `leaf ${id.index}` : `node ${id.level}/${id.index}`;
    if (stored === undefined) return problemAt("tile-missing", `no stored hash for ${what} (tile ${p.tile.level}/${p.tile.index})`, firstLeafOf(id));
    if (!bytesEqual(stored, hash)) {
      const why = id.level === 0 ? `entry ${id.index} is not the entry the tree was built with` : `stored hash of ${what} differs from the recomputed one`;
      return problemAt("tile-mismatch", why, firstLeafOf(id));
    }
    return undefined;
  }

  /**
   * Compares a chunk's leaves and the inner nodes they completed with the stored tiles. A bad
   * leaf explains every inner node above it, so an inner node is reported only when no bad leaf
   * lies under it (a tile edited on its own); the lowest first index wins.
   */
  private async compareChunk(start: bigint, chunk: readonly Uint8Array[], created: readonly { id: NodeId; hash: Uint8Array }[]): Promise<Problem | undefined> {
    let worst: Problem | undefined;
    for (let i = 0; i < chunk.length && worst === undefined; i++) {
      worst = await this.compareNode({ level: 0, index: start + BigInt(i) }, chunk[i] ?? new Uint8Array(0));
    }
    const badLeaf = worst?.firstBadIndex;
    for (const n of created) {
      if (n.id.level === 0) continue;
      const first = firstLeafOf(n.id);
      if (badLeaf !== undefined && (first > badLeaf || badLeaf < first + (1n << BigInt(n.id.level)))) continue;
      const p = await this.compareNode(n.id, n.hash);
      if (p && (worst === undefined || first < (worst.firstBadIndex ?? 0n))) worst = p;
    }
    return worst;
  }

  /** Appends leaves (up to each checkpoint boundary), comparing every node and checkpoint. */
  async feed(leaves: readonly Uint8Array[]): Promise<Problem | undefined> {
    let at = 0;
    while (at < leaves.length) {
      const due = await this.checkDueCheckpoints();
      if (due) return due;
      const next = await this.peekCheckpoint();
      const room = typeof next?.size === "bigint" && next.size > this.range.size ? next.size - this.range.size : BigInt(leaves.length);
      const take = Number(room < BigInt(leaves.length - at) ? room : BigInt(leaves.length - at));
      const chunk = leaves.slice(at, at + take);
      const start = this.range.size;
      const { range, created } = appendLeaves(this.range, chunk);
      const worst = await this.compareChunk(start, chunk, created);
      if (worst) return worst;
      this.range = range;
      at += take;
    }
    return this.checkDueCheckpoints();
  }
}

/** Reads and checks one page of entry rows; the leaves before any problem, and the problem. */
function checkRows(rows: readonly { idx: unknown; bytes: unknown; leaf_hash: unknown }[], from: bigint): { leaves: Uint8Array[]; problem?: Problem } {
  const leaves: Uint8Array[] = [];
  let expect = from;
  for (const r of rows) {
    if (r.idx !== expect) return { leaves, problem: problemAt("entry-missing", `entry ${expect} is missing`, expect) };
    if (!(r.bytes instanceof Uint8Array) || !(r.leaf_hash instanceof Uint8Array)) {
      return { leaves, problem: problemAt("entry-malformed", `entry ${expect} is not stored as bytes`, expect) };
    }
    const lh = leafHash(r.bytes);
    if (!bytesEqual(lh, r.leaf_hash)) {
      return { leaves, problem: problemAt("entry-hash", `entry ${expect}'s bytes do not hash to its stored leaf hash`, expect) };
    }
    leaves.push(lh);
    expect++;
  }
  return { leaves };
}

async function scanEntries(db: SqlExecutor, scan: Scan): Promise<Problem | undefined> {
  let from = 0n;
  const neg = await db.get<{ c: unknown }>("SELECT count(*) AS c FROM ledger_entries WHERE idx < 0");
  if (typeof neg?.c === "bigint" && neg.c > 0n) return problemAt("entry-extra", "rows with negative indices were inserted", 0n);
  while (from < scan.target) {
    const rows = await entryPage(db, from, scan.target, VERIFY_PAGE_ENTRIES);
    if (rows.length === 0) return problemAt("entry-missing", `entry ${from} is missing`, from);
    const { leaves, problem } = checkRows(rows, from);
    const nodeProblem = await scan.feed(leaves);
    if (nodeProblem) return nodeProblem;
    if (problem) return problem;
    from += BigInt(leaves.length);
  }
  return scan.feed([]);
}

/** Checks nothing is stored beyond the tree: entries past the size, tiles that are not full in it. */
async function checkBeyond(db: SqlExecutor, size: bigint, live: boolean): Promise<Problem | undefined> {
  const extra = live
    ? await db.get<{ m: unknown }>(
        "SELECT min(idx) AS m FROM ledger_entries WHERE idx >= (SELECT coalesce(max(size), 0) FROM ledger_checkpoints)",
      )
    : await db.get<{ m: unknown }>("SELECT min(idx) AS m FROM ledger_entries WHERE idx >= ?", [size]);
  if (typeof extra?.m === "bigint") return problemAt("entry-extra", `entry ${extra.m} lies beyond the signed tree`, extra.m);
  const rows = await db.all<{ level: unknown; m: unknown }>("SELECT level, max(idx) AS m FROM ledger_tiles GROUP BY level");
  for (const r of rows) {
    const level = typeof r.level === "bigint" && r.level >= 0n && r.level < BigInt(TILE_LEVELS_MAX) ? Number(r.level) : undefined;
    const beyond = level === undefined || typeof r.m !== "bigint" || r.m >= fullTiles(size, level);
    if (beyond) return problemAt("tile-extra", `tile level ${String(r.level)} holds tiles beyond the tree of size ${size}`);
  }
  return undefined;
}

/** Verifies the whole stored log (see the module comment). */
export async function verifyLedgerStorage(db: SqlExecutor, opts: VerifyOptions): Promise<VerifyReport> {
  const live = opts.size !== undefined;
  const latest = await latestCheckpoint(db).catch(() => undefined);
  const target = opts.size ?? latest?.size ?? 0n;
  const scan = new Scan(db, opts.checkNote, target);
  let problem = await scanEntries(db, scan);
  if (!problem && target > 0n && scan.lastGoodCheckpoint !== target) {
    problem = problemAt("checkpoint-missing", `no signed checkpoint is stored for size ${target}`, scan.lastGoodCheckpoint);
  }
  for (let i = 0; !problem && i < LIVE_RETRIES_MAX; i++) {
    const now = live ? ((await latestCheckpoint(db))?.size ?? target) : target;
    problem = await checkBeyond(db, now, live);
    if (!problem || !live || ((await latestCheckpoint(db))?.size ?? target) === now) break;
    problem = undefined;
  }
  const base = { size: target, entriesChecked: scan.range.size, checkpointsChecked: scan.checkpointsChecked };
  return problem ? { ok: false, ...base, ...problem } : { ok: true, ...base };
}
