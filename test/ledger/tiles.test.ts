/** Tile layout (pure): every complete node lands where placeOf says, whatever the batch split. */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { appendLeaves, emptyRange, leafHash, type NodeId } from "../../src/core/ledger/merkle.ts";
import { decodeTile, edgeFromBottomRow, edgeTileIds, encodeEdge, type EdgeTile, fileNodes, fullTiles, placeOf, rangeNodeIds, TILE_WIDTH, tileNode, tileRoot } from "../../src/core/ledger/tiles.ts";
import { utf8 } from "../../src/core/crypto/bytes.ts";

/** Builds a tree of `sizes` batches, filing nodes like the ledger: the tiles stored, the edge, every node. */
function build(sizes: readonly number[]) {
  let range = emptyRange();
  let edge: ReadonlyMap<number, EdgeTile> = new Map();
  const stored = new Map<string, EdgeTile>();
  const nodes: { id: NodeId; hash: Uint8Array }[] = [];
  const leaves: Uint8Array[] = [];
  for (const k of sizes) {
    const batch = Array.from({ length: k }, (_, i) => leafHash(utf8(String(leaves.length + i))));
    leaves.push(...batch);
    const r = appendLeaves(range, batch);
    range = r.range;
    const u = fileNodes(edge, r.created);
    edge = u.edge;
    for (const t of u.completed) {
      assert.equal(t.rows[0]?.length, TILE_WIDTH, "only full tiles are stored");
      assert.ok(!stored.has(`${t.id.level}/${t.id.index}`), "a tile is stored once");
      stored.set(`${t.id.level}/${t.id.index}`, t);
    }
    nodes.push(...r.created);
  }
  return { stored, nodes, edge, size: range.size, leaves };
}

test("every complete node is in a stored full tile or the in-memory edge, for any split into batches", () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 700 }), { minLength: 1, maxLength: 6 }), (sizes) => {
      const { stored, nodes, edge, size, leaves } = build(sizes);
      for (const { id, hash } of nodes) {
        const p = placeOf(id);
        const t = stored.get(`${p.tile.level}/${p.tile.index}`) ?? edge.get(p.tile.level);
        assert.ok(t && t.id.index === p.tile.index, `tile of ${id.level}/${id.index}`);
        const enc = encodeEdge(t);
        const data = decodeTile(enc.width, enc.bytes);
        assert.ok(data);
        assert.deepEqual(tileNode(data, p.row, p.offset), hash);
      }
      for (let level = 0; level < 3; level++) {
        const n = fullTiles(size, level);
        assert.equal([...stored.values()].filter((t) => t.id.level === level).length, Number(n));
      }
      // The edge rebuilt on open (from leaf hashes, or full tiles' roots) equals the one kept in memory.
      for (const { id, width } of edgeTileIds(size)) {
        const from = Number(id.index) * TILE_WIDTH;
        const bottom = id.level === 0
          ? leaves.slice(from, from + width)
          : Array.from({ length: width }, (_, i) => {
              const t = stored.get(`${id.level - 1}/${from + i}`);
              assert.ok(t);
              const enc = encodeEdge(t);
              return tileRoot(decodeTile(enc.width, enc.bytes)!)!;
            });
        assert.deepEqual(edgeFromBottomRow(id, bottom).rows, edge.get(id.level)?.rows);
      }
      assert.equal(rangeNodeIds(size).length, size.toString(2).replace(/0/g, "").length);
    }),
    { numRuns: 40 },
  );
});

test("malformed stored tiles are refused, not trusted", () => {
  assert.equal(decodeTile(0n, new Uint8Array(0)), undefined);
  assert.equal(decodeTile(257, new Uint8Array(32 * 510)), undefined);
  assert.equal(decodeTile(256n, new Uint8Array(32 * 510 - 1)), undefined);
  assert.equal(decodeTile("1", new Uint8Array(32)), undefined);
  assert.equal(decodeTile(1, "x".repeat(32)), undefined);
  const full = decodeTile(BigInt(TILE_WIDTH), new Uint8Array(32 * 510));
  assert.ok(full);
  assert.equal(tileNode(full, 7, 2), undefined);
  assert.equal(tileNode(full, 8, 0), undefined);
  assert.equal(tileNode(full, 0, -1), undefined);
});
