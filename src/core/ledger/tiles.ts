/**
 * Tiles: how the ledger stores the Merkle tree's complete-subtree hashes so that any proof reads
 * O(log n) rows (the layout follows C2SP tlog-tiles: tiles of height 8 and width 256).
 *
 * Tile (T, N) is the part of the tree between tree levels 8T and 8T+7 above the level-8T nodes
 * [256N, 256N+256). Unlike tlog-tiles, which keeps only the bottom row and rehashes the rest on
 * read, a stored tile keeps every complete node of its 8 rows (510 hashes when full), so reading a
 * proof node is a slice, never a rehash. A tile's `width` is the number of level-8T nodes it
 * holds (1..256); row s (tree level 8T+s) then holds floor(width / 2^s) nodes.
 *
 * Only full tiles are stored, once, when they complete: the partial tile of each tile level (the
 * right edge, under 256 nodes wide) lives in memory and is rebuilt on open from at most 255 entry
 * leaf hashes or full tiles of the level below. So an append writes its entry and, once per 256
 * entries, a full tile, never rewriting a growing partial tile.
 *
 * This module is pure: data in, data out. Storage reads and writes happen in ledger.ts.
 */
import assert from "node:assert/strict";
import { type NodeId, nodeHash } from "./merkle.ts";

/** Tree levels per tile. */
export const TILE_HEIGHT = 8;
/** Level-8T nodes per full tile. */
export const TILE_WIDTH = 256;
/** Bytes in one node hash (SHA-256). */
export const HASH_BYTES = 32;
/** Tile levels a 2^63-leaf tree can need. */
export const TILE_LEVELS_MAX = 8;

/** A tile's coordinates: tile level and index within that level. */
export interface TileId {
  readonly level: number;
  readonly index: bigint;
}

/** Where a tree node lives: its tile, its row in the tile and its offset in the row. */
export interface NodePlace {
  readonly tile: TileId;
  readonly row: number;
  readonly offset: number;
}

/** The tile, row and offset of tree node `id`. */
export function placeOf(id: NodeId): NodePlace {
  assert.ok(id.level >= 0 && id.level < TILE_HEIGHT * TILE_LEVELS_MAX && id.index >= 0n, "node id out of range");
  const level = Math.floor(id.level / TILE_HEIGHT);
  const row = id.level % TILE_HEIGHT;
  const perRow = BigInt(TILE_WIDTH >> row);
  return { tile: { level, index: id.index / perRow }, row, offset: Number(id.index % perRow) };
}

/** The first leaf index covered by tree node `id` (to name a bad index). */
export function firstLeafOf(id: NodeId): bigint {
  return id.index << BigInt(id.level);
}

/** Hashes held by a tile of `width` (all rows). */
export function tileHashCount(width: number): number {
  let n = 0;
  for (let s = 0; s < TILE_HEIGHT; s++) n += width >> s;
  return n;
}

function rowStart(width: number, row: number): number {
  let n = 0;
  for (let s = 0; s < row; s++) n += width >> s;
  return n;
}

/** A decoded tile: its width and the concatenated rows (read-only view). */
export interface TileData {
  readonly width: number;
  readonly bytes: Uint8Array;
}

/** Checks a stored tile; undefined when the width or length is inconsistent. */
export function decodeTile(width: unknown, bytes: unknown): TileData | undefined {
  const w = typeof width === "bigint" ? Number(width) : width;
  if (typeof w !== "number" || !Number.isInteger(w) || w < 1 || w > TILE_WIDTH) return undefined;
  if (!(bytes instanceof Uint8Array) || bytes.length !== tileHashCount(w) * HASH_BYTES) return undefined;
  return { width: w, bytes };
}

/** The hash at `row`/`offset` of a tile, or undefined when the tile does not hold it (yet). */
export function tileNode(t: TileData, row: number, offset: number): Uint8Array | undefined {
  if (row < 0 || row >= TILE_HEIGHT || offset < 0 || offset >= t.width >> row) return undefined;
  const at = (rowStart(t.width, row) + offset) * HASH_BYTES;
  return t.bytes.subarray(at, at + HASH_BYTES);
}

/** A tile being filled at the right edge of the tree: one array of hashes per row. */
export interface EdgeTile {
  readonly id: TileId;
  readonly rows: readonly (readonly Uint8Array[])[];
}

/** The tile's width (level-8T nodes it holds). */
export function edgeWidth(t: EdgeTile): number {
  return t.rows[0]?.length ?? 0;
}

/** An edge tile as stored: width and concatenated rows. */
export function encodeEdge(t: EdgeTile): TileData {
  const width = edgeWidth(t);
  const bytes = new Uint8Array(tileHashCount(width) * HASH_BYTES);
  let at = 0;
  for (const row of t.rows) {
    for (const h of row) {
      bytes.set(h, at);
      at += HASH_BYTES;
    }
  }
  assert.equal(at, bytes.length, "edge tile rows do not match its width");
  return { width, bytes };
}

/** Rebuilds a partial tile from its bottom row (the level-8T nodes it holds), hashing the rows above. */
export function edgeFromBottomRow(id: TileId, bottom: readonly Uint8Array[]): EdgeTile {
  assert.ok(bottom.length < TILE_WIDTH, "an edge tile is partial");
  const rows: Uint8Array[][] = [[...bottom]];
  for (let s = 1; s < TILE_HEIGHT; s++) {
    const below = rows[s - 1] ?? [];
    const row: Uint8Array[] = [];
    for (let o = 0; o + 1 < below.length; o += 2) row.push(nodeHash(below[o] as Uint8Array, below[o + 1] as Uint8Array));
    rows.push(row);
  }
  return { id, rows };
}

/** The root of a full tile: the level-8(T+1) node it ends in. */
export function tileRoot(t: TileData): Uint8Array | undefined {
  const l = tileNode(t, TILE_HEIGHT - 1, 0);
  const r = tileNode(t, TILE_HEIGHT - 1, 1);
  return t.width === TILE_WIDTH && l !== undefined && r !== undefined ? nodeHash(l, r) : undefined;
}

/** The edge tiles after a batch, and the tiles the batch completed (to store). */
export interface TileUpdate {
  /** Partial tiles at the right edge, by tile level (full tiles leave the edge). */
  readonly edge: ReadonlyMap<number, EdgeTile>;
  /** Tiles that became full, in increasing level then index order. */
  readonly completed: readonly EdgeTile[];
}

function tileKey(id: TileId): string {
  return `${id.level}/${id.index}`;
}

/**
 * Files new complete nodes into tiles. `nodes` are every node completed by the batch (leaves
 * included), each level in increasing index order, continuing the tree that `edge` ends.
 */
export function fileNodes(edge: ReadonlyMap<number, EdgeTile>, nodes: Iterable<{ id: NodeId; hash: Uint8Array }>): TileUpdate {
  const staged = new Map<string, { id: TileId; rows: Uint8Array[][] }>();
  for (const { id, hash } of nodes) {
    const p = placeOf(id);
    const key = tileKey(p.tile);
    let t = staged.get(key);
    if (t === undefined) {
      const old = edge.get(p.tile.level);
      const rows = old !== undefined && old.id.index === p.tile.index ? old.rows.map((r) => [...r]) : [];
      while (rows.length < TILE_HEIGHT) rows.push([]);
      t = { id: p.tile, rows };
      staged.set(key, t);
    }
    const row = t.rows[p.row];
    assert.ok(row !== undefined && row.length === p.offset, `node ${id.level}/${id.index} filed out of order`);
    row.push(hash);
  }
  const next = new Map(edge);
  const completed: EdgeTile[] = [];
  for (const t of staged.values()) {
    const full = (t.rows[0]?.length ?? 0) === TILE_WIDTH;
    if (full) completed.push(t);
    const current = next.get(t.id.level);
    if (current !== undefined && current.id.index > t.id.index) continue;
    if (full) next.delete(t.id.level);
    else next.set(t.id.level, t);
  }
  completed.sort((x, y) => x.id.level - y.id.level || (x.id.index < y.id.index ? -1 : 1));
  return { edge: next, completed };
}

/** The partial tile every tile level should have at the right edge of a tree of `size`. */
export function edgeTileIds(size: bigint): { id: TileId; width: number }[] {
  const out: { id: TileId; width: number }[] = [];
  for (let level = 0; level < TILE_LEVELS_MAX; level++) {
    const count = size >> BigInt(TILE_HEIGHT * level);
    if (count === 0n) break;
    const width = Number(count % BigInt(TILE_WIDTH));
    if (width > 0) out.push({ id: { level, index: count / BigInt(TILE_WIDTH) }, width });
  }
  return out;
}

/** How many full tiles tile level `level` of a tree of `size` has (tiles 0..n-1 are stored). */
export function fullTiles(size: bigint, level: number): bigint {
  return size >> BigInt(TILE_HEIGHT * level) >> BigInt(TILE_HEIGHT);
}

/** The complete subtrees of a tree of `size`, largest first (the compact range's node ids). */
export function rangeNodeIds(size: bigint): NodeId[] {
  const ids: NodeId[] = [];
  let offset = 0n;
  for (let level = 63; level >= 0; level--) {
    const span = 1n << BigInt(level);
    if ((size & span) !== 0n) {
      ids.push({ level, index: offset >> BigInt(level) });
      offset += span;
    }
  }
  return ids;
}
